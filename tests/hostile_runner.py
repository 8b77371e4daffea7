"""Runs the hostile flag cases of every command in ONE process: ``python -m tests.hostile_runner``.

Usage: ``python -m tests.hostile_runner WORLD.json RESULTS.json [COMMAND ...]`` (a subset of
the commands when debugging). For each command the flags it defines are listed, the cases are
derived from each flag's type (:func:`flag_cases`), and each case's argv goes through the
command's own flag parsing and ``main`` (the path of the console command), with the library
call behind validation replaced by a stand-in that raises :class:`Accepted`: an accepted case
costs no training, evaluation, export, forecast, server or conversion. Between commands
their flags are removed from absl's global registry, so one TensorFlow import serves all of
them. Used by ``tests/test_hostile_flags.py``.
"""

import contextlib
import importlib.util
import io
import json
import os
import sys
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("train", "evaluate", "export", "predict", "serve", "make_moving_mnist", "make_radar",
            "make_kth")
TOOLS = ("make_moving_mnist", "make_radar", "make_kth")
PATH_WORDS = ("dir", "path", "checkpoint", "weights", "images", "npz", "npy", "glob", "input",
              "saved_model")
NUMBER_VALUES = (("negative", "-1"), ("zero", "0"), ("nan", "nan"), ("inf", "inf"))
HUGE = {"int": "1000000000000", "float": "1e300"}
# Tools need real input files to get past their inputs; reaching that check (with this error)
# means every flag check before it passed.
REACHED_INPUT = {"make_radar": ("input_glob", "matches no file"),
                 "make_kth": ("input_dir", "holds no KTH clip")}


class Accepted(BaseException):  # noqa: N818  (not an error: the case passed validation)
    """Raised by the stand-in of the library call: every check before it passed."""


def _accept(*args, **kwargs):
    raise Accepted()


# Each command's library call behind its validation: (module, attribute) stubbed by _accept.
_LIBRARY_CALLS = {
    "train": ("predrnn_tf.training.loop", "_train"),
    "evaluate": ("predrnn_tf.evaluation.evaluator", "evaluate"),
    "export": ("predrnn_tf.serving.exporter", "export_workdir"),
    "predict": ("predrnn_tf.inference.predict", "predict_files"),
    "serve": ("predrnn_tf.serving.local_server", "load_newest_version"),
}


