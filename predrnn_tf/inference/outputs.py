"""What ``predrnn-predict`` writes: the forecast in physical units and pictures of it.

The folder is published as a whole (:mod:`predrnn_tf.inference.publishing`): staged, every
write checked, then renamed over ``OUTPUT_DIR`` (an earlier forecast there is replaced
completely; a folder with other files is refused). ``OUTPUT_DIR/``:

- ``predictions.npy``: ``[B, output_length, H, W, C]`` float32 in the model's physical units
  (its ``value_mapping``: e.g. dBZ, or mm/h for rain rate stored in dBR), or in [0, 1] when
  it has none;
- ``frames/N/`` per sequence (N = 1, 2, ...), the official code's names: ``gt1.png`` ..
  (the input frames, then the true future when given) and ``pdK.png`` for the forecast
  frames K = input_length + 1 ... (stored pixels, 0..255 gray or RGB);
- ``predictions.png``: a strip per sequence (truth or inputs, forecast, persistence and,
  with pysteps, extrapolation) with a colour bar labelled in physical units;
- ``predictions.gif``: the same as an animation (when a GIF writer is available);
- a radar archive of a rain-rate model: ``forecast.nc`` (CF netCDF with the inputs, the
  truth with ``--with_truth``, UTC times and map coordinates:
  :mod:`~predrnn_tf.inference.forecast_netcdf`) and ``maps/`` (pysteps' precipitation scale,
  :mod:`~predrnn_tf.inference.forecast_maps`);
- ``predict_outputs.json``: the list of the files written;
- with ``--ensemble_size=N`` (``members``): ``ensemble.npy`` ``[B, N, T, H, W, C]`` in
  physical units, ``predictions.npy`` is the members' median and ``predictions_mean.npy``
  their mean, ``probability/`` the maps of P(R >= 1 mm/h) and P(R >= 5 mm/h) of the first
  sequence (percent, UTC times with a radar archive: :func:`.forecast_maps.write_probability_maps`)
  and ``forecast.nc`` holds every member (an ``ens_number`` dimension) with the median and mean.

For a rain-rate model the forecast is NaN where the newest input frame has no data
(outside radar coverage), as in the export's ``predict_mm_per_hour``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from predrnn_tf import files, units
from predrnn_tf.inference import publishing
from predrnn_tf.inference.forecast_netcdf import ForecastContext

PREDICTIONS_FILENAME = "predictions.npy"
ENSEMBLE_FILENAME = "ensemble.npy"
MEAN_FILENAME = "predictions_mean.npy"
PROBABILITY_THRESHOLDS = (1.0, 5.0)  # mm/h
STRIP_FILENAME = "predictions.png"
GIF_FILENAME = "predictions.gif"
FRAMES_FOLDER = "frames"


def to_physical(frames01: np.ndarray, mapping: dict[str, Any] | None) -> np.ndarray:
    """[0, 1] pixels -> float32 physical units of ``mapping`` (unchanged without one).

    A rain-rate (dBR) mapping gives mm/h (:func:`predrnn_tf.units.pixels_to_values`), a
    linear one ``scale * pixel + offset`` (e.g. dBZ).
    """
    if not mapping:
        return np.asarray(frames01, np.float32)
    return np.asarray(units.pixels_to_values(np.asarray(frames01, np.float64), mapping),
                      np.float32)


def write_frame_folders(output_dir: str, inputs: np.ndarray, truth: np.ndarray | None,
                        predictions: np.ndarray) -> str:
    """``frames/N/gtI.png`` and ``pdK.png`` as the official test pass names them."""
    root = os.path.join(output_dir, FRAMES_FOLDER)
    input_length = inputs.shape[1]
    for index in range(inputs.shape[0]):
        folder = os.path.join(root, str(index + 1))
        os.makedirs(folder, exist_ok=True)
        known = inputs[index] if truth is None else np.concatenate([inputs[index],
                                                                     truth[index]])
        named = [(f"gt{step + 1}.png", frame) for step, frame in enumerate(known)]
        named += [(f"pd{input_length + step + 1}.png", frame)
                  for step, frame in enumerate(predictions[index])]
        for name, frame in named:
            pixels = np.round(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)
            image = pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., ::-1]
            publishing.write_png(os.path.join(folder, name), image)
    return root


def baseline_rows(inputs: np.ndarray, output_length: int) -> dict[str, np.ndarray]:
    """Persistence and (when pysteps is installed) extrapolation forecasts of ``inputs``."""
    from predrnn_tf.evaluation import baselines

    rows = {"persistence": baselines.persistence(inputs, output_length)}
    try:
        rows["extrapolation"] = baselines.make_baseline("extrapolation", output_length)(inputs)
    except (ImportError, ValueError) as error:
        logging.getLogger(__name__).info("extrapolation row skipped: %s", error)
    return rows


def physical_forecast(inputs: np.ndarray, predictions: np.ndarray,
                      value_mapping: dict[str, Any] | None) -> np.ndarray:
    """The forecast in physical units; rain rate: NaN where the newest input has no data.

    ``predictions`` is ``[B, T, H, W, C]``, or members ``[B, N, T, H, W, C]``.
    """
    values = to_physical(predictions, value_mapping)
    if not units.is_rain_rate_mapping(value_mapping):
        return values
    covered = units.valid_pixels(inputs[:, -1:], value_mapping)  # [B, 1, H, W, C]
    if values.ndim == 6:
        covered = covered[:, None]  # [B, 1, 1, H, W, C]: every member
    return np.where(covered, values, np.nan).astype(np.float32)


def observed_rain_rate(frames01: np.ndarray, value_mapping: dict[str, Any]) -> np.ndarray:
    """Observed [0, 1] frames ``[T, H, W, 1]`` -> mm/h ``[T, H, W]``, NaN = no data."""
    rate = to_physical(frames01, value_mapping)
    return np.where(units.valid_pixels(frames01, value_mapping), rate, np.nan)[..., 0]


def write_radar_products(folder: str, inputs: np.ndarray, forecast: np.ndarray,
                         truth: np.ndarray | None, value_mapping: dict[str, Any] | None,
                         context: ForecastContext | None,
                         ensemble: np.ndarray | None = None) -> dict[str, str]:
    """``forecast.nc`` and ``maps/`` of the first sequence of a rain-rate radar forecast.

    ``ensemble`` (``[B, N, T, H, W, C]`` mm/h, or None) goes into ``forecast.nc`` as members.
    """
    from predrnn_tf.inference import forecast_maps, forecast_netcdf

    if context is None or not units.is_rain_rate_mapping(value_mapping):
        return {}
    observed = observed_rain_rate(inputs[0], value_mapping)
    future = None if truth is None else observed_rain_rate(truth[0], value_mapping)
    written = {"maps": forecast_maps.write_maps(folder, [*observed, *forecast[0, ..., 0]],
                                                context, future)}
    try:
        written["netcdf"] = forecast_netcdf.write_netcdf(
            folder, forecast[0, ..., 0], observed, future, context,
            members=None if ensemble is None else ensemble[0, ..., 0])
    except (ImportError, ValueError, KeyError) as error:  # KeyError: pysteps' projection
        partial = os.path.join(folder, forecast_netcdf.NETCDF_FILENAME)
        if os.path.exists(partial):
            os.remove(partial)
        logging.getLogger(__name__).warning("forecast.nc not written: %s %s",
                                            type(error).__name__, error)
    return written


def write_forecast(output_dir: str, inputs: np.ndarray, predictions: np.ndarray,
                   truth: np.ndarray | None = None,
                   value_mapping: dict[str, Any] | None = None, title: str = "",
                   frames_per_second: float = 2.0,
                   context: ForecastContext | None = None,
                   members: np.ndarray | None = None) -> dict[str, str]:
    """Writes every output of the module docstring as one folder; returns ``{kind: path}``.

    Args:
      output_dir: new, empty, or an earlier forecast's folder (replaced as a whole).
      inputs: ``[B, input_length, H, W, C]`` in [0, 1].
      predictions: ``[B, output_length, H, W, C]`` in [0, 1].
      truth: the true future ``[B, T, H, W, C]`` in [0, 1], or None.
      value_mapping: the model's value mapping (units of the .npy and of the colour bar).
      title: drawn on the strip.
      frames_per_second: GIF frame rate.
      context: the radar archive's times and grid (adds forecast.nc and maps/), or None.
      members: ``[B, N, T, H, W, C]`` in [0, 1] (an ensemble; ``predictions`` is drawn as
        the forecast, ``predictions.npy`` is their median), or None.

    Raises:
      ConfigError: ``output_dir`` holds foreign files, or a write failed (nothing written).
    """
    with publishing.staged_output_dir(output_dir) as staging:
        written = write_outputs(staging, inputs, predictions, truth, value_mapping, title,
                                frames_per_second, context, members)
    final = os.path.abspath(output_dir)
    return {kind: os.path.join(final, os.path.relpath(path, staging))
            for kind, path in written.items()}


def write_outputs(folder: str, inputs: np.ndarray, predictions: np.ndarray,
                  truth: np.ndarray | None, value_mapping: dict[str, Any] | None,
                  title: str, frames_per_second: float,
                  context: ForecastContext | None,
                  members: np.ndarray | None = None) -> dict[str, str]:
    """Writes the outputs into ``folder`` (the staging folder); returns ``{kind: path}``."""
    from predrnn_tf.evaluation import plots

    ensemble = None
    if members is None:
        forecast = physical_forecast(inputs, predictions, value_mapping)
        written = {}
    else:
        ensemble = physical_forecast(inputs, members, value_mapping)  # [B, N, T, H, W, C]
        forecast = np.median(ensemble, axis=1)
        written = write_ensemble(folder, ensemble, context)
    written["predictions"] = files.write_bytes(os.path.join(folder, PREDICTIONS_FILENAME),
                                               npy_bytes(forecast))
    written["frames"] = write_frame_folders(folder, inputs, truth, predictions)
    rows = baseline_rows(inputs, predictions.shape[1])
    written["strip"] = publishing.write_png(
        os.path.join(folder, STRIP_FILENAME), plots.draw_prediction_strips(
            inputs, truth, predictions, value_mapping, title, baselines=rows))
    path = os.path.join(folder, GIF_FILENAME)
    animation = plots.draw_animation_frames(inputs, truth, predictions, value_mapping)
    if plots.write_gif(path, animation, frames_per_second):
        written["gif"] = path
    written.update(write_radar_products(folder, inputs, forecast, truth, value_mapping,
                                        context, ensemble))
    return written


def write_ensemble(folder: str, ensemble: np.ndarray,
                   context: ForecastContext | None) -> dict[str, str]:
    """``ensemble.npy``, ``predictions_mean.npy`` and the probability maps of the first sequence.

    ``ensemble`` is ``[B, N, T, H, W, C]`` in physical units (mm/h on a rain-rate model; NaN
    outside radar coverage).
    """
    from predrnn_tf.inference import forecast_maps

    written = {"ensemble": files.write_bytes(os.path.join(folder, ENSEMBLE_FILENAME),
                                             npy_bytes(ensemble)),
               "mean": files.write_bytes(os.path.join(folder, MEAN_FILENAME),
                                         npy_bytes(ensemble.mean(axis=1)))}
    first = ensemble[0, ..., 0]  # [N, T, H, W]
    covered = np.all(np.isfinite(first), axis=0)  # [T, H, W]
    probabilities = {threshold: np.where(covered, np.mean(first >= threshold, axis=0), np.nan)
                     for threshold in PROBABILITY_THRESHOLDS}
    try:
        written["probability"] = forecast_maps.write_probability_maps(folder, probabilities,
                                                                      context)
    except ImportError as error:
        logging.getLogger(__name__).warning("probability maps not drawn: %s", error)
    return written


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in the .npy format, in memory."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
