r"""Leave-one-source-out skill of the radar recipe: train on the others, test on the one left out.

  python tools/leave_one_source_out.py --data_root=/tmp/radar --sources=fmi,knmi,bom_c10 \
      --output_dir=/tmp/loso [--max_iterations=N] [--every_kth_sequence=K] [--folds=fmi] \
      [--select_postprocessing_on_training_sources | --ensemble_noise_grid=0,0.25,0.5,1]

For every source S (the datasets made with tools/make_radar.py
--flagfile=configs/radar_real_data.flags into --data_root): trains
``configs/radar_real.flags`` (or --train_flagfile) on the other sources
(``--dataset_name=A,B``), then evaluates the model and the baselines on S's test split in one
run (``predrnn_tf.evaluation.run.evaluate``, baselines persistence, extrapolation, sprog,
advection; unless --probability_matching=none also ``model_pm``, the model post-processed by
that method). Datasets converted with whole test frames (``whole_test_frames``) are scored
on whole composites. Writes OUTPUT_DIR/S/{run,eval}/
and OUTPUT_DIR/loso.md: per source and lead time MSE (mm/h)^2, CSI and frequency bias at
1 mm/h of every forecaster, and issue 29's goals a-e with their margins
(:mod:`predrnn_tf.evaluation.skill_goals`). A fold whose evaluation exists is not run again;
a fold whose training reached its last iteration is not trained again (delete or move its
``eval`` folder to evaluate it again, e.g. with another --probability_matching).

With --ensemble_noise_grid (issue 30) each fold trains one fair-CRPS model per state noise S,
chooses S on the training sources' test composites
(:mod:`predrnn_tf.evaluation.ensemble_selection`: ``S/ensemble_choice.json``) and scores the
chosen model's ensemble on S beside the baselines and STEPS (``S/eval_ensemble``); loso.md
adds the probabilistic scores and issue 30's goals with their margins.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from absl import flags

from predrnn_tf import files
from predrnn_tf.cli import flag_parsing
from predrnn_tf.evaluation import skill_goals

_DATA_ROOT = flags.DEFINE_string("data_root", None, "Folder of the converted sources.",
                                 required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the runs and the table.",
                                  required=True)
_SOURCES = flags.DEFINE_list("sources", ["fmi", "knmi", "bom_c10"], "The sources (datasets).")
_FOLDS = flags.DEFINE_list("folds", [], "Sources to leave out (default: every source).")
_TRAIN_FLAGFILE = flags.DEFINE_string("train_flagfile", "configs/radar_real.flags",
                                      "The training recipe.")
_MAX_ITERATIONS = flags.DEFINE_integer("max_iterations", 0,
                                       "Override the recipe's iterations (0: the recipe's); its "
                                       "(reverse) scheduled-sampling steps scale with it.")
_EXTRA_TRAIN_FLAGS = flags.DEFINE_list("train_flags", [], "More training flags, e.g. "
                                       "--frame_loss=mse (comma-separated).")
_BASELINES = flags.DEFINE_string("baselines", "persistence,extrapolation,sprog,advection",
                                 "Baselines scored beside the model ('advection': the "
                                 "recipe's advection prior alone, the untrained model).")
_EVERY = flags.DEFINE_integer("every_kth_sequence", 1, "Score every k-th test sequence.")
_PROBABILITY_MATCHING = flags.DEFINE_enum(
    "probability_matching", "extrapolation", ["none", "last_input", "extrapolation"],
    "Also score model_pm, the model's forecast post-processed: last_input = matched to the "
    "last input's rain-rate distribution; extrapolation = blended with pysteps' extrapolation "
    "and mostly matched to its distribution (predrnn_tf.models.probability_matching).")
_PM_BLEND = flags.DEFINE_float(
    "probability_matching_blend", None, "--probability_matching=extrapolation: the model's "
    "share of the blend with pysteps' extrapolation (mm/h), in [0, 1] (default: the "
    "library's, 0.5).")
_PM_STRENGTH = flags.DEFINE_float(
    "probability_matching_strength", None, "--probability_matching=extrapolation: how far "
    "the blend moves to its probability-matched field (0: the blend, 1: matched), in [0, 1] "
    "(default: the library's, 0.85).")
_SELECT = flags.DEFINE_bool(
    "select_postprocessing_on_training_sources", False,
    "Choose the post-processing per fold without looking at the held-out source: score "
    "the grid of postprocessing_selection.GRID on the training sources' test composites, "
    "pick by its declared rule (most goals a-e met, then the largest worst margin), then "
    "evaluate the held-out source with the chosen setting only (into S/eval_selected; the "
    "grid's scores in S/selection). Overrides --probability_matching*.")
_NOISE_GRID = flags.DEFINE_list(
    "ensemble_noise_grid", [], "Issue 30's ensembles, chosen without the held-out source: per "
    "fold, train one model per state noise S of this list (e.g. 0,0.25,0.5,1) with "
    "--ensemble_loss=fair_crps --ensemble_noise_std=S (into S_FOLD/noise_S/run), score each "
    "one's --ensemble_size ensemble on the training sources' test composites, pick S by "
    "ensemble_selection's declared rule (lowest CRPS, ties: spread-skill closest to 1), then "
    "evaluate the chosen model's ensemble on the held-out source beside the --baselines and "
    "STEPS (into S_FOLD/eval_ensemble). Empty: the deterministic folds.")
_SELECTION_EVERY = flags.DEFINE_integer(
    "selection_every_kth_sequence", 1, "--ensemble_noise_grid: score every k-th test sequence "
    "of the training sources when choosing S (the held-out source: --every_kth_sequence).")
_ENSEMBLE_SIZE = flags.DEFINE_integer("ensemble_size", 12, "--ensemble_noise_grid: members "
                                      "of the model's ensemble and of STEPS.")
_MIN_LEAD_MINUTES = flags.DEFINE_float("csi_min_lead_minutes", 30.0,
                                       "Lead times averaged for the CSI check.")


def run_command(command: list[str], log_path: str) -> None:
    """Runs one step, its output in ``log_path``; RuntimeError naming the log if it fails."""
    with open(log_path, "w") as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    if status:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed (exit {status}): see {log_path}")


# Flags counted in iterations: a --max_iterations override scales them with the budget, so a
# shorter run still reaches the recipe's last (fully autoregressive) sampling phase.
SCHEDULE_FLAGS = ("r_sampling_step_1", "r_sampling_step_2", "r_exp_alpha", "sampling_stop_iter")


def recipe_values(flagfile_text: str) -> dict[str, str]:
    """``{name: value}`` of a flagfile's ``--name=value`` lines (comments skipped)."""
    values = {}
    for line in flagfile_text.splitlines():
        name, _, value = line.strip().lstrip("-").partition("=")
        if value and not line.strip().startswith("#"):
            values[name] = value
    return values