def load_command(command):
    """The entry ``(argv) -> None`` of a command, with its library call stubbed."""
    from predrnn_tf.cli import flag_parsing

    if command in _LIBRARY_CALLS:
        library, name = _LIBRARY_CALLS[command]
        module = importlib.import_module(f"predrnn_tf.cli.{command}")
        setattr(importlib.import_module(library), name, _accept)
        return module.main
    from predrnn_tf.data.converters import publishing
    publishing.DatasetStaging = _accept  # the first thing every converter writes with
    spec = importlib.util.spec_from_file_location(f"hostile_{command}",
                                                  os.path.join(REPO, "tools", f"{command}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    work = getattr(module, "run_conversion", None) or module.convert  # the tool's body
    return lambda argv: flag_parsing.run_or_exit(work, errors=(ValueError, OSError, ImportError))


def is_path_flag(name):
    return any(word in name for word in PATH_WORDS)


def flag_cases(name, kind, world):
    """``[(label, value)]`` for one flag, derived from its type."""
    if kind in ("int", "float"):
        return [*NUMBER_VALUES, ("huge", HUGE[kind])]
    if kind == "enum":
        return [("empty", ""), ("not_a_choice", "no_such_choice")]
    if kind == "bool":
        return [("not_a_bool", "maybe")]
    if name in ("workdir", "output_dir", "export_dir"):  # an existing folder is fine there
        return [("empty", ""), ("missing", os.path.join(world["outputs"], "new", name)),
                ("a_file", world["a_file"]), ("a_folder", world["existing_output"]),
                ("under_a_file", os.path.join(world["a_file"], "sub"))]
    if is_path_flag(name):
        return [("empty", ""), ("missing", os.path.join(world["inputs"], "no", "such", "path")),
                ("a_file", world["a_file"]), ("a_folder", world["empty_dir"]),
                ("under_a_file", os.path.join(world["a_file"], "sub"))]
    return [("empty", ""), ("comma_junk", ",,-1,nan"), ("a_path", "../x/y")]


def _run_case(entry, argv, command):
    from absl import flags

    from predrnn_tf.cli.flag_parsing import parse_flags_or_exit

    flags.FLAGS.unparse_flags()
    stderr = io.StringIO()
    outcome = {"exit": None, "accepted": False, "exception": None}
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            entry(parse_flags_or_exit(argv))
            outcome["exit"] = 0
        except SystemExit as stop:
            outcome["exit"] = stop.code if isinstance(stop.code, int) else 1
        except Accepted:
            outcome["accepted"] = True
        except Exception as error:  # what the suite looks for: a traceback
            outcome["exception"] = "".join(traceback.format_exception(error))[-3000:]
    outcome["stderr"] = stderr.getvalue()
    input_flag, marker = REACHED_INPUT.get(command, (None, None))
    is_input_case = input_flag is not None and argv[-1].startswith(f"--{input_flag}=")
    if marker and not is_input_case and outcome["exit"] and marker in outcome["stderr"]:
        outcome["accepted"] = True
    return outcome


def run_command(command, world):
    """``{case id: outcome}`` of every case of one command (its flags removed afterwards)."""
    from absl import flags

    kinds = {"IntegerParser": "int", "FloatParser": "float", "BooleanParser": "bool",
             "EnumParser": "enum"}
    before = set(flags.FLAGS)
    entry = load_command(command)
    table = {name: kinds.get(type(flags.FLAGS[name].parser).__name__, "str")
             for name in flags.FLAGS if name not in before}
    base = world["base_argv"][command]
    cases = [("baseline", None, None, base(command, "baseline"))]
    for name, kind in sorted(table.items()):
        for label, value in flag_cases(name, kind, world):
            case_id = f"{name}-{label}"
            cases.append((case_id, name, label, [*base(command, case_id), f"--{name}={value}"]))
    results = {}
    for case_id, name, label, argv in cases:
        outcome = _run_case(entry, ["prog", *argv], command)
        results[case_id] = dict(outcome, flag=name, label=label, argv=argv)
    for name in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, name)
    return results


def base_argv(world):
    """``{command: (command, case id) -> argv}``: arguments every case starts from."""
    def make(command, case_id):
        out = os.path.join(world["outputs"], command, case_id)
        return {
            "train": [f"--data_dir={world['data_dir']}", f"--dataset_name={world['name']}",
                      *world["train_flags"], f"--workdir={out}"],
            "evaluate": [f"--workdir={world['trained']}", f"--output_dir={out}"],
            "export": [f"--workdir={world['trained']}", f"--export_dir={out}"],
            # --saved_model cases go without --workdir (exactly one of them is allowed).
            "predict": [*([] if case_id.startswith("saved_model-")
                          else [f"--workdir={world['trained']}"]),
                        f"--input={world['frames_npy']}", f"--output_dir={out}"],
            "serve": [f"--export_dir={world['exports']}", f"--model_name={world['name']}"],
            "make_moving_mnist": [f"--output_dir={out}", f"--mnist_npz={world['mnist_npz']}",
                                  "--num_train=2", "--num_test=2", "--total_length=4",
                                  "--image_size=32", "--sequences_per_shard=2"],
            "make_radar": [f"--output_dir={out}", f"--input_glob={world['empty_dir']}/*.npy",
                           "--importer=npy", "--filename_pattern=%Y%m%d%H%M",
                           "--image_size=16", "--total_length=4"],
            "make_kth": [f"--output_dir={out}", f"--input_dir={world['empty_dir']}",
                         "--image_size=16", "--total_length=4", "--test_total_length=4"],
        }[command]
    return dict.fromkeys(COMMANDS, make)


def main():
    world_path, results_path = sys.argv[1:3]
    commands = sys.argv[3:] or COMMANDS  # a subset, when debugging one command
    with open(world_path) as handle:
        world = json.load(handle)
    world["base_argv"] = base_argv(world)
    results = {command: run_command(command, world) for command in commands}
    with open(results_path, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from predrnn_tf.cli.flag_parsing import import_tensorflow_quietly
    import_tensorflow_quietly()
    main()
