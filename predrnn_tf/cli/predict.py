"""Forecast from your own files: a .npy, a folder of PNG frames or a radar archive.

  predrnn-predict --workdir=runs/quickstart --input=past.npy --output_dir=forecast
  predrnn-predict --saved_model=exports/quickstart --input=frames/ --output_dir=forecast
  predrnn-predict --workdir=runs/fmi --input='archive/*.pgm.gz' --importer=fmi_pgm \
      --importer_kwargs='{"gzipped": true}' --output_dir=forecast

Float .npy values are in the physical units the model was trained on (e.g. dBZ; see the
dataset's value_mapping), uint8 values and PNG frames are stored pixels (0..255). Writes
predictions.npy (physical units), frames/N/gt*.png and pd*.png per sequence (the official
code's names), predictions.png (with persistence and extrapolation beside the forecast and
a colour bar in physical units) and predictions.gif; for a radar archive of a rain-rate
model the whole composite, forecast.nc (CF netCDF, UTC times, map coordinates) and maps/.
With --ensemble_size=N (a rain-rate model with the advection prior): ensemble.npy
[B, N, T, H, W, C] in mm/h, predictions.npy the members' median, predictions_mean.npy,
probability/ maps of P(R >= 1 mm/h) and P(R >= 5 mm/h), members in forecast.nc.
The folder is replaced as a whole. Prints one JSON summary line (files used, UTC times).
"""

from __future__ import annotations

import glob
import json
import os

from absl import app, flags, logging

from predrnn_tf.cli import flag_parsing
from predrnn_tf.cli.flag_parsing import (
    MAX_ENSEMBLE_SIZE,
    import_tensorflow_quietly,
    run_app,
    run_or_exit,
)

_WORKDIR = flags.DEFINE_string("workdir", None, "Training work directory (newest checkpoint).")
_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "Exported model: EXPORT_DIR/MODEL_NAME (newest version) or a "
    "version folder. Instead of --workdir.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Checkpoint path prefix (default: the newest in --workdir).")
_INPUT = flags.DEFINE_string("input", None, "A .npy of frames, a folder of PNG frames, or "
                             "(with --importer) a glob or folder of radar files.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the forecast files go.")
_OUTPUT_LENGTH = flags.DEFINE_integer("output_length", None,
                                      "Frames to forecast (default: as trained).")
_WITH_TRUTH = flags.DEFINE_bool(
    "with_truth", False, "The input is input_length frames followed by the true future "
    "(written as gt frames and drawn beside the forecast). Default: the last input_length "
    "frames are the past.")
_INPUT_UNITS = flags.DEFINE_enum(
    "input_units", "auto", ["auto", "physical", "pixels"],
    "Float .npy values: physical units of the model's data (auto, when it has a "
    "value_mapping) or [0, 1] pixels.")
_IMPORTER = flags.DEFINE_string(
    "importer", None, "Read --input as a radar archive with this importer (as "
    "tools/make_radar.py: fmi_pgm, knmi_hdf5, npy, png or a pysteps.io importer).")
_IMPORTER_KWARGS = flags.DEFINE_string("importer_kwargs", "{}",
                                       "JSON keyword arguments of --importer.")
_FILENAME_PATTERN = flags.DEFINE_string(
    "filename_pattern", None, "strftime pattern of the radar file names (sort by time; "
    "default: by name).")
_CROP = flags.DEFINE_string(
    "crop", None, "Radar crop top,left,height,width in source pixels; the model then sees "
    "its centred training-size window (default: the whole composite's valid extent, cut to "
    "a multiple of the patch size).")
_SOURCE_PIXEL_KM = flags.DEFINE_float(
    "source_pixel_km", 0.0, "Radar files' grid spacing in km (0: the importer's metadata, "
    "else the training data's for the same importer; needed for npy/pgm/png radar files).")
_FRAMES_PER_SECOND = flags.DEFINE_float("frames_per_second", 2.0, "GIF frame rate.")
_PROBABILITY_MATCHING = flags.DEFINE_enum(
    "probability_matching", "none", ["none", "last_input", "extrapolation"],
    "Rain-rate models: post-process the forecast (last_input: matched to the last input's "
    "rain-rate distribution; extrapolation: blended with pysteps' extrapolation and mostly "
    "matched to its distribution, needs pysteps).")
_PM_BLEND = flags.DEFINE_float(
    "probability_matching_blend", None, "--probability_matching=extrapolation: the model's "
    "share of the blend with pysteps' extrapolation (mm/h), in [0, 1] (default: 0.5).")
_PM_STRENGTH = flags.DEFINE_float(
    "probability_matching_strength", None, "--probability_matching=extrapolation: how far "
    "the blend moves to its probability-matched field (0: the blend, 1: matched), in [0, 1] "
    "(default: 0.85).")
_ENSEMBLE_SIZE = flags.DEFINE_integer(
    "ensemble_size", 0, "N > 0: an N-member ensemble of a rain-rate model with the advection "
    "prior (--workdir; its motion perturbed as pysteps' STEPS does, one batched call): "
    "writes ensemble.npy, the median as predictions.npy, predictions_mean.npy and "
    "probability maps of P(R >= 1 and 5 mm/h).")


