"""What ``predrnn-predict`` writes: the forecast in physical units and pictures of it.

``OUTPUT_DIR/``:

- ``predictions.npy``: ``[B, output_length, H, W, C]`` float32 in the model's physical units
  (its ``value_mapping``: e.g. dBZ, or mm/h for rain rate stored in dBR), or in [0, 1] when
  it has none;
- ``frames/N/`` per sequence (N = 1, 2, ...), the official code's names: ``gt1.png`` ..
  (the input frames, then the true future when given) and ``pdK.png`` for the forecast
  frames K = input_length + 1 ... (stored pixels, 0..255 gray or RGB);
- ``predictions.png``: a strip per sequence (truth or inputs, forecast, persistence and,
  with pysteps, extrapolation) with a colour bar labelled in physical units;
- ``predictions.gif``: the same as an animation (when a GIF writer is available).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from predrnn_tf import files, units

PREDICTIONS_FILENAME = "predictions.npy"
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
    from predrnn_tf.evaluation.plots import write_image

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
            write_image(os.path.join(folder, name), np.ascontiguousarray(image))
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


def write_forecast(output_dir: str, inputs: np.ndarray, predictions: np.ndarray,
                   truth: np.ndarray | None = None,
                   value_mapping: dict[str, Any] | None = None, title: str = "",
                   frames_per_second: float = 2.0) -> dict[str, str]:
    """Writes every output of the module docstring; returns ``{kind: path}``.

    Args:
      output_dir: created if missing.
      inputs: ``[B, input_length, H, W, C]`` in [0, 1].
      predictions: ``[B, output_length, H, W, C]`` in [0, 1].
      truth: the true future ``[B, T, H, W, C]`` in [0, 1], or None.
      value_mapping: the model's value mapping (units of the .npy and of the colour bar).
      title: drawn on the strip.
      frames_per_second: GIF frame rate.
    """
    from predrnn_tf.evaluation import plots

    os.makedirs(output_dir, exist_ok=True)
    written = {}
    path = os.path.join(output_dir, PREDICTIONS_FILENAME)
    with files.atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, to_physical(predictions, value_mapping))
    written["predictions"] = path
    written["frames"] = write_frame_folders(output_dir, inputs, truth, predictions)
    rows = baseline_rows(inputs, predictions.shape[1])
    path = os.path.join(output_dir, STRIP_FILENAME)
    plots.write_image(path, plots.draw_prediction_strips(
        inputs, truth, predictions, value_mapping, title, baselines=rows))
    written["strip"] = path
    path = os.path.join(output_dir, GIF_FILENAME)
    animation = plots.draw_animation_frames(inputs, truth, predictions, value_mapping)
    if plots.write_gif(path, animation, frames_per_second):
        written["gif"] = path
    return written
