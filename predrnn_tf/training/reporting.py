"""What a training run reports: progress lines, TensorBoard scalars and image strips.

Names follow :mod:`predrnn_tf.evaluation`: ``mse`` is always the per-frame MSE (summed over
a frame's pixels, averaged over frames and sequences) of a test pass; the training loss
terms are ``loss``, ``frame_loss_per_pixel`` (squared error per pixel over all frames) and
``decouple_loss``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

TRAIN_KEYS = ("loss", "frame_loss_per_pixel", "decouple_loss")


def format_duration(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def make_writer(workdir: str, is_chief: bool):
    """The TensorBoard writer of ``WORKDIR/tensorboard`` (a no-op writer off the chief)."""
    if is_chief:
        return tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
    return tf.summary.create_noop_writer()


STRIP_LABEL_WIDTH = 72
STRIP_ROWS = ("input", "truth", "prediction", "|error|")


def _frames_row(frames: np.ndarray, columns: int) -> np.ndarray:
    """``[T, H, W, C]`` -> ``[H, columns*W, C]``, empty (white) columns after the frames."""
    height, width, channels = frames.shape[1:]
    row = np.ones((height, columns * width, channels), np.float32)
    for index, frame in enumerate(frames[:columns]):
        row[:, index * width:(index + 1) * width] = frame
    return row


def image_strip(inputs: np.ndarray, truth: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Labelled rows for one sequence: input, truth, prediction and |prediction - truth|.

    Args:
      inputs: ``[T_in, H, W, C]``; truth and predictions ``[T_out, H, W, C]``, in [0, 1].

    Returns:
      ``[1, 4*H', 72 + max(T_in, T_out)*W', 3]`` uint8 (frames upscaled to stay readable).
    """
    from predrnn_tf.evaluation.charts import put_text
    from predrnn_tf.evaluation.plots import display_scale

    predictions = np.clip(predictions, 0.0, 1.0)
    error = np.abs(predictions - truth[:predictions.shape[0]])
    columns = max(len(inputs), len(truth), len(predictions))
    rows = [_frames_row(frames, columns) for frames in (inputs, truth, predictions, error)]
    strip = (np.concatenate(rows, axis=0) * 255.0).astype(np.uint8)  # [4H, columns*W, C]
    if strip.shape[-1] == 1:
        strip = np.repeat(strip, 3, axis=-1)
    scale = display_scale(inputs.shape[1])
    strip = np.repeat(np.repeat(strip[..., :3], scale, axis=0), scale, axis=1)
    row_height = strip.shape[0] // len(STRIP_ROWS)
    labels = np.full((strip.shape[0], STRIP_LABEL_WIDTH, 3), 255, np.uint8)
    for index, name in enumerate(STRIP_ROWS):
        put_text(labels, name, (4, index * row_height + row_height // 2 + 4), 0.42)
    strip = np.concatenate([labels, strip], axis=1)
    for index in range(1, len(STRIP_ROWS)):
        strip[index * row_height, :] = 160  # a line between rows
    return strip[None]


def write_image_strip(writer, step: int, frames: np.ndarray, forecast_fn,
                      input_length: int) -> None:
    """Summarises the labelled strip of the first of ``frames`` ``[1, T, H, W, C]``."""
    predictions = np.asarray(forecast_fn(frames[:, :input_length]))
    strip = image_strip(frames[0, :input_length], frames[0, input_length:], predictions[0])
    with writer.as_default(step=step):
        tf.summary.image("test/truth_over_prediction", strip)


def test_scalars(test: dict[str, Any]) -> dict[str, float]:
    """Every scalar of one test pass, one naming scheme for the model and the baselines.

    The model's are ``test/mse`` and ``test_frames/mse_frame_NN``; baseline ``B``'s the same
    names with ``B/`` before the metric: ``test/B/mse``, ``test_frames/B/mse_frame_NN``
    (e.g. ``test/persistence/mse``, ``test/extrapolation/mse``), so TensorBoard shows the
    baselines' curves beside the model's in the same sections.
    """
    forecasters = [("", test)] + [(f"{name}/", scores)
                                  for name, scores in test.get("baselines", {}).items()]
    scalars = {}
    for prefix, scores in forecasters:
        scalars[f"test/{prefix}mse"] = float(scores["mse"])
        for index, value in enumerate(scores["per_frame"]["mse"]):
            scalars[f"test_frames/{prefix}mse_frame_{index + 1:02d}"] = float(value)
    return scalars


def write_test_summaries(writer, step: int, test: dict[str, Any]) -> None:
    """Scalars of one test pass, named as in metrics.json (see :func:`test_scalars`)."""
    with writer.as_default(step=step):
        for tag, value in test_scalars(test).items():
            tf.summary.scalar(tag, value)


def log_test_pass(step: int, test: dict[str, Any]) -> None:
    """One line with the test pass's per-frame MSE against the baselines'."""
    others = "".join(f"; {name} {scores['mse']:.2f}"
                     for name, scores in test.get("baselines", {}).items())
    logging.info("test at step %d: mse %.2f (per-frame MSE%s) over %d sequences",
                 step, test["mse"], others, test["num_sequences"])


class ProgressLogger:
    """Progress lines with rate and ETA, and the training scalars."""

    def __init__(self, start_step: int, max_iterations: int, writer):
        self.start_step = start_step
        self.max_iterations = max_iterations
        self.writer = writer
        self.start_time = time.time()
        self.last_time = self.start_time
        self.last_step = start_step

    def log(self, step: int, results: dict[str, float], probabilities: tuple[float, float],
            learning_rate: float) -> None:
        """Logs one progress line and writes the ``train/`` scalars of ``step``."""
        now = time.time()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        overall = (step - self.start_step) / max(now - self.start_time, 1e-9)
        remaining = (self.max_iterations - step) / max(overall, 1e-9)
        self.last_time, self.last_step = now, step
        logging.info("step %d/%d  loss %.5f  frame_loss_per_pixel %.5f  decouple %.4f  "
                     "p_true %.3f/%.3f  %.2f it/s  eta %s", step, self.max_iterations,
                     results["loss"], results["frame_loss_per_pixel"], results["decouple_loss"],
                     probabilities[0], probabilities[1], rate, format_duration(remaining))
        with self.writer.as_default(step=step):
            for key in TRAIN_KEYS:
                tf.summary.scalar(f"train/{key}", results[key])
            tf.summary.scalar("train/encoder_true_probability", probabilities[0])
            tf.summary.scalar("train/decoder_true_probability", probabilities[1])
            tf.summary.scalar("train/learning_rate", learning_rate)
            tf.summary.scalar("train/steps_per_second", rate)
