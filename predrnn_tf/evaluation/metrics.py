"""Forecast metrics, computed the way the official PredRNN code computes them.

All frame tensors are ``[..., H, W, C]`` with values in [0, 1]; every function reduces the last
three axes and keeps the leading ones, so ``[B, T, H, W, C]`` inputs give ``[B, T]`` results.

- MSE / MAE: the SUM over the pixels of one frame of the squared / absolute error on [0, 1]
  images, predictions clipped to [0, 1] (official ``trainer.test``: ``np.square(x - gx).sum()``).
- PSNR and SSIM: on uint8 frames made by truncating ``x * 255`` (official: ``np.uint8(x * 255)``).
  PSNR uses the integer MSE over H*W*C; SSIM equals ``skimage.metrics.structural_similarity``
  with its defaults (7x7 uniform window, data range 255, K1 0.01, K2 0.03, sample covariance,
  channels averaged).
- Radar skill at dBZ thresholds (contingency scores and the optional fractions skill score):
  not computed here but by the one scoring engine, :mod:`predrnn_tf.evaluation.scores`
  (pysteps' definitions), on the frames mapped to physical units by
  :func:`predrnn_tf.units.pixels_to_units`.

:class:`FrameMetrics` streams all of them over batches of forecasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.evaluation import scores

DEFAULT_THRESHOLDS = (30.0, 40.0, 50.0)
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
UINT8_RANGE = 255.0


def box_sum(values: tf.Tensor, size: int) -> tf.Tensor:
    """Sums over every ``size x size`` window of ``[N, H, W, C]`` ("valid": no padding).

    Separable shifted-slice sums: exact in float64 and much faster on CPU than float64
    pooling or convolution kernels.
    """
    height, width = values.shape[1], values.shape[2]
    rows = tf.add_n([values[:, offset:height - size + 1 + offset] for offset in range(size)])
    return tf.add_n([rows[:, :, offset:width - size + 1 + offset] for offset in range(size)])


def clip_unit(frames: Any) -> tf.Tensor:
    """Casts to float32 and clips to [0, 1] (the official code clips predictions)."""
    return tf.clip_by_value(tf.cast(frames, tf.float32), 0.0, 1.0)


def truncate_to_uint8(frames: Any) -> tf.Tensor:
    """``np.uint8(x * 255)`` for x in [0, 1]: float32 product, truncated toward zero."""
    return tf.cast(clip_unit(frames) * 255.0, tf.uint8)


def sum_squared_error(truth: Any, prediction: Any) -> tf.Tensor:
    """Per-frame sum over pixels of the squared error, prediction clipped; float64."""
    difference = tf.cast(truth, tf.float64) - tf.cast(clip_unit(prediction), tf.float64)
    return tf.reduce_sum(tf.square(difference), axis=[-3, -2, -1])


def sum_absolute_error(truth: Any, prediction: Any) -> tf.Tensor:
    """Per-frame sum over pixels of the absolute error, prediction clipped; float64."""
    difference = tf.cast(truth, tf.float64) - tf.cast(clip_unit(prediction), tf.float64)
    return tf.reduce_sum(tf.abs(difference), axis=[-3, -2, -1])


def psnr_uint8(truth: Any, prediction: Any) -> tf.Tensor:
    """Per-frame PSNR of uint8 frames: ``20 log10(255) - 10 log10(mse)``; float64.

    A frame without any error would have an infinite PSNR (the official code then averages
    ``inf``); it gets the PSNR of the smallest possible error instead, one pixel off by one
    level (``mse = 1 / (H*W*C)``), so averages stay finite.
    """
    difference = tf.cast(truth, tf.float64) - tf.cast(prediction, tf.float64)
    num_pixels = tf.cast(tf.reduce_prod(tf.shape(difference)[-3:]), tf.float64)
    mse = tf.reduce_sum(tf.square(difference), axis=[-3, -2, -1]) / num_pixels
    mse = tf.maximum(mse, 1.0 / num_pixels)
    return 20.0 * math.log10(UINT8_RANGE) - 10.0 * tf.math.log(mse) / math.log(10.0)


def ssim_uint8(truth: Any, prediction: Any, window_size: int = SSIM_WINDOW) -> tf.Tensor:
    """Per-frame SSIM equal to ``skimage.metrics.structural_similarity`` defaults; float64.

    Args:
      truth: uint8 (or integer-valued) frames ``[..., H, W, C]``.
      prediction: same shape as ``truth``.
      window_size: side of the uniform window (odd, at most H and W).

    Returns:
      ``[...]`` mean SSIM per frame, channels averaged.
    """
    truth = tf.cast(truth, tf.float64)
    prediction = tf.cast(prediction, tf.float64)
    shape = tf.shape(truth)
    height, width, channels = truth.shape[-3], truth.shape[-2], truth.shape[-1]
    if height is not None and width is not None and min(height, width) < window_size:
        raise ValueError(f"SSIM needs frames of at least {window_size}x{window_size} pixels, "
                         f"got {height}x{width}")
    truth = tf.reshape(truth, [-1, height, width, channels])  # [N, H, W, C]
    prediction = tf.reshape(prediction, [-1, height, width, channels])  # [N, H, W, C]

    def window_mean(values: tf.Tensor) -> tf.Tensor:
        return box_sum(values, window_size) / float(window_size * window_size)

    num_window_pixels = window_size * window_size
    covariance_norm = num_window_pixels / (num_window_pixels - 1.0)
    mean_truth = window_mean(truth)
    mean_prediction = window_mean(prediction)
    variance_truth = covariance_norm * (window_mean(truth * truth) - mean_truth * mean_truth)
    variance_prediction = covariance_norm * (
        window_mean(prediction * prediction) - mean_prediction * mean_prediction)
    covariance = covariance_norm * (
        window_mean(truth * prediction) - mean_truth * mean_prediction)
    c1 = (SSIM_K1 * UINT8_RANGE) ** 2
    c2 = (SSIM_K2 * UINT8_RANGE) ** 2
    numerator = (2.0 * mean_truth * mean_prediction + c1) * (2.0 * covariance + c2)
    denominator = ((mean_truth * mean_truth + mean_prediction * mean_prediction + c1)
                   * (variance_truth + variance_prediction + c2))
    ssim_map = numerator / denominator
    per_frame = tf.reduce_mean(ssim_map, axis=[1, 2, 3])
    return tf.reshape(per_frame, shape[:-3])


class FrameMetrics:
    """Streams per-frame forecast metrics over batches.

    Usage::

        metrics = FrameMetrics(output_length=10, value_mapping=metadata["value_mapping"])
        for truth, prediction in batches:    # [B, T, H, W, C] floats in [0, 1]
            metrics.update(truth, prediction)
        result = metrics.result()             # dict, see :meth:`result`

    Args:
      output_length: number of forecast frames T per sequence.
      value_mapping: ``{"scale": a, "offset": b, "units": ...}`` mapping uint8 pixels to
        physical units (``units = a * pixel + b``); needed for the contingency scores and FSS.
      thresholds: event thresholds in those units; ignored without ``value_mapping``.
      fss_scales: neighbourhood sizes in pixels for the FSS (empty: no FSS).
      excluded_pixel_values: uint8 pixel values of the truth that mean "no data" (if a
        dataset keeps such a value); excluded from the contingency counts and the FSS.
      lpips_model: optional callable ``(truth, prediction) -> [N]`` distances on ``[N, H, W, C]``
        frames in [0, 1] (e.g. :class:`predrnn_tf.lpips.LPIPS`).
    """

    def __init__(self, output_length: int, *, value_mapping: dict[str, Any] | None = None,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 fss_scales: Sequence[int] = (), excluded_pixel_values: Sequence[int] = (),
                 lpips_model: Any = None):
        if output_length < 1:
            raise ValueError(f"output_length must be positive, got {output_length}")
        for scale in fss_scales:
            if int(scale) < 1:
                raise ValueError(f"fss_scales must be positive integers, got {list(fss_scales)}")
        self.output_length = int(output_length)
        self.value_mapping = dict(value_mapping) if value_mapping else None
        self.thresholds = tuple(float(value) for value in thresholds) if value_mapping else ()
        self.fss_scales = tuple(int(value) for value in fss_scales) if self.thresholds else ()
        self.excluded_pixel_values = tuple(int(value) for value in excluded_pixel_values)
        self.lpips_model = lpips_model
        self._compute = tf.function(self._compute_statistics, reduce_retracing=True)
        self.reset()

    def reset(self) -> None:
        """Forgets all accumulated batches."""
        length = self.output_length
        self.num_sequences = 0
        self._sums = {name: np.zeros(length, np.float64)
                      for name in ("mse", "mae", "psnr", "ssim", "lpips")}
        self._scores = scores.ScoreAccumulator(length, self.thresholds, self.thresholds,
                                               self.fss_scales)

    def _compute_statistics(self, truth: tf.Tensor, prediction: tf.Tensor) -> dict[str, tf.Tensor]:
        prediction = clip_unit(prediction)
        truth_uint8 = tf.cast(truth * 255.0, tf.uint8)
        prediction_uint8 = tf.cast(prediction * 255.0, tf.uint8)
        statistics = {
            "mse": tf.reduce_sum(sum_squared_error(truth, prediction), axis=0),
            "mae": tf.reduce_sum(sum_absolute_error(truth, prediction), axis=0),
            "psnr": tf.reduce_sum(psnr_uint8(truth_uint8, prediction_uint8), axis=0),
            "ssim": tf.reduce_sum(ssim_uint8(truth_uint8, prediction_uint8), axis=0),
        }
        return statistics

    def _add_categorical(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        """Adds the batch to the contingency tables and FSS sums, in physical units."""
        valid = ~np.isin(np.round(truth * 255.0).astype(np.int64), self.excluded_pixel_values)
        truth_units = units.pixels_to_units(truth.astype(np.float64), self.value_mapping)
        prediction_units = units.pixels_to_units(
            np.clip(prediction, 0.0, 1.0).astype(np.float64), self.value_mapping)
        self._scores.add_sequences(truth_units, prediction_units, valid)

    def update(self, truth: Any, prediction: Any) -> None:
        """Adds a batch: ``truth`` and ``prediction`` ``[B, T, H, W, C]``, floats in [0, 1].

        Predictions are clipped to [0, 1] here; callers pass the raw model output.
        """
        truth = tf.convert_to_tensor(truth, tf.float32)
        prediction = tf.convert_to_tensor(prediction, tf.float32)
        if truth.shape.rank != 5 or truth.shape != prediction.shape:
            raise ValueError(f"truth and prediction must have the same shape [B, T, H, W, C], "
                             f"got {truth.shape} and {prediction.shape}")
        if truth.shape[1] != self.output_length:
            raise ValueError(f"expected {self.output_length} forecast frames per sequence, "
                             f"got {truth.shape[1]}")
        statistics = self._compute(truth, prediction)
        for name in ("mse", "mae", "psnr", "ssim"):
            self._sums[name] += statistics[name].numpy()
        if self.thresholds:
            self._add_categorical(truth.numpy(), prediction.numpy())
        if self.lpips_model is not None:
            self._sums["lpips"] += self._lpips_per_frame(truth, prediction)
        self.num_sequences += int(truth.shape[0])

    def _lpips_per_frame(self, truth: tf.Tensor, prediction: tf.Tensor) -> np.ndarray:
        batch, length = truth.shape[0], truth.shape[1]
        frame_shape = truth.shape[2:]
        distances = self.lpips_model(
            tf.reshape(truth, [-1, *frame_shape]),  # [B*T, H, W, C]
            tf.reshape(clip_unit(prediction), [-1, *frame_shape]))  # [B*T, H, W, C]
        distances = np.asarray(distances, np.float64).reshape(batch, length)
        return distances.sum(axis=0)

    def result(self) -> dict[str, Any]:
        """Per-frame lists and their averages over frames.

        Returns:
          ``{"num_sequences", "output_length", "metrics": {name: average},
          "per_frame": {name: [T values]}, "counts": {threshold: {count name: [T ints]}}}``.
          ``metrics["mse_per_sequence"]`` is the per-frame MSE summed over the T frames (the
          official "mse per seq"). Contingency scores average the per-frame scores over the
          frames where they are defined; undefined values are NaN.
        """
        if self.num_sequences == 0:
            raise ValueError("FrameMetrics.result() called before any update()")
        per_frame = {name: self._sums[name] / self.num_sequences
                     for name in ("mse", "mae", "psnr", "ssim")}
        if self.lpips_model is not None:
            per_frame["lpips"] = self._sums["lpips"] / self.num_sequences
        per_frame.update(self._scores.per_lead(errors=False))
        averages = {name: scores.finite_mean(values) for name, values in per_frame.items()}
        averages["mse_per_sequence"] = float(np.sum(per_frame["mse"]))
        return {
            "num_sequences": self.num_sequences,
            "output_length": self.output_length,
            "metrics": averages,
            "per_frame": {name: [float(value) for value in values]
                          for name, values in per_frame.items()},
            "counts": self._scores.counts(),
        }
