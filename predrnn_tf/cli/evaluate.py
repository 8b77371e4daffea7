"""Evaluate a trained model or a baseline on the test split.

  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/quickstart
  python -m predrnn_tf.evaluate --workdir=workdirs/kth --output_dir=eval/kth20 --output_length=20
  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/persistence \
      --baseline=persistence

Writes metrics.json, metrics_per_frame.csv, metrics_per_frame.png, predictions.png and
predictions.gif (and predictions.npz with --save_predictions) into --output_dir. See
``predrnn_tf.evaluation`` for their contents.

The data and precision flags (``--data_dir``, ``--dataset_name``, ``--input_length``,
``--batch_size``, ``--precision``) are the Config's own flags: given on the command line they
override the work directory's ``config.json``, and the result is validated as a Config.
"""

from __future__ import annotations

import math
import os
from typing import Any

from absl import app, flags, logging

from predrnn_tf.cli import flag_parsing
from predrnn_tf.cli.flag_parsing import (
    config_from_flags,
    define_config_flags,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

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
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Checkpoint path prefix (default: the newest in --workdir).")
_OUTPUT_LENGTH = flags.DEFINE_integer(
    "output_length", 0, "Frames to forecast (default: as trained); may exceed the training "
    "length, e.g. KTH 10 -> 20, if the test sequences are long enough.")
_SAVE_PREDICTIONS = flags.DEFINE_bool(
    "save_predictions", False, "Also write predictions.npz (inputs, truth, predictions).")
_BASELINE = flags.DEFINE_enum("baseline", None, ["persistence", "extrapolation"],
                              "Evaluate a baseline instead of the model.")
_BASELINES = flags.DEFINE_string(
    "baselines", "", "Rain-rate (dBR) datasets: comma list of persistence, extrapolation, "
    "sprog, advection (the recipe's TF advection prior alone) scored beside the model in the "
    "same run (one table, metrics.json under each name). Without --workdir only the "
    "baselines are scored.")
_RAIN_THRESHOLDS = flags.DEFINE_string(
    "rain_thresholds", "0.5,1,5,10", "Rain-rate datasets: mm/h thresholds of CSI, POD, FAR, "
    "ETS, HSS.")
_FSS_THRESHOLDS = flags.DEFINE_string("fss_thresholds", "1,5",
                                      "Rain-rate datasets: mm/h thresholds of the FSS.")
_FSS_SCALES_KM = flags.DEFINE_string("fss_scales_km", "1,4,16",
                                     "Rain-rate datasets: FSS windows in km.")
_EVERY = flags.DEFINE_integer("every_kth_sequence", 1, "Rain-rate datasets: score every k-th "
                              "test sequence only (an even spread; 1 = all).")
_NUM_SEQUENCES = flags.DEFINE_integer("num_sequences", 0,
                                      "Evaluate only the first N test sequences (0: all).")
_THRESHOLDS = flags.DEFINE_string("thresholds", "30,40,50",
                                  "dBZ thresholds of CSI/POD/FAR/HSS (radar datasets).")
_FSS_SCALES = flags.DEFINE_string("fss_scales", "",
                                  "Neighbourhood sizes in pixels for the fractions skill score, "
                                  "e.g. 1,5,9 (empty: no FSS).")
_LPIPS_WEIGHTS = flags.DEFINE_string(
    "lpips_weights", None, "LPIPS weights .npz from tools/convert_lpips_weights.py (without it "
    "LPIPS is reported as skipped).")
_LPIPS_UNSCALED_INPUTS = flags.DEFINE_bool(
    "lpips_unscaled_inputs", False, "Feed LPIPS [0, 1] frames as the official predrnn-pytorch "
    "trainer does (default: [-1, 1], as LPIPS expects); for comparison with its numbers.")
_NUM_STRIPS = flags.DEFINE_integer("num_strips", 3, "Sequences drawn in predictions.png/.gif.")
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
    from predrnn_tf.errors import ConfigError
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


def check_number_lists() -> None:
    """Parses every comma-list flag up front (some are read only for rain-rate datasets)."""
    for name, (kind, *_) in NUMBER_LISTS.items():
        parse_numbers(flags.FLAGS[name].value, name, kind)


def make_lpips(weights: dict | None, frame_size: int) -> tuple[object | None, str]:
    """The LPIPS callable for the weights of --lpips_weights, or (None, why it is skipped)."""
    from predrnn_tf.evaluation import lpips
    if weights is None:
        return None, (f"no --lpips_weights given; make the weights file with: "
                      f"{lpips.CONVERT_COMMAND} and pass --lpips_weights=lpips_alex.npz")
    if frame_size < lpips.MINIMUM_SIZE:
        return None, (f"frames of {frame_size} pixels are smaller than AlexNet's "
                      f"{lpips.MINIMUM_SIZE}-pixel minimum")
    model = lpips.LPIPS(rescale_inputs=not _LPIPS_UNSCALED_INPUTS.value)
    model.set_torch_weights(weights)
    return lpips.LPIPSDistance(model), ""


def check_flags() -> None:
    """The checks on the evaluate-only flags that need no file."""
    from predrnn_tf.errors import ConfigError

    if not _OUTPUT_DIR.value:
        raise ConfigError("--output_dir is required")
    if not _WORKDIR.value and not _BASELINE.value and not _BASELINES.value:
        raise ConfigError("--workdir is required (or pass --baseline=persistence|extrapolation "
                          "or --baselines=...)")
    for name in ("output_length", "num_sequences", "num_strips"):
        if flags.FLAGS[name].value < 0:
            raise ConfigError(f"--{name} must be >= 0, got {flags.FLAGS[name].value}")
    if "every_kth_sequence" in flags.FLAGS and flags.FLAGS["every_kth_sequence"].value < 1:
        raise ConfigError(f"--every_kth_sequence must be >= 1, got "
                          f"{flags.FLAGS['every_kth_sequence'].value}")
    fps = _FRAMES_PER_SECOND.value
    if not 0 < fps <= 1000:  # also refuses NaN and infinity
        raise ConfigError(f"--frames_per_second must be in (0, 1000], got {fps}")
    output_dir = os.path.abspath(_OUTPUT_DIR.value)
    parent = output_dir
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
    """The workdir's Config (or one from the flags alone) with the data flags given applied.

    Without ``--workdir`` the input and output lengths come from the flags. ConfigError
    names the flag of an invalid value (e.g. ``--precision``).
    """
    from predrnn_tf.config import Config, load_config

    if _WORKDIR.value:
        return config_from_flags(load_config(_WORKDIR.value), only_set=True)
    input_length = flags.FLAGS["input_length"].value
    base = Config(input_length=input_length, total_length=input_length + _OUTPUT_LENGTH.value)
    return config_from_flags(base, only_set=True)


def restore_model(config) -> tuple[Any, str]:
    """The trained model of --workdir at --checkpoint under the chosen precision."""
    from predrnn_tf import checkpoints
    from predrnn_tf.config import load_config
    from predrnn_tf.errors import ConfigError

    trained = load_config(_WORKDIR.value)
    if config.input_length != trained.input_length:
        raise ConfigError(f"--input_length={config.input_length} differs from the model's "
                          f"input_length={trained.input_length}")
    checkpoint = _CHECKPOINT.value or checkpoints.latest_checkpoint(_WORKDIR.value)
    model, _ = checkpoints.restore(_WORKDIR.value, checkpoint, precision=config.precision)
    return model, checkpoint


def open_test_set(config, needed: int, check_against_model: bool):
    """``(dataset, metadata, data_dir)`` of the test split with ``needed`` frames each."""
    from predrnn_tf.data import mixing, reader
    from predrnn_tf.data.sources import resolve_data_dir
    from predrnn_tf.errors import DataError

    data_dir = resolve_data_dir(config, _WORKDIR.value)
    metadata = mixing.read_metadata(data_dir, config.dataset_name)
    stored = metadata.get("test_sequence_length", metadata.get("sequence_length"))
    if stored is None or stored < needed:
        raise DataError(f"dataset {config.dataset_name!r} has test sequences of {stored} frames "
                        f"but input_length + output_length = {needed} are needed "
                        f"(--output_length={_OUTPUT_LENGTH.value or 'as trained'})")
    if check_against_model:
        reader.check_metadata(metadata, config, "test", sequence_length=needed)
    # The model's frame size (larger stored frames: centred crop); baselines alone: as stored.
    frame_size = (config.img_width if _WORKDIR.value or flags.FLAGS["img_width"].present
                  else None)
    dataset = reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                                  needed, shuffle=False, repeat=False, deterministic=True,
                                  drop_remainder=False, frame_size=frame_size)
    if metadata.get("synthetic"):
        logging.info("Evaluating on SYNTHETIC data %r (generated, not observed).",
                     config.dataset_name)
    return dataset, metadata, data_dir


