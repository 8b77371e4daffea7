"""Evaluate a trained model or a baseline on the test split.

  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/quickstart
  python -m predrnn_tf.evaluate --workdir=workdirs/kth --output_dir=eval/kth20 --output_length=20
  python -m predrnn_tf.evaluate --workdir=workdirs/quickstart --output_dir=eval/persistence \
      --baseline=persistence

Writes metrics.json, metrics_per_frame.csv, metrics_per_frame.png, predictions.png and
predictions.gif (and predictions.npz with --save_predictions) into --output_dir. See
``predrnn_tf.evaluation`` for their contents.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from predrnn_tf.cli.flag_parsing import import_tensorflow_quietly, run_app, run_or_exit

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Training work directory (config.json + checkpoints/). Optional with "
    "--baseline if --data_dir, --dataset_name and --input_length are given.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the result files.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Checkpoint path prefix (default: the newest in --workdir).")
_OUTPUT_LENGTH = flags.DEFINE_integer(
    "output_length", 0, "Frames to forecast (default: as trained); may exceed the training "
    "length, e.g. KTH 10 -> 20, if the test sequences are long enough.")
_INPUT_LENGTH = flags.DEFINE_integer("input_length", 0,
                                     "Input frames (default: as trained; needed without "
                                     "--workdir).")
_SAVE_PREDICTIONS = flags.DEFINE_bool(
    "save_predictions", False, "Also write predictions.npz (inputs, truth, predictions).")
_BASELINE = flags.DEFINE_enum("baseline", None, ["persistence", "extrapolation"],
                              "Evaluate a baseline instead of the model.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Dataset folder (default: the workdir's training data).")
_DATASET_NAME = flags.DEFINE_string("dataset_name", None,
                                    "Dataset name (default: the workdir's).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 0, "Sequences per batch (default: as trained, "
                                   "or 8).")
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
_PRECISION = flags.DEFINE_string("precision", None,
                                 "Compute precision of the model (default: as trained).")


def parse_numbers(text: str, flag_name: str, kind: type) -> tuple:
    """"30,40" -> (30.0, 40.0); ConfigError naming the flag otherwise."""
    from predrnn_tf.config import ConfigError
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"--{flag_name} must be comma-separated numbers, got {text!r}") \
            from error
    if kind is int and any(value < 1 for value in values):
        raise ConfigError(f"--{flag_name} must be positive integers, got {text!r}")
    return values


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


def _check_test_length(metadata: dict, name: str, needed: int) -> None:
    from predrnn_tf.data.schema import DataError
    stored = metadata.get("test_sequence_length", metadata.get("sequence_length"))
    if stored is None or stored < needed:
        raise DataError(f"dataset {name!r} has test sequences of {stored} frames but "
                        f"input_length + output_length = {needed} are needed "
                        f"(--output_length={_OUTPUT_LENGTH.value or 'as trained'})")


def run() -> None:
    """Builds everything from the flags and runs the evaluation."""
    from predrnn_tf import checkpoints
    from predrnn_tf.config import ConfigError, load_config
    from predrnn_tf.data import reader, schema
    from predrnn_tf.evaluation import baselines, lpips
    from predrnn_tf.evaluation import evaluator as evaluation

    workdir, baseline = _WORKDIR.value, _BASELINE.value
    if not _OUTPUT_DIR.value:
        raise ConfigError("--output_dir is required")
    if not workdir and not baseline:
        raise ConfigError("--workdir is required (or pass --baseline=persistence|extrapolation)")
    thresholds = parse_numbers(_THRESHOLDS.value, "thresholds", float)
    fss_scales = parse_numbers(_FSS_SCALES.value, "fss_scales", int)
    for name in ("output_length", "input_length", "batch_size", "num_sequences"):
        if flags.FLAGS[name].value < 0:
            raise ConfigError(f"--{name} must be >= 0, got {flags.FLAGS[name].value}")

    # Read the LPIPS weights first: a wrong path fails before any slow work.
    lpips_weights = (lpips.read_weights_file(_LPIPS_WEIGHTS.value) if _LPIPS_WEIGHTS.value
                     else None)
    config = load_config(workdir) if workdir else None
    model = checkpoint = None
    if not baseline:
        checkpoint = _CHECKPOINT.value or checkpoints.latest_checkpoint(workdir)
        import predrnn_tf
        model, config = predrnn_tf.restore(workdir, checkpoint, precision=_PRECISION.value)

    dataset_name = _DATASET_NAME.value or (config.dataset_name if config else None)
    if not dataset_name:
        raise ConfigError("--dataset_name is required without --workdir")
    data_dir = _DATA_DIR.value
    if not data_dir:
        if config is None:
            raise ConfigError("--data_dir is required without --workdir")
        from predrnn_tf.data.sources import resolve_data_dir
        data_dir = resolve_data_dir(config.replace(dataset_name=dataset_name), workdir)
    input_length = _INPUT_LENGTH.value or (config.input_length if config else 0)
    output_length = _OUTPUT_LENGTH.value or (config.output_length if config else 0)
    if not input_length or not output_length:
        raise ConfigError("--input_length and --output_length are required without --workdir")
    if model is not None and input_length != config.input_length:
        raise ConfigError(f"--input_length={input_length} differs from the model's "
                          f"input_length={config.input_length}")
    needed = input_length + output_length

    metadata = schema.read_metadata(data_dir, dataset_name)
    _check_test_length(metadata, dataset_name, needed)
    if model is not None:
        reader.check_metadata(metadata, config.replace(dataset_name=dataset_name), "test",
                              sequence_length=needed)
    batch_size = _BATCH_SIZE.value or (config.batch_size if config else 8)
    dataset = reader.make_dataset(data_dir, dataset_name, "test", batch_size, needed,
                                  shuffle=False, repeat=False, deterministic=True,
                                  drop_remainder=False)
    if metadata.get("synthetic"):
        logging.info("Evaluating on SYNTHETIC data %r (generated, not observed).", dataset_name)

    forecaster = model if model is not None else baselines.make_baseline(baseline,
                                                                          output_length)
    lpips_model, lpips_reason = make_lpips(
        lpips_weights, min(metadata["image_height"], metadata["image_width"]))
    options = evaluation.EvaluationOptions(
        input_length=input_length, output_length=output_length, thresholds=thresholds,
        fss_scales=fss_scales, num_sequences=_NUM_SEQUENCES.value,
        save_predictions=_SAVE_PREDICTIONS.value, num_strips=_NUM_STRIPS.value,
        frames_per_second=_FRAMES_PER_SECOND.value,
        name=baseline or config.model_name)
    info = {"workdir": workdir, "checkpoint": checkpoint, "baseline": baseline,
            "data_dir": data_dir,
            "lpips_inputs": "[0, 1] (official trainer)" if _LPIPS_UNSCALED_INPUTS.value
            else "[-1, 1]"}
    result = evaluation.evaluate(forecaster, dataset, _OUTPUT_DIR.value, options,
                                 metadata=metadata, lpips_model=lpips_model,
                                 lpips_skip_reason=lpips_reason, info=info)
    print(evaluation.summary_line(result))
    if "lpips" in result["skipped"]:
        print(f"LPIPS skipped: {result['skipped']['lpips']}")
    print(f"wrote {os.path.join(_OUTPUT_DIR.value, evaluation.METRICS_FILENAME)} and "
          f"{', '.join(sorted(result['files'].values()))}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    from predrnn_tf.evaluation.lpips import LPIPSWeightsError
    run_or_exit(run, errors=(LPIPSWeightsError, ImportError))


def console_main() -> None:
    """The ``predrnn-evaluate`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