RADAR_ONLY_FLAGS = ("importer_kwargs", "filename_pattern", "crop", "source_pixel_km")
MAX_OUTPUT_LENGTH = 10_000  # frames, as Config's --total_length


def check_model_flags() -> None:
    """Exactly one model source, each an existing work directory / export / checkpoint."""
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.inference.forecaster import saved_model_version_dir
    from predrnn_tf.workdir import WorkDir

    if bool(_WORKDIR.value) == bool(_SAVED_MODEL.value):
        raise ConfigError("give exactly one of --workdir and --saved_model")
    if _SAVED_MODEL.value:
        if _CHECKPOINT.value:
            raise ConfigError("--checkpoint needs --workdir (a SavedModel holds one version)")
        saved_model_version_dir(_SAVED_MODEL.value)
        return
    work = WorkDir(_WORKDIR.value)
    if not work.has_config():
        raise ConfigError(f"--workdir={_WORKDIR.value} is not a training work directory (no "
                          f"{work.config_path})")
    if _CHECKPOINT.value:
        work.checkpoint(_CHECKPOINT.value)  # CheckpointError naming it if it does not exist


def check_input_flags() -> None:
    """--input, --output_dir and the numbers; radar flags only with --importer."""
    from predrnn_tf.data.converters import checks
    from predrnn_tf.errors import ConfigError

    for name in ("input", "output_dir"):
        if not flags.FLAGS[name].value:
            raise ConfigError(f"--{name} is required")
    checks.output_dir(_OUTPUT_DIR.value)
    if _OUTPUT_LENGTH.value is not None:
        checks.integer("output_length", _OUTPUT_LENGTH.value, 1, MAX_OUTPUT_LENGTH)
    checks.number("frames_per_second", _FRAMES_PER_SECOND.value, 0.0, 1000.0, low_open=True)
    checks.integer("ensemble_size", _ENSEMBLE_SIZE.value, 0, MAX_ENSEMBLE_SIZE)
    if _IMPORTER.value:
        checks.number("source_pixel_km", _SOURCE_PIXEL_KM.value, 0.0, 1000.0)
        return
    ignored = [f"--{name}" for name in RADAR_ONLY_FLAGS if flags.FLAGS[name].present]
    if ignored:
        raise ConfigError(f"{', '.join(ignored)} given without --importer: radar flags apply "
                          f"to a radar archive only")
    path = _INPUT.value
    if os.path.isdir(path):
        if not glob.glob(os.path.join(path, "*.png")):
            raise ConfigError(f"--input={path} holds no .png frames")
    elif not os.path.exists(path):
        raise ConfigError(f"--input={path} does not exist")
    elif not os.path.isfile(path):
        raise ConfigError(f"--input={path} is not a regular file (a .npy file or a folder "
                          f"of .png frames)")
    elif not path.lower().endswith(".npy"):
        raise ConfigError(f"--input={path} must be a .npy file or a folder of .png frames "
                          f"(radar files: pass --importer)")


def predict_options():
    """The frozen options of the flags (ConfigError naming a bad flag)."""
    from predrnn_tf.data.converters import imaging, radar
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.inference.frames import RadarArchive
    from predrnn_tf.inference.predict import PredictOptions, pm_blend

    check_input_flags()
    check_model_flags()
    flag_parsing.resolve_path_flags("workdir", "saved_model")
    archive = None
    if _IMPORTER.value:
        try:
            radar.check_importer_name(_IMPORTER.value)
            archive = RadarArchive(
                importer=_IMPORTER.value,
                importer_kwargs=radar.parse_importer_kwargs(_IMPORTER_KWARGS.value),
                filename_pattern=_FILENAME_PATTERN.value,
                crop=imaging.parse_crop(_CROP.value) if _CROP.value else None,
                source_pixel_km=_SOURCE_PIXEL_KM.value)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    options = PredictOptions(
        input=_INPUT.value, output_dir=_OUTPUT_DIR.value, workdir=_WORKDIR.value,
        saved_model=_SAVED_MODEL.value, checkpoint=_CHECKPOINT.value,
        output_length=_OUTPUT_LENGTH.value, with_truth=_WITH_TRUTH.value,
        input_units=_INPUT_UNITS.value, radar_archive=archive,
        frames_per_second=_FRAMES_PER_SECOND.value,
        probability_matching=_PROBABILITY_MATCHING.value,
        probability_matching_blend=_PM_BLEND.value,
        probability_matching_strength=_PM_STRENGTH.value, ensemble_size=_ENSEMBLE_SIZE.value)
    pm_blend(options)  # a wrong blend flag fails before the model is read
    return options


def run() -> None:
    """Forecasts and prints the summary as one JSON line."""
    from predrnn_tf.inference import predict

    options = predict_options()
    with flag_parsing.writing_to("--output_dir", _OUTPUT_DIR.value):
        summary = predict.predict_files(options)
    print(json.dumps(summary, sort_keys=True))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    run_or_exit(run, errors=(ImportError,))


def console_main() -> None:
    """The ``predrnn-predict`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