def evaluation_options(config, output_length: int):
    """The :class:`~predrnn_tf.evaluation.evaluator.EvaluationOptions` of the flags."""
    from predrnn_tf.evaluation import evaluator

    return evaluator.EvaluationOptions(
        input_length=config.input_length, output_length=output_length,
        thresholds=parse_numbers(_THRESHOLDS.value, "thresholds", float),
        fss_scales=parse_numbers(_FSS_SCALES.value, "fss_scales", int),
        num_sequences=_NUM_SEQUENCES.value, save_predictions=_SAVE_PREDICTIONS.value,
        num_strips=_NUM_STRIPS.value, frames_per_second=_FRAMES_PER_SECOND.value,
        name=_BASELINE.value or config.model_name)


def print_summary(result: dict[str, Any]) -> None:
    """The headline line, why LPIPS was skipped, and the files written."""
    from predrnn_tf.evaluation import evaluator

    print(evaluator.summary_line(result))
    if "lpips" in result["skipped"]:
        print(f"LPIPS skipped: {result['skipped']['lpips']}")
    print(f"wrote {os.path.join(_OUTPUT_DIR.value, evaluator.METRICS_FILENAME)} and "
          f"{', '.join(sorted(result['files'].values()))}")


def log_start(checkpoint: str | None) -> None:
    """One line: the absolute --workdir and what is evaluated (as training logs its start)."""
    if not _WORKDIR.value:
        return
    if checkpoint:
        doing = f"evaluating {flag_parsing.describe_checkpoint(checkpoint)}"
    else:
        doing = f"evaluating the {_BASELINE.value or _BASELINES.value} baseline(s) on its data"
    flag_parsing.log_workdir(_WORKDIR.value, doing)


