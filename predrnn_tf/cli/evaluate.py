"""Evaluate a trained model or a baseline on the test split.

  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/quickstart
  python -m predrnn_tf.evaluate --workdir=workdirs/kth --output_dir=eval/kth20 --output_length=20
  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/persistence \
      --baseline=persistence

Writes metrics.json, metrics_per_frame.csv, metrics_per_frame.png, predictions.png and
predictions.gif (and predictions.npz with --save_predictions) into --output_dir. This module
only parses flags: :func:`predrnn_tf.evaluation.run.evaluate` does the work.

The data and precision flags (``--data_dir``, ``--dataset_name``, ``--input_length``,
``--batch_size``, ``--precision``) are the Config's own flags: given on the command line they
override the work directory's ``config.json``, and the result is validated as a Config.
"""

from __future__ import annotations

import math
import os

from absl import app, flags, logging

from predrnn_tf.cli import flag_parsing
from predrnn_tf.cli.flag_parsing import (
    MAX_ENSEMBLE_SIZE,
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)
from predrnn_tf.errors import ConfigError
from predrnn_tf.evaluation.pysteps_settings import STEPS_DEFAULT_SEED

MAX_ENSEMBLE_SEED = 2**31 - 2**16  # STEPS adds its default seed and the sequence's index

# Config fields that evaluate reads from the command line; the rest come from the workdir.
CONFIG_FLAGS = ("data_dir", "dataset_name", "input_length", "batch_size", "precision",
                "img_width")
define_config_flags(only=CONFIG_FLAGS,
                    help_suffix="When given, overrides the --workdir's config.json value.")
flags.adopt_module_key_flags(flag_parsing)  # list them in --help with this module's flags
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Training work directory (config.json + checkpoints/). Optional with "
    "--baseline if --data_dir, --dataset_name and --input_length are given.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the result files.")
flags.DEFINE_string("checkpoint", None,
                    "Checkpoint path prefix (default: the newest in --workdir).")
flags.DEFINE_integer(
    "output_length", 0, "Frames to forecast (default: as trained); may exceed the training "
    "length, e.g. KTH 10 -> 20, if the test sequences are long enough.")
flags.DEFINE_bool("save_predictions", False,
                  "Also write predictions.npz (inputs, truth, predictions).")
flags.DEFINE_enum("probability_matching", "none",
                  ["none", "last_input", "extrapolation", "pooled"],
                  "Rain-rate models: also score model_pm, the model's forecast post-processed: "
                  "last_input = matched to the last input's rain-rate distribution; "
                  "extrapolation = blended with pysteps' extrapolation and mostly matched to "
                  "its distribution (needs pysteps). With --ensemble_size also "
                  "model_ensemble_pm, each member post-processed so (as STEPS matches each "
                  "member); pooled (needs --ensemble_size): the members only, each matched "
                  "to all the members' pooled distribution at that lead.")
flags.DEFINE_float("probability_matching_blend", None,
                   "--probability_matching=extrapolation: the model's share of the blend with "
                   "pysteps' extrapolation (mm/h), in [0, 1] (default: 0.5).")
flags.DEFINE_float("probability_matching_strength", None,
                   "--probability_matching=extrapolation: how far the blend moves to its "
                   "probability-matched field (0: the blend, 1: matched), in [0, 1] "
                   "(default: 0.85).")
flags.DEFINE_integer(
    "ensemble_size", 0, "Rain-rate models with the advection prior: N > 0 also scores "
    "model_ensemble, N members of the model (its motion perturbed as STEPS does, one batched "
    "forecast), STEPS with N members, and every other forecaster as a one-member ensemble: "
    "CRPS, rank histogram, reliability, ROC area at 1 and 5 mm/h, spread-skill ratio per lead; "
    "contingency scores of an ensemble are its median's. 0: deterministic scores only.")
flags.DEFINE_integer(
    "ensemble_seed", 0, "Seed of the ensembles' draws: model_ensemble's members "
    f"(--ensemble_size) draw from it, --baselines=steps from its default seed "
    f"{STEPS_DEFAULT_SEED} plus it. Another value measures how much the scores depend on the "
    "draw.")
_BASELINE = flags.DEFINE_enum("baseline", None, ["persistence", "extrapolation"],
                              "Evaluate a baseline instead of the model.")