def scaled_schedule_flags(flagfile_text: str, max_iterations: int,
                          explicit_flags: list[str]) -> list[str]:
    """The recipe's schedule flags scaled from its --max_iterations to ``max_iterations``.

    Args:
      flagfile_text: the training recipe (one ``--name=value`` per line).
      max_iterations: the overriding budget.
      explicit_flags: flags given on the command line; a schedule flag named there is kept.

    Returns:
      ``--name=value`` flags, empty if the recipe states no --max_iterations.
    """
    values = recipe_values(flagfile_text)
    if "max_iterations" not in values:
        return []
    ratio = max_iterations / float(values["max_iterations"])
    explicit = {flag.lstrip("-").partition("=")[0] for flag in explicit_flags}
    return [f"--{name}={max(1, round(float(values[name]) * ratio))}" for name in SCHEDULE_FLAGS
            if name in values and name not in explicit]


def recipe_iterations() -> int:
    """The training recipe's --max_iterations (0 if it states none)."""
    with open(_TRAIN_FLAGFILE.value) as handle:
        return int(recipe_values(handle.read()).get("max_iterations", 0))


def finished_training(workdir: str, iterations: int) -> bool:
    """True if ``workdir``'s newest checkpoint is the one of iteration ``iterations``."""
    from predrnn_tf.workdir import WorkDir

    if not iterations or not os.path.isdir(workdir):
        return False
    latest = WorkDir(workdir).latest_checkpoint()
    return bool(latest) and os.path.basename(latest) == f"ckpt-{iterations}"


