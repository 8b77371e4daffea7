"""The hostile-input suite, flags and files: every flag of every command, tried as a careless
or hostile user would (issue 13).

For every flag of every command the suite derives the cases from the flag's type: integers
and floats get -1, 0, NaN, inf and a huge value; strings get the empty string and, for
paths, a missing path and a file where a folder is expected (or the reverse); enums get a
value outside the set. Files given to commands get the wrong JSON types. Each case must end
in one ``error:`` line naming the flag or file, a non-zero exit, no traceback, and nothing
created or changed, unless ``ACCEPTED`` lists it as a legitimate value. There is no list of
known bugs: every case of every command (train, evaluate, export, predict, serve and the three
converters) behaves. ``predict`` gets a small .npy and ``serve`` the folder layout of an export
(``NAME/1/saved_model.pb``; the load itself is stubbed).

Fast by design: the cases of one command run in ONE process through the command's own flag
parsing and ``main`` (``tests/hostile_runner.py``), with the library call behind validation
stubbed; a few real subprocesses check the console path end to end.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from predrnn_tf.config import Config
from predrnn_tf.data import schema, synthetic_radar
from predrnn_tf.training import loop
from tests.hostile_runner import COMMANDS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "tiny"
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=2, lr=3e-3, max_iterations=1, reverse_input=False,
              display_interval=100, test_interval=100, snapshot_interval=1, log_every=1,
              num_test_batches=1, r_sampling_step_1=2, r_sampling_step_2=10, r_exp_alpha=2.0,
              shuffle_buffer=4)
TRAIN_FLAGS = ("num_hidden", "filter_size", "patch_size", "img_width", "input_length",
               "total_length", "batch_size", "max_iterations", "reverse_input",
               "num_test_batches", "shuffle_buffer", "snapshot_interval", "test_interval",
               "display_interval", "r_sampling_step_1", "r_sampling_step_2", "r_exp_alpha")

# (flag, case) pairs whose value is legitimate: the command accepts them ("*": any command).
OUTPUT_FOLDERS = ("workdir", "output_dir", "export_dir")
OPTIONAL_WHEN_EMPTY = ("checkpoint", "lpips_weights", "baselines", "fss_scales", "fss_scales_km",
                       "fss_thresholds", "rain_thresholds", "thresholds", "mnist_npz",
                       "train_images", "test_images", "from_npy", "from_official_npz", "crop",
                       "importer_kwargs", "model_name", "intensity_periods",
                       "data_service")
ACCEPTED = {
    "*": {*[(flag, label) for flag in OUTPUT_FOLDERS for label in ("missing", "a_folder")],
          *[(flag, "empty") for flag in OPTIONAL_WHEN_EMPTY],
          ("seed", "zero"), ("seed", "huge")},
    "train": {
        *[(flag, "zero") for flag in (
            "max_iterations", "num_test_batches", "gradient_clip_norm", "num_devices",
            "decouple_beta", "r_sampling_step_1", "sampling_stop_iter",
            "sampling_start_value", "sampling_changing_rate", "csi_loss_weight",
            "validation_fraction", "ensemble_noise_std")],
        *[(flag, "huge") for flag in ("lr", "r_exp_alpha", "decouple_beta",
                                      "gradient_clip_norm", "sampling_changing_rate",
                                      "csi_loss_weight", "csi_loss_temperature_db")],
    },
    "evaluate": {("num_sequences", "zero"), ("num_sequences", "huge"), ("output_length", "zero"),
                 ("num_strips", "zero"), ("num_strips", "huge"),
                 ("every_kth_sequence", "huge"),
                 ("ensemble_size", "zero"),  # 0 = no ensemble
                 ("ensemble_seed", "zero")},  # 0 = the default draws
    "export": {("version", "zero"), ("version", "huge"),
               ("ensemble_size", "zero")},  # 0 = no ensemble signature
    "make_moving_mnist": {("split_test_digits", "zero")},
    "make_radar": {("num_workers", "zero"),  # 0 = one worker per CPU core
                   ("beam_options", "empty"),  # not given: the DirectRunner
                   ("pixel_offset", "negative"), ("pixel_offset", "zero"),
                   ("no_data_pixel", "negative"), ("no_data_pixel", "zero"),
                   ("interval_minutes", "zero"), ("min_wet_fraction", "zero"),
                   ("min_valid_fraction", "zero"), ("source_pixel_km", "zero"),
                   ("tile_stride", "zero"), ("test_after", "empty")},
    "make_kth": {("fast_stride", "zero"), ("other_stride", "zero"),
                 ("num_workers", "zero")},  # 0 = one worker per CPU core
    # an empty --importer or --saved_model is "not given"; --port=0 picks a free port
    "predict": {("importer", "empty"), ("saved_model", "empty"),
                ("ensemble_size", "zero")},  # 0 = no ensemble
    "serve": {("port", "zero")},
}

def _snapshot(root):
    """{path: sha1 or "dir"} of everything under ``root``."""
    digests = {}
    for folder, subfolders, names in os.walk(root):
        for name in subfolders:
            digests[os.path.join(folder, name)] = "dir"
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                digests[path] = hashlib.sha1(handle.read()).hexdigest()
    return digests


def _make_dataset(data_dir):
    """A small dataset named NAME (synthetic sequences under another name)."""
    source = data_dir + "-synthetic"
    synthetic_radar.ensure_synthetic_dataset(source, 16, 6, num_train=8, num_test=4)
    os.makedirs(data_dir)
    for split in schema.SPLITS:
        paths = schema.shard_paths(source, synthetic_radar.NAME, split)
        for index, path in enumerate(paths):
            shutil.copy(path, os.path.join(data_dir, schema.shard_filename(
                NAME, split, index, len(paths))))
    schema.write_metadata(data_dir, NAME, schema.read_metadata(source, synthetic_radar.NAME))
    shutil.rmtree(source)


def _train_flags(config):
    values = config.to_dict()
    return [f"--{name}={','.join(map(str, values[name])) if name == 'num_hidden' else values[name]}"
            for name in TRAIN_FLAGS]


def _make_world(root):
    """Read-only inputs (a dataset, a trained workdir, a file, an empty folder) + outputs."""
    inputs = os.path.join(root, "inputs")
    world = {"inputs": inputs, "outputs": os.path.join(root, "outputs"), "name": NAME,
             "data_dir": os.path.join(inputs, "data"), "trained": os.path.join(inputs, "trained"),
             "a_file": os.path.join(inputs, "a_file.txt"),
             "empty_dir": os.path.join(inputs, "empty"),
             "mnist_npz": os.path.join(inputs, "mnist.npz"), "train_flags": _train_flags(TINY),
             "frames_npy": os.path.join(inputs, "frames.npy"),
             "exports": os.path.join(inputs, "exports"),
             "existing_output": os.path.join(root, "outputs", "existing")}
    os.makedirs(world["existing_output"])
    _make_dataset(world["data_dir"])
    loop.train_and_evaluate(TINY.replace(data_dir=world["data_dir"], dataset_name=NAME),
                                 world["trained"])
    with open(world["a_file"], "w") as handle:
        handle.write("not what was asked for\n")
    os.makedirs(world["empty_dir"])
    digits = np.random.default_rng(0).integers(0, 255, (4, 28, 28), dtype=np.uint8)
    np.savez(world["mnist_npz"], x_train=digits, x_test=digits)
    np.save(world["frames_npy"], np.zeros((TINY.input_length, 16, 16), np.float32))
    # The layout serve checks before loading (the load itself is stubbed by the runner).
    version = os.path.join(world["exports"], NAME, "1")
    os.makedirs(version)
    with open(os.path.join(version, "saved_model.pb"), "wb") as handle:
        handle.write(b"stand-in: never loaded")
    return world


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """``(world, {command: {case id: outcome}}, inputs before, inputs after)``."""
    root = str(tmp_path_factory.mktemp("hostile"))
    world = _make_world(root)
    before = _snapshot(world["inputs"])
    world_path, results_path = os.path.join(root, "world.json"), os.path.join(root, "out.json")
    with open(world_path, "w") as handle:
        json.dump(world, handle)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "tests.hostile_runner", world_path,
                             results_path], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(results_path) as handle:
        outcomes = json.load(handle)
    world["runner_log"] = result.stderr  # the commands' log lines (not captured per case)
    return world, outcomes, before, _snapshot(world["inputs"])


def _describe(outcome):
    errors = [line for line in outcome["stderr"].splitlines() if line.startswith("error:")]
    if outcome["exception"]:
        return "traceback: " + outcome["exception"].strip().splitlines()[-1]
    if outcome["accepted"]:
        return "accepted"
    return f"exit {outcome['exit']}: " + (errors[0] if errors else outcome["stderr"][-300:])


def _names_culprit(line, outcome):
    """The error line names the flag, or the file/value it was given."""
    value = outcome["argv"][-1].split("=", 1)[1]
    return outcome["flag"] in line or (len(value) > 3 and value in line)


def _failures(command, outcomes, world):
    """Every case of ``command`` that does not behave, as readable lines."""
    bad = []
    for case_id, outcome in sorted(outcomes.items()):
        flag, label = outcome["flag"], outcome["label"]
        accepted_ok = flag is None or (flag, label) in ACCEPTED[command] \
            or (flag, label) in ACCEPTED["*"]
        errors = [line for line in outcome["stderr"].splitlines() if line.startswith("error:")]
        if outcome["exception"]:
            bad.append(f"{case_id}: {_describe(outcome)}")
        elif outcome["accepted"]:
            if not accepted_ok:
                bad.append(f"{case_id}: accepted a hostile value")
        elif flag is None:
            bad.append(f"{case_id}: the valid baseline was refused: {_describe(outcome)}")
        elif not outcome["exit"] or len(errors) != 1 or not _names_culprit(errors[0], outcome):
            bad.append(f"{case_id}: {_describe(outcome)} (wanted one error line naming {flag})")
        elif os.path.exists(os.path.join(world["outputs"], command, case_id)):
            bad.append(f"{case_id}: refused but created its output folder")
    return bad


def test_every_command_and_kind_is_covered(hostile):
    _, outcomes, _, _ = hostile
    assert sorted(outcomes) == sorted(COMMANDS)
    labels = {outcome["label"] for cases in outcomes.values() for outcome in cases.values()}
    assert {"negative", "zero", "nan", "inf", "huge", "empty", "missing", "a_file", "a_folder",
            "not_a_choice"} <= labels
    assert sum(len(cases) for cases in outcomes.values()) >= 400


@pytest.mark.parametrize("command", COMMANDS)
def test_hostile_flags_fail_with_one_line_naming_the_flag(hostile, command):
    world, outcomes, _, _ = hostile
    failures = _failures(command, outcomes[command], world)
    assert not failures, "\n".join(failures)


def test_no_case_changed_the_inputs(hostile):
    _, _, before, after = hostile
    assert after == before


def test_evaluate_and_export_log_the_absolute_workdir_and_what_they_do(hostile):
    world, _, _, _ = hostile
    trained = re.escape(world["trained"])
    assert re.search(rf"Work directory {trained}: evaluating checkpoint ckpt-(\d+) "
                     rf"\(step \1\)\.", world["runner_log"])
    assert re.search(rf"Work directory {trained}: exporting checkpoint ckpt-(\d+) \(step \1\) "
                     rf"to {re.escape(world['outputs'])}/export/baseline/trained/\1\.",
                     world["runner_log"])


HELP_COMMANDS = {"train": "--max_iterations", "evaluate": "--output_dir",
                 "export": "--export_dir", "predict": "--input", "serve": "--max_frame_size"}


@pytest.mark.parametrize("command", sorted(HELP_COMMANDS))
def test_help_lists_the_command_s_own_flags_and_exits_0(command):
    result = subprocess.run([sys.executable, "-m", f"predrnn_tf.cli.{command}", "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert HELP_COMMANDS[command] + ":" in result.stdout and "Try --helpfull" not in result.stdout
    assert "--tpu" not in result.stdout and "absl.testing" not in result.stdout


def test_stride_1_is_accepted_other_strides_are_refused_with_the_reason(tmp_path):
    def train(*args):
        return subprocess.run([sys.executable, "-m", "predrnn_tf.cli.train", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    accepted = train("--stride=1")  # gets past the flag: the next check is --workdir
    assert accepted.returncode == 2 and accepted.stderr.strip() == \
        "error: --workdir is required", accepted.stderr
    refused = train("--stride=2", f"--workdir={tmp_path / 'run'}")
    assert refused.returncode == 2 and refused.stderr.startswith("error: --stride=2: ")
    assert "converter" in refused.stderr and not os.path.exists(tmp_path / "run")