def run() -> None:
    """Builds everything from the flags and runs the evaluation."""
    from predrnn_tf import units
    from predrnn_tf.evaluation import baselines, evaluator, lpips

    check_flags()
    check_number_lists()
    flag_parsing.resolve_path_flags("workdir")
    config = evaluation_config()
    output_length = _OUTPUT_LENGTH.value or config.output_length
    options = evaluation_options(config, output_length)
    # Read the LPIPS weights first: a wrong path fails before any slow work.
    lpips_weights = (lpips.read_weights_file(_LPIPS_WEIGHTS.value) if _LPIPS_WEIGHTS.value
                     else None)
    model = checkpoint = None
    if not _BASELINE.value and (_WORKDIR.value or not _BASELINES.value):
        model, checkpoint = restore_model(config)
    log_start(checkpoint)
    dataset, metadata, data_dir = open_test_set(config, config.input_length + output_length,
                                                check_against_model=model is not None)
    if _BASELINES.value or units.is_rain_rate_mapping(metadata):
        run_radar(config, model, checkpoint, dataset, metadata, output_length)
        return
    forecaster = model if model is not None else baselines.make_baseline(_BASELINE.value,
                                                                          output_length)
    lpips_model, lpips_reason = make_lpips(
        lpips_weights, min(metadata["image_height"], metadata["image_width"]))
    info = {"workdir": _WORKDIR.value, "checkpoint": checkpoint, "baseline": _BASELINE.value,
            "data_dir": data_dir,
            "lpips_inputs": "[0, 1] (official trainer)" if _LPIPS_UNSCALED_INPUTS.value
            else "[-1, 1]"}
    result = evaluator.evaluate(forecaster, dataset, _OUTPUT_DIR.value, options,
                                metadata=metadata, lpips_model=lpips_model,
                                lpips_skip_reason=lpips_reason, info=info)
    print_summary(result)


def run_radar(config, model, checkpoint, dataset, metadata, output_length: int) -> None:
    """The model and ``--baselines`` on radar terms in one pass (rain-rate datasets)."""
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.evaluation import baselines, evaluator, radar_evaluation

    names = [name.strip() for name in _BASELINES.value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(baselines.BASELINES))
    if unknown:
        raise ConfigError(f"--baselines: unknown {unknown}; expected some of "
                          f"{', '.join(baselines.BASELINES)}")
    forecasters = {}
    if model is not None:
        forecasters["model"] = evaluator.as_forecaster(model, output_length)
    for name in names:
        forecasters[name] = baselines.make_baseline(name, output_length, metadata)
    if not forecasters:
        raise ConfigError("nothing to evaluate: give --workdir and/or --baselines")
    content = radar_evaluation.evaluate_forecasters(
        forecasters, radar_evaluation.every_kth(dataset, _EVERY.value), metadata,
        _OUTPUT_DIR.value, config.input_length, output_length,
        save_predictions=_SAVE_PREDICTIONS.value,
        info={"workdir": _WORKDIR.value, "checkpoint": checkpoint,
              "every_kth_sequence": _EVERY.value},
        thresholds=parse_numbers(_RAIN_THRESHOLDS.value, "rain_thresholds", float),
        fss_thresholds=parse_numbers(_FSS_THRESHOLDS.value, "fss_thresholds", float),
        fss_scales_km=parse_numbers(_FSS_SCALES_KM.value, "fss_scales_km", float))
    print(radar_evaluation.format_table(content["forecasters"], content["lead_minutes"]))
    print(f"wrote {os.path.join(_OUTPUT_DIR.value, radar_evaluation.METRICS_FILENAME)}, "
          f"{radar_evaluation.TABLE_FILENAME} and {radar_evaluation.PLOT_FILENAME}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    run_or_exit(run, errors=(ImportError, ValueError))


def console_main() -> None:
    """The ``predrnn-evaluate`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
