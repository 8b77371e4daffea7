"""Forecast metrics, computed the way the official PredRNN code computes them.

All frame tensors are ``[..., H, W, C]`` with values in [0, 1]; every function reduces the last
three axes and keeps the leading ones, so ``[B, T, H, W, C]`` inputs give ``[B, T]`` results.

- MSE / MAE: the SUM over the pixels of one frame of the squared / absolute error on [0, 1]
  images, predictions clipped to [0, 1] (official ``trainer.test``: ``np.square(x - gx).sum()``).
- PSNR and SSIM: on uint8 frames made by truncating ``x * 255`` (official: ``np.uint8(x * 255)``).
  PSNR uses the integer MSE over H*W*C; SSIM equals ``skimage.metrics.structural_similarity``
  with its defaults (7x7 uniform window, data range 255, K1 0.01, K2 0.03, sample covariance,
  channels averaged).
- Radar skill: hits, misses, false alarms and correct negatives at dBZ thresholds (event: value
  >= threshold), CSI, POD, FAR and HSS from counts summed over the test set; optional fractions
  skill score (FSS) over square neighbourhoods.

:class:`FrameMetrics` streams all of them over batches of forecasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

DEFAULT_THRESHOLDS = (30.0, 40.0, 50.0)
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
UINT8_RANGE = 255.0
COUNT_NAMES = ("hits", "misses", "false_alarms", "correct_negatives")
SCORE_NAMES = ("csi", "pod", "far", "hss")


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


def contingency_counts(truth_units: Any, prediction_units: Any, thresholds: Sequence[float],
                       valid: Any = None) -> tf.Tensor:
    """Per-frame contingency table at each threshold (event: value >= threshold).

    Args:
      truth_units: observed fields in physical units (e.g. dBZ), ``[..., H, W, C]``.
      prediction_units: forecast fields, same shape.
      thresholds: K thresholds in the same units.
      valid: optional boolean mask of pixels to count (e.g. inside radar coverage).

    Returns:
      int64 ``[..., K, 4]``: hits, misses (observed, not forecast), false alarms (forecast,
      not observed), correct negatives.
    """
    truth_units = tf.convert_to_tensor(truth_units, tf.float32)
    prediction_units = tf.cast(prediction_units, tf.float32)
    if valid is None:
        valid = tf.ones_like(truth_units, tf.bool)
    valid = tf.cast(valid, tf.bool)
    tables = []
    for threshold in thresholds:
        observed = truth_units >= threshold
        forecast = prediction_units >= threshold
        cells = (
            observed & forecast,
            observed & ~forecast,
            ~observed & forecast,
            ~observed & ~forecast,
        )
        counts = [tf.reduce_sum(tf.cast(cell & valid, tf.int64), axis=[-3, -2, -1])
                  for cell in cells]
        tables.append(tf.stack(counts, axis=-1))  # [..., 4]
    return tf.stack(tables, axis=-2)  # [..., K, 4]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, np.float64)
    denominator = np.asarray(denominator, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0),
                        np.nan)


def contingency_scores(counts: Any) -> dict[str, np.ndarray]:
    """CSI, POD, FAR and HSS from counts ``[..., 4]``; NaN where a score is undefined."""
    counts = np.asarray(counts, np.float64)
    hits, misses, false_alarms, correct_negatives = (counts[..., index] for index in range(4))
    hss_denominator = ((hits + misses) * (misses + correct_negatives)
                       + (hits + false_alarms) * (false_alarms + correct_negatives))
    return {
        "csi": _safe_divide(hits, hits + misses + false_alarms),
        "pod": _safe_divide(hits, hits + misses),
        "far": _safe_divide(false_alarms, hits + false_alarms),
        "hss": _safe_divide(2.0 * (hits * correct_negatives - misses * false_alarms),
                            hss_denominator),
    }


def fss_sums(truth_units: Any, prediction_units: Any, thresholds: Sequence[float],
             scales: Sequence[int], valid: Any = None) -> tf.Tensor:
    """Per-frame sums for the fractions skill score (Roberts and Lean 2008).

    Binary event fields are averaged over ``scale x scale`` neighbourhoods with zero padding
    (as ``scipy.ndimage.uniform_filter(mode="constant")`` for odd scales, and as pysteps).

    Returns:
      float64 ``[..., K, S, 3]``: sums over pixels of forecast fraction squared, observed
      fraction squared, and their product.
    """
    truth_units = tf.convert_to_tensor(truth_units, tf.float32)
    prediction_units = tf.cast(prediction_units, tf.float32)
    shape = tf.shape(truth_units)
    height, width, channels = truth_units.shape[-3:]
    if valid is None:
        valid = tf.ones_like(truth_units, tf.bool)
    valid = tf.cast(valid, tf.float64)
    per_threshold = []
    for threshold in thresholds:
        observed = tf.cast(truth_units >= threshold, tf.float64) * valid
        forecast = tf.cast(prediction_units >= threshold, tf.float64) * valid
        observed = tf.reshape(observed, [-1, height, width, channels])  # [N, H, W, C]
        forecast = tf.reshape(forecast, [-1, height, width, channels])  # [N, H, W, C]
        per_scale = []
        for scale in scales:
            # Zero padding as TF's "SAME": (scale - 1) // 2 before, the rest after.
            before = (scale - 1) // 2
            paddings = [[0, 0], [before, scale - 1 - before], [before, scale - 1 - before],
                        [0, 0]]
            area = float(scale * scale)
            observed_fraction = box_sum(tf.pad(observed, paddings), scale) / area
            forecast_fraction = box_sum(tf.pad(forecast, paddings), scale) / area
            sums = tf.stack([
                tf.reduce_sum(tf.square(forecast_fraction), axis=[1, 2, 3]),
                tf.reduce_sum(tf.square(observed_fraction), axis=[1, 2, 3]),
                tf.reduce_sum(forecast_fraction * observed_fraction, axis=[1, 2, 3]),
            ], axis=-1)  # [N, 3]
            per_scale.append(sums)
        per_threshold.append(tf.stack(per_scale, axis=1))  # [N, S, 3]
    stacked = tf.stack(per_threshold, axis=1)  # [N, K, S, 3]
    return tf.reshape(stacked, tf.concat([shape[:-3], tf.shape(stacked)[1:]], axis=0))


def fss_from_sums(sums: Any) -> np.ndarray:
    """FSS = 1 - MSE(fractions) / reference MSE, from :func:`fss_sums` summed as wanted."""
    sums = np.asarray(sums, np.float64)
    forecast_squared, observed_squared, product = (sums[..., index] for index in range(3))
    reference = forecast_squared + observed_squared
    return 1.0 - _safe_divide(reference - 2.0 * product, reference)


def format_threshold(threshold: float) -> str:
    """30.0 -> "30", 32.5 -> "32.5" (used in metric names such as ``csi_30``)."""
    return f"{threshold:g}"


def _nan_mean(values: np.ndarray) -> float:
    values = np.asarray(values, np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


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
        self._counts = np.zeros((length, len(self.thresholds), 4), np.int64)
        self._fss = np.zeros((length, len(self.thresholds), len(self.fss_scales), 3), np.float64)

    def _to_units(self, frames01: tf.Tensor) -> tf.Tensor:
        scale = float(self.value_mapping["scale"])
        offset = float(self.value_mapping["offset"])
        return frames01 * 255.0 * scale + offset

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
        if self.thresholds:
            valid = tf.ones_like(truth, tf.bool)
            rounded = tf.cast(tf.round(truth * 255.0), tf.int32)
            for pixel in self.excluded_pixel_values:
                valid &= tf.not_equal(rounded, pixel)
            truth_units = self._to_units(truth)
            prediction_units = self._to_units(prediction)
            statistics["counts"] = tf.reduce_sum(
                contingency_counts(truth_units, prediction_units, self.thresholds, valid), axis=0)
            if self.fss_scales:
                statistics["fss"] = tf.reduce_sum(
                    fss_sums(truth_units, prediction_units, self.thresholds, self.fss_scales,
                             valid), axis=0)
        return statistics

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
            self._counts += statistics["counts"].numpy()
            if self.fss_scales:
                self._fss += statistics["fss"].numpy()
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
        counts = {}
        for index, threshold in enumerate(self.thresholds):
            key = format_threshold(threshold)
            table = self._counts[:, index]
            counts[key] = {name: table[:, column].tolist()
                           for column, name in enumerate(COUNT_NAMES)}
            for name, values in contingency_scores(table).items():
                per_frame[f"{name}_{key}"] = values
            for scale_index, scale in enumerate(self.fss_scales):
                per_frame[f"fss_{key}_{scale}"] = fss_from_sums(self._fss[:, index, scale_index])
        averages = {name: _nan_mean(values) for name, values in per_frame.items()}
        averages["mse_per_sequence"] = float(np.sum(per_frame["mse"]))
        return {
            "num_sequences": self.num_sequences,
            "output_length": self.output_length,
            "metrics": averages,
            "per_frame": {name: [float(value) for value in values]
                          for name, values in per_frame.items()},
            "counts": counts,
        }