def run_fold(held_out: str) -> dict:
    """Trains without ``held_out`` and evaluates on it; returns its metrics.json content."""
    if _NOISE_GRID.value:
        return run_ensemble_fold(held_out)
    folder = os.path.join(_OUTPUT_DIR.value, held_out)
    evaluation = "eval_selected" if _SELECT.value else "eval"
    metrics_path = os.path.join(folder, evaluation, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as handle:
            return json.load(handle)
    workdir = os.path.join(folder, "run")
    train_fold(held_out, workdir, [])
    setting = (_PROBABILITY_MATCHING.value, _PM_BLEND.value, _PM_STRENGTH.value)
    if _SELECT.value:
        setting = select_setting(held_out, workdir, os.path.join(folder, "selection"))
    print(f"[{held_out}] evaluating on {held_out}", flush=True)
    return evaluate_fold(held_out, workdir, os.path.join(folder, evaluation), setting)


def train_fold(held_out: str, workdir: str, extra_flags: list[str]) -> None:
    """Trains the recipe (plus ``extra_flags``) on every source but ``held_out`` into
    ``workdir``, unless its training already reached the last iteration."""
    os.makedirs(os.path.dirname(workdir), exist_ok=True)
    others = ",".join(training_sources(held_out))
    flag_list = [*_EXTRA_TRAIN_FLAGS.value, *extra_flags]
    train = [sys.executable, "-m", "predrnn_tf.train", f"--flagfile={_TRAIN_FLAGFILE.value}",
             f"--data_dir={_DATA_ROOT.value}", f"--dataset_name={others}",
             f"--workdir={workdir}", *flag_list]
    if _MAX_ITERATIONS.value:
        with open(_TRAIN_FLAGFILE.value) as handle:
            recipe = handle.read()
        train += [f"--max_iterations={_MAX_ITERATIONS.value}",
                  *scaled_schedule_flags(recipe, _MAX_ITERATIONS.value, flag_list)]
    print(f"[{held_out}] training on {others}: {workdir}", flush=True)
    if finished_training(workdir, _MAX_ITERATIONS.value or recipe_iterations()):
        print(f"[{held_out}] already trained: {workdir}", flush=True)
    else:
        run_command(train, os.path.join(os.path.dirname(workdir), "train.log"))


def check_trained_noise(workdir: str, noise: float) -> None:
    """RuntimeError if ``workdir`` (e.g. one trained before) was not trained for ``noise``."""
    from predrnn_tf.workdir import WorkDir

    config = WorkDir(workdir).config
    if config.ensemble_loss != "fair_crps" or config.ensemble_noise_std != noise:
        raise RuntimeError(f"{workdir} was trained with --ensemble_loss={config.ensemble_loss} "
                           f"--ensemble_noise_std={config.ensemble_noise_std:g}, not fair_crps "
                           f"and {noise:g}: move it away to train it again")


def training_sources(held_out: str) -> list[str]:
    """The sources a fold trains on: every source but ``held_out``, in --sources order."""
    return [source for source in _SOURCES.value if source != held_out]


def run_ensemble_fold(held_out: str) -> dict:
    """Issue 30's fold: one model per noise of the grid, S chosen on the training sources,
    the chosen model's ensemble and STEPS scored on ``held_out``; its metrics.json content."""
    from predrnn_tf.evaluation import ensemble_selection
    from predrnn_tf.evaluation.run import EvaluateOptions, evaluate

    folder = os.path.join(_OUTPUT_DIR.value, held_out)
    metrics_path = os.path.join(folder, "eval_ensemble", "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as handle:
            return json.load(handle)
    scores, workdirs = {}, {}
    for noise in (float(value) for value in _NOISE_GRID.value):
        workdirs[noise] = os.path.join(folder, f"noise_{noise:g}", "run")
        train_fold(held_out, workdirs[noise], ["--ensemble_loss=fair_crps",
                                               f"--ensemble_noise_std={noise:g}"])
        check_trained_noise(workdirs[noise], noise)
        scores[noise] = {}
        for source in training_sources(held_out):
            print(f"[{held_out}] scoring the S={noise:g} ensemble on {source}", flush=True)
            scores[noise][source] = ensemble_selection.score_noise(
                fold_config(workdirs[noise], source), workdirs[noise],
                os.path.join(folder, f"noise_{noise:g}", "selection", source),
                _ENSEMBLE_SIZE.value, _SELECTION_EVERY.value)
    chosen, record = ensemble_selection.record_choice(
        os.path.join(folder, "ensemble_choice.json"), scores)
    print(f"[{held_out}] {ensemble_selection.describe_choice(record, held_out)}", flush=True)
    names = [name for name in _BASELINES.value.split(",") if name and name != "steps"]
    options = EvaluateOptions(output_dir=os.path.dirname(metrics_path),
                              every_kth_sequence=_EVERY.value, ensemble_size=_ENSEMBLE_SIZE.value,
                              baselines=(*names, "steps"))
    return evaluate(fold_config(workdirs[chosen], held_out), workdirs[chosen], options)


def fold_config(workdir: str, source: str):
    """``workdir``'s Config reading ``source`` from --data_root, one sequence per batch."""
    from predrnn_tf.workdir import WorkDir

    return dataclasses.replace(WorkDir(workdir).config, data_dir=_DATA_ROOT.value,
                               dataset_name=source, batch_size=1)


def select_setting(held_out: str, workdir: str, folder: str) -> tuple[str, float | None,
                                                                      float | None]:
    """The post-processing the declared rule picks on the training sources' test composites."""
    from predrnn_tf.evaluation import postprocessing_selection

    contents = {}
    for source in (name for name in _SOURCES.value if name != held_out):
        print(f"[{held_out}] scoring the post-processing grid on {source}", flush=True)
        contents[source] = postprocessing_selection.score_grid(
            fold_config(workdir, source), workdir, os.path.join(folder, source), _EVERY.value)
    chosen, record = postprocessing_selection.record_choice(
        os.path.join(folder, "choice.json"), contents)
    print(f"[{held_out}] {postprocessing_selection.describe_choice(record, held_out)}",
          flush=True)
    return chosen.method, chosen.model_weight, chosen.strength


def evaluate_fold(held_out: str, workdir: str, output_dir: str,
                  setting: tuple[str, float | None, float | None]) -> dict:
    """The model and the baselines on ``held_out``'s test split (whole composites if stored).

    ``setting``: (probability matching method, blend weight, strength) of ``model_pm``
    (None: the library's default).
    """
    from predrnn_tf.evaluation.run import EvaluateOptions, evaluate

    method, blend, strength = setting
    chosen = {name: value for name, value in (("probability_matching_blend", blend),
                                              ("probability_matching_strength", strength))
              if value is not None}
    options = EvaluateOptions(
        output_dir=output_dir, every_kth_sequence=_EVERY.value,
        baselines=tuple(name for name in _BASELINES.value.split(",") if name),
        probability_matching=method, **chosen)
    return evaluate(fold_config(workdir, held_out), workdir, options)


def fold_checks(content: dict) -> dict[str, dict]:
    """Issue 29's goals a-e (and the stretch) of every model candidate on one fold."""
    return {name: skill_goals.goal_margins(content, name, _MIN_LEAD_MINUTES.value)
            for name in content["forecasters"] if name.startswith("model")}


def format_report(folds: dict[str, dict]) -> str:
    """The markdown report: per fold, MSE and CSI per lead time, then the checks."""
    lines = [f"Leave-one-source-out, recipe {_TRAIN_FLAGFILE.value}"
             f"{f', max_iterations={_MAX_ITERATIONS.value}' if _MAX_ITERATIONS.value else ''}"
             f"{f', every {_EVERY.value}th test sequence' if _EVERY.value > 1 else ''}.", ""]
    for held_out, content in folds.items():
        leads = content["lead_minutes"]
        lines += [f"### test on {held_out} (trained on the others)", "",
                  "| forecaster | metric | mean | " + " | ".join(f"{m:g}" for m in leads) + " |",
                  "|---|---|---|" + "---|" * len(leads)]
        for metric in ("mse_mmh", "csi_1mmh", "bias_1mmh"):
            for name, result in content["forecasters"].items():
                values = [result["metrics"][metric], *result["per_frame"][metric]]
                text = " | ".join("nan" if value is None else f"{value:.3f}" for value in values)
                lines.append(f"| {name} | {metric} | {text} |")
        lines += ["", *choice_lines(held_out), skill_goals.format_goals(fold_checks(content)),
                  "", *ensemble_lines(held_out, content)]
    return "\n".join(lines) + "\n"


def choice_lines(held_out: str) -> list[str]:
    """The post-processing chosen on the training sources (--select_...), as report lines."""
    from predrnn_tf.evaluation import postprocessing_selection

    path = os.path.join(_OUTPUT_DIR.value, held_out, "selection", "choice.json")
    if not _SELECT.value or not os.path.exists(path):
        return []
    with open(path) as handle:
        return [postprocessing_selection.describe_choice(json.load(handle), held_out), ""]


def ensemble_lines(held_out: str, content: dict) -> list[str]:
    """--ensemble_noise_grid: the noise chosen, the probabilistic scores and issue 30's goals."""
    from predrnn_tf.evaluation import ensemble_selection

    path = os.path.join(_OUTPUT_DIR.value, held_out, "ensemble_choice.json")
    if not _NOISE_GRID.value or not os.path.exists(path):
        return []
    with open(path) as handle:
        choice = ensemble_selection.describe_choice(json.load(handle), held_out)
    goals = {"model_ensemble": skill_goals.ensemble_goal_margins(content, "model_ensemble",
                                                                 _MIN_LEAD_MINUTES.value)}
    return [choice, "", ensemble_selection.format_table(content),
            skill_goals.format_goals(goals, skill_goals.ENSEMBLE_GOALS), ""]


def check_blend_flags() -> None:
    """ValueError (one line) for a blend flag outside [0, 1] or without its method."""
    from predrnn_tf.models import probability_matching

    try:
        probability_matching.blend_options(_PROBABILITY_MATCHING.value, _PM_BLEND.value,
                                           _PM_STRENGTH.value)
    except ValueError as error:
        raise ValueError(f"--{error}") from None


def check_noise_grid() -> None:
    """ValueError (one line) for a --ensemble_noise_grid value that is not a noise in [0, 10]."""
    for value in _NOISE_GRID.value:
        try:
            noise = float(value)
        except ValueError:
            noise = float("nan")
        if not 0.0 <= noise <= 10.0:
            raise ValueError(f"--ensemble_noise_grid: {value!r} is not a noise standard "
                             f"deviation in [0, 10]; give e.g. --ensemble_noise_grid=0,0.25,0.5,1")
    if _NOISE_GRID.value and _SELECT.value:
        raise ValueError("--ensemble_noise_grid and --select_postprocessing_on_training_sources "
                         "are separate runs; give one of them")
    if _SELECTION_EVERY.value < 1:
        raise ValueError(f"--selection_every_kth_sequence={_SELECTION_EVERY.value}: give 1 "
                         f"(every sequence) or more")
    if _NOISE_GRID.value and _ENSEMBLE_SIZE.value < 2:
        raise ValueError(f"--ensemble_size={_ENSEMBLE_SIZE.value}: an ensemble needs at least "
                         f"2 members")


def main() -> None:
    """Runs the folds and writes OUTPUT_DIR/loso.md (and loso.json)."""
    unknown = sorted(set(_FOLDS.value) - set(_SOURCES.value))
    if unknown:
        raise ValueError(f"--folds: {unknown} not in --sources={','.join(_SOURCES.value)}")
    if len(_SOURCES.value) < 2:
        raise ValueError(f"--sources needs at least two sources, got {_SOURCES.value}")
    check_blend_flags()
    check_noise_grid()
    folds = {source: run_fold(source) for source in (_FOLDS.value or _SOURCES.value)}
    report = format_report(folds)
    files.write_text(os.path.join(_OUTPUT_DIR.value, "loso.md"), report)
    checks = {source: fold_checks(content) for source, content in folds.items()}
    if _NOISE_GRID.value:
        checks = {source: {**checks[source], "model_ensemble (issue 30)":
                           skill_goals.ensemble_goal_margins(content, "model_ensemble",
                                                             _MIN_LEAD_MINUTES.value)}
                  for source, content in folds.items()}
    files.write_json(os.path.join(_OUTPUT_DIR.value, "loso.json"), checks, indent=1)
    print(report)


if __name__ == "__main__":
    flag_parsing.run_tool(main, errors=(ValueError, RuntimeError, OSError))
