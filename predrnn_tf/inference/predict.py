"""The library behind ``predrnn-predict``: files in, a forecast and its pictures out.

Everything is read and checked (model, frames, shapes, units) and the forecast computed
before the first file is written, so a bad input leaves nothing behind.

A radar archive of a rain-rate model is forecast on the whole composite by default: its
valid extent on the model's grid (the recipe's km/pixel), cut to a multiple of the patch
size (:mod:`predrnn_tf.inference.radar_grid`); ``--crop`` keeps the old centred window. The
files used (and their UTC times) are logged and listed in the summary; a file skipped
between them (not on the model's interval) is warned about.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import numpy as np

from predrnn_tf.errors import ConfigError, InputError
from predrnn_tf.inference import forecaster, publishing, radar_grid
from predrnn_tf.inference.forecast_netcdf import ForecastContext
from predrnn_tf.inference.frames import RadarArchive, load_frames
from predrnn_tf.inference.outputs import write_forecast
from predrnn_tf.inference.radar_input import RadarSequence, read_radar_sequence


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """What to forecast from, and where to write.

    Attributes:
      input: a .npy, a folder of PNG frames, or (with ``radar_archive``) radar files.
      output_dir: where the outputs go (created only after the forecast succeeded).
      workdir: a training work directory (its newest checkpoint), or None.
      saved_model: an exported model folder (or one version folder), or None.
      checkpoint: a checkpoint path prefix inside ``workdir`` (default: the newest).
      output_length: frames to forecast (None: as trained; a SavedModel: fixed).
      with_truth: the input holds input_length frames and then the true future (written as
        gt frames and drawn beside the forecast); otherwise its last input_length frames are
        the past to forecast from. A radar archive gives its newest input_length frames
        (with_truth: input_length + output_length), picked like the training data.
      input_units: ``auto``, ``physical`` or ``pixels`` for float .npy files.
      radar_archive: importer options to read ``input`` as a radar archive.
      frames_per_second: GIF frame rate.
      probability_matching: rain-rate models: post-process the forecast
        (:mod:`predrnn_tf.models.probability_matching`: ``none``, ``last_input``,
        ``extrapolation``).
      probability_matching_blend: ``extrapolation``: the model's share of the blend, in
        [0, 1] (None: the method's default).
      probability_matching_strength: ``extrapolation``: how far the blend moves to its
        matched field, in [0, 1] (None: the method's default).
      ensemble_size: N > 0: N members of the model in one batched call per sequence
        (:class:`predrnn_tf.models.ensemble.MotionEnsemble`, a rain-rate radar model with the
        advection prior and a work directory); their median is the forecast (ensemble
        outputs: :mod:`predrnn_tf.inference.outputs`).
    """

    input: str
    output_dir: str
    workdir: str | None = None
    saved_model: str | None = None
    checkpoint: str | None = None
    output_length: int | None = None
    with_truth: bool = False
    input_units: str = "auto"
    radar_archive: RadarArchive | None = None
    frames_per_second: float = 2.0
    probability_matching: str = "none"
    probability_matching_blend: float | None = None
    probability_matching_strength: float | None = None
    ensemble_size: int = 0


def load_forecaster(options: PredictOptions) -> forecaster.Forecaster:
    """The model of ``--workdir`` or ``--saved_model`` (exactly one of them)."""
    if bool(options.workdir) == bool(options.saved_model):
        raise ConfigError("give exactly one of --workdir and --saved_model")
    if options.workdir:
        if not os.path.isdir(options.workdir):
            raise ConfigError(f"--workdir={options.workdir} does not exist")
        return forecaster.from_workdir(options.workdir, options.checkpoint)
    if options.checkpoint:
        raise ConfigError("--checkpoint needs --workdir (a SavedModel holds one version)")
    return forecaster.from_saved_model(options.saved_model)


def split_sequence(frames: np.ndarray, input_length: int, with_truth: bool
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(inputs, truth or None)`` from the loaded ``[B, T, H, W, C]``."""
    length = frames.shape[1]
    if length < input_length:
        raise InputError(f"the input has {length} frames per sequence, the model needs "
                         f"{input_length}")
    if with_truth:
        if length == input_length:
            raise InputError(f"--with_truth needs more than input_length={input_length} "
                             f"frames, the input has {length}")
        return frames[:, :input_length], frames[:, input_length:]
    return frames[:, length - input_length:], None


def frames_to_read(options: PredictOptions, model: forecaster.Forecaster) -> int:
    """Frames a radar archive gives: the past, and with ``with_truth`` the true future."""
    if not options.with_truth:
        return model.input_length
    return model.input_length + (options.output_length or model.trained_output_length)


def quiet_pysteps() -> None:
    """Imports pysteps (if installed) with its stdout banner sent to stderr, so that later
    lazy imports print nothing and stdout stays one JSON line."""
    try:
        radar_grid.import_pysteps_quietly()
    except ImportError:
        pass


def read_radar(options: PredictOptions, model: forecaster.Forecaster) -> RadarSequence:
    """The radar archive's frames (the whole composite unless ``--crop``), files logged."""
    sequence = read_radar_sequence(options.input, options.radar_archive, model.img_width,
                                   model.data or model.value_mapping,
                                   frames_to_read(options, model), patch_size=model.patch_size)
    log = logging.getLogger(__name__)
    stamps = [f"{time:%Y-%m-%d %H:%M}" for time in sequence.times or []]
    log.warning("used %d files%s: %s", len(sequence.paths),
                f" ({stamps[0]} .. {stamps[-1]} UTC)" if stamps else "",
                ", ".join(os.path.basename(path) for path in sequence.paths))
    if sequence.skipped:
        log.warning("skipped %d files between them (not on the model's interval): %s",
                    len(sequence.skipped),
                    ", ".join(os.path.basename(path) for path in sequence.skipped))
    return sequence


def radar_context(sequence: RadarSequence, model: forecaster.Forecaster, input_length: int
                  ) -> ForecastContext | None:
    """The inputs' UTC times, interval and grid, or None without time stamps."""
    interval = ((model.data or {}).get("grid") or {}).get("interval_minutes")
    if not sequence.times or not interval:
        return None
    return ForecastContext(sequence.times[:input_length], float(interval),
                           sequence.georeference)


def files_summary(sequence: RadarSequence | None) -> dict[str, Any]:
    """The files used and skipped (with their UTC times) for the JSON summary."""
    if sequence is None:
        return {}
    times = sequence.times or [None] * len(sequence.paths)
    used = [{"path": os.path.abspath(path),
             "time_utc": None if time is None else f"{time:%Y-%m-%dT%H:%M:%SZ}"}
            for path, time in zip(sequence.paths, times)]
    return {"files": used, "skipped_files": [os.path.abspath(path) for path in
                                             sequence.skipped],
            "frame_size": list(sequence.pixels.shape[1:3])}


def pm_blend(options: PredictOptions) -> dict[str, float]:
    """The given blend weight / strength as ``postprocess`` keywords (ConfigError if wrong)."""
    from predrnn_tf.models import probability_matching

    try:
        return probability_matching.blend_options(options.probability_matching,
                                                  options.probability_matching_blend,
                                                  options.probability_matching_strength)
    except ValueError as error:
        raise ConfigError(f"--{error}") from None


def postprocess(method: str, inputs: np.ndarray, predictions: np.ndarray,
                model: forecaster.Forecaster, blend: dict[str, float] | None = None
                ) -> np.ndarray:
    """``predictions`` post-processed by a probability-matching method (ConfigError if wrong).

    ``blend``: the ``extrapolation`` method's ``model_weight`` / ``strength`` (:func:`pm_blend`).
    """
    from predrnn_tf.models import probability_matching

    if method == "none":
        return predictions
    metadata = {"value_mapping": model.value_mapping}
    extrapolate = None
    try:
        probability_matching.check_method(method)
        if method == "extrapolation":
            from predrnn_tf.evaluation import baselines

            extrapolate = baselines.RainRateNowcast("extrapolation", predictions.shape[1],
                                                    metadata).forecast_rates
        return probability_matching.postprocess(method, inputs, predictions, metadata,
                                                extrapolate, **(blend or {}))
    except ValueError as error:
        raise ConfigError(f"--{error}") from None


def predict_files(options: PredictOptions) -> dict[str, Any]:
    """Forecasts from ``options.input`` and writes the outputs; returns a JSON-ready summary."""
    if not options.output_dir:
        raise ConfigError("--output_dir is required")
    publishing.check_output_dir(options.output_dir)
    blend = pm_blend(options)
    quiet_pysteps()
    model = load_forecaster(options)
    sequence = context = None
    if options.radar_archive is not None:
        sequence = read_radar(options, model)
        frames = sequence.pixels[None]  # [1, T, H, W, 1]
    else:
        frames = load_frames(options.input, model.value_mapping, channels=model.img_channel,
                             input_units=options.input_units, image_size=model.img_width,
                             metadata=model.data)
    inputs, truth = split_sequence(frames, model.input_length, options.with_truth)
    if sequence is not None:
        context = radar_context(sequence, model, model.input_length)
    members = None
    if options.ensemble_size:
        members, predictions = ensemble_forecast(options, inputs, model)
    else:
        predictions = postprocess(options.probability_matching, inputs,
                                  model.forecast(inputs, options.output_length), model,
                                  blend)
    written = write_forecast(options.output_dir, inputs, predictions, truth,
                             model.value_mapping, title=os.path.basename(options.input),
                             frames_per_second=options.frames_per_second, context=context,
                             members=members)
    mapping = model.value_mapping or {}
    return {"model": model.source, "input": os.path.abspath(options.input),
            "sequences": int(inputs.shape[0]), "input_frames": int(inputs.shape[1]),
            "output_frames": int(predictions.shape[1]),
            "truth_frames": 0 if truth is None else int(truth.shape[1]),
            "units": mapping.get("units", "[0, 1] pixels"), **files_summary(sequence),
            "probability_matching": options.probability_matching,
            "probability_matching_blend": options.probability_matching_blend,
            "probability_matching_strength": options.probability_matching_strength,
            "ensemble_size": options.ensemble_size, "written": written}


def ensemble_forecast(options: PredictOptions, inputs: np.ndarray,
                      model: forecaster.Forecaster) -> tuple[np.ndarray, np.ndarray]:
    """``(members [B, N, T, H, W, C], their median in mm/h as pixels [B, T, H, W, C])``."""
    from predrnn_tf import units

    if options.probability_matching != "none":
        raise ConfigError("--ensemble_size and --probability_matching cannot be combined")
    if not units.is_rain_rate_mapping(model.value_mapping):
        raise ConfigError(f"--ensemble_size needs a rain-rate model (dBR value_mapping); "
                          f"{model.source} has {model.value_mapping}")
    members = model.forecast_members(inputs, options.ensemble_size, options.output_length)
    rates = units.pixels_to_rain_rate(members, {"value_mapping": model.value_mapping})
    return members, units.rain_rate_to_unit_pixels(np.median(rates, axis=1)).astype(np.float32)