_BASELINES = flags.DEFINE_string(
    "baselines", "", "Rain-rate (dBR) datasets: comma list of persistence, extrapolation, "
    "sprog, advection (the recipe's TF advection prior alone), steps (pysteps' STEPS "
    "ensemble of 20 members or --ensemble_size, scored by its median) scored beside the "
    "model in the same run (one table, metrics.json under each name). Without --workdir only the "
    "baselines are scored. A baseline failing on a sequence is counted, not fatal.")
flags.DEFINE_string("rain_thresholds", "0.5,1,5,10", "Rain-rate datasets: mm/h thresholds of "
                    "CSI, POD, FAR, ETS, HSS, bias (event: value > threshold, as pysteps).")
flags.DEFINE_string("fss_thresholds", "1,5", "Rain-rate datasets: mm/h thresholds of the FSS "
                    "(event: value >= threshold, as pysteps).")
flags.DEFINE_string("fss_scales_km", "1,4,16", "Rain-rate datasets: FSS windows in km.")
flags.DEFINE_integer("every_kth_sequence", 1, "Rain-rate datasets: score every k-th test "
                     "sequence only (an even spread; 1 = all).")
flags.DEFINE_integer("num_sequences", 0, "Evaluate only the first N test sequences (0: all).")
flags.DEFINE_string("thresholds", "30,40,50",
                    "dBZ thresholds of CSI/POD/FAR/ETS/HSS/bias (radar datasets).")
flags.DEFINE_string("fss_scales", "", "Neighbourhood sizes in pixels for the fractions skill "
                    "score, e.g. 1,5,9 (empty: no FSS).")
flags.DEFINE_string(
    "lpips_weights", None, "LPIPS weights .npz from tools/convert_lpips_weights.py (without it "
    "LPIPS is reported as skipped).")
flags.DEFINE_bool(
    "lpips_unscaled_inputs", False, "Feed LPIPS [0, 1] frames as the official predrnn-pytorch "
    "trainer does (default: [-1, 1], as LPIPS expects); for comparison with its numbers.")
flags.DEFINE_integer("num_strips", 3, "Sequences drawn in predictions.png/.gif.")
_FRAMES_PER_SECOND = flags.DEFINE_float("frames_per_second", 2.0, "GIF frame rate.")

# Comma-list flags: (element type, lowest, highest, lowest excluded).
NUMBER_LISTS = {"thresholds": (float, 0.0, 100.0, False), "fss_scales": (int, 1, 10_000, False),
                "rain_thresholds": (float, 0.0, 1000.0, True),
                "fss_thresholds": (float, 0.0, 1000.0, True),
                "fss_scales_km": (float, 0.0, 10_000.0, True)}


def parse_numbers(text: str, flag_name: str, kind: type) -> tuple:
    """"30,40" -> (30.0, 40.0); ConfigError naming the flag otherwise.

    Values must be finite and inside the flag's range in :data:`NUMBER_LISTS` (if listed).
    """
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"--{flag_name} must be comma-separated numbers, got {text!r}") \
            from error
    _, low, high, low_open = NUMBER_LISTS.get(flag_name, (kind, 1 if kind is int else -math.inf,
                                                          math.inf, False))
    for value in values:
        inside = (low < value if low_open else low <= value) and value <= high
        if not (math.isfinite(value) and inside):
            bracket = "(" if low_open else "["
            raise ConfigError(f"--{flag_name}={text} must list finite numbers in "
                              f"{bracket}{low:g}, {high:g}], got {value}")
    return values


def check_flags() -> None:
    """The checks on the evaluate-only flags that need no file."""
    if not _OUTPUT_DIR.value:
        raise ConfigError("--output_dir is required")
    if not _WORKDIR.value and not _BASELINE.value and not _BASELINES.value:
        raise ConfigError("--workdir is required (or pass --baseline=persistence|extrapolation "
                          "or --baselines=...)")
    for name in ("output_length", "num_sequences", "num_strips", "ensemble_size",
                 "ensemble_seed"):
        if flags.FLAGS[name].value < 0:
            raise ConfigError(f"--{name} must be >= 0, got {flags.FLAGS[name].value}")
    if flags.FLAGS.ensemble_seed > MAX_ENSEMBLE_SEED:
        raise ConfigError(f"--ensemble_seed must be at most {MAX_ENSEMBLE_SEED}, got "
                          f"{flags.FLAGS.ensemble_seed}")
    if flags.FLAGS.ensemble_size > MAX_ENSEMBLE_SIZE:
        raise ConfigError(f"--ensemble_size must be at most {MAX_ENSEMBLE_SIZE} members, got "
                          f"{flags.FLAGS.ensemble_size}")
    if flags.FLAGS.every_kth_sequence < 1:
        raise ConfigError(f"--every_kth_sequence must be >= 1, got "
                          f"{flags.FLAGS.every_kth_sequence}")
    if not 0 < _FRAMES_PER_SECOND.value <= 1000:  # also refuses NaN and infinity
        raise ConfigError(f"--frames_per_second must be in (0, 1000], got "
                          f"{_FRAMES_PER_SECOND.value}")
    parent = os.path.abspath(_OUTPUT_DIR.value)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"--output_dir={_OUTPUT_DIR.value} cannot be a folder: {parent} is a "
                          f"file")
    if not _WORKDIR.value:
        for name in ("dataset_name", "data_dir", "input_length", "output_length"):
            if not flags.FLAGS[name].present:
                raise ConfigError(f"--{name} is required without --workdir")


def evaluation_config():
    """The workdir's Config (or one from the flags alone) with the data flags given applied."""
    from predrnn_tf.config import Config
    from predrnn_tf.workdir import WorkDir

    if _WORKDIR.value:
        return config_from_flags(WorkDir(_WORKDIR.value).config, only_set=True)
    input_length = flags.FLAGS.input_length
    base = Config(input_length=input_length,
                  total_length=input_length + flags.FLAGS.output_length)
    return config_from_flags(base, only_set=True)


def evaluate_options():
    """The frozen :class:`~predrnn_tf.evaluation.run.EvaluateOptions` of the flags."""
    from predrnn_tf.evaluation.run import EvaluateOptions

    lists = {name: parse_numbers(flags.FLAGS[name].value, name, kind)
             for name, (kind, *_) in NUMBER_LISTS.items()}
    names = ("checkpoint", "output_length", "every_kth_sequence", "num_sequences",
             "save_predictions", "lpips_weights", "lpips_unscaled_inputs", "num_strips",
             "frames_per_second", "probability_matching", "ensemble_size", "ensemble_seed")
    blend = pm_blend_options()
    return EvaluateOptions(
        output_dir=_OUTPUT_DIR.value, baseline=_BASELINE.value,
        baselines=tuple(name.strip() for name in _BASELINES.value.split(",") if name.strip()),
        crop_to_model=bool(_WORKDIR.value) or flags.FLAGS["img_width"].present,
        **lists, **{name: flags.FLAGS[name].value for name in names},
        **{f"probability_matching_{key}": value for key, value in blend.items()})


def pm_blend_options() -> dict[str, float]:
    """``{"blend"|"strength": value}`` of the probability-matching flags given (checked)."""
    from predrnn_tf.models import probability_matching

    try:
        given = probability_matching.blend_options(
            flags.FLAGS.probability_matching, flags.FLAGS.probability_matching_blend,
            flags.FLAGS.probability_matching_strength)
    except ValueError as error:
        raise ConfigError(f"--{error}") from None
    return {"blend" if key == "model_weight" else key: value for key, value in given.items()}


def log_start(checkpoint: str | None) -> None:
    """One line: the absolute --workdir and what is evaluated (as training logs its start)."""
    if not _WORKDIR.value:
        return
    if checkpoint:
        doing = f"evaluating {flag_parsing.describe_checkpoint(checkpoint)}"
    else:
        doing = f"evaluating the {_BASELINE.value or _BASELINES.value} baseline(s) on its data"
    flag_parsing.log_workdir(_WORKDIR.value, doing)


def evaluate_from_flags() -> None:
    """Builds the Config and options from the flags and runs the evaluation."""
    from predrnn_tf.evaluation import run
    from predrnn_tf.training import cpu_features

    check_flags()
    options = evaluate_options()
    flag_parsing.resolve_path_flags("workdir")
    config = evaluation_config()
    cpu_features.warn_if_emulated_bfloat16(config.precision)
    with flag_parsing.writing_to("--output_dir", options.output_dir or os.getcwd()):
        result = run.evaluate(config, _WORKDIR.value, options, on_start=log_start)
    print(run.summary(result, options.output_dir))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    run_or_exit(evaluate_from_flags, errors=(ImportError, ValueError))


def console_main() -> None:
    """The ``predrnn-evaluate`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
