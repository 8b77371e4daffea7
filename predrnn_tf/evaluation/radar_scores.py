"""Radar verification in physical units, defined as ``pysteps.verification`` defines it.

Frames are rain rates in mm/h (from a dBR dataset through :mod:`predrnn_tf.units`); the
no-data pixels of the truth (pixel 0) are left out of every sum, for every forecaster.
Scores are pooled over the test set per lead time (the tables, the error sums and the FSS
sums are accumulated over all sequences, then turned into scores), as pysteps'
``det_cat_fct_accum`` / ``fss_accum`` do.

- ``mse_mmh`` / ``mae_mmh``: mean squared / absolute error in (mm/h)^2 / mm/h over the valid
  pixels.
- ``csi_Xmmh``, ``pod_``, ``far_``, ``ets_``, ``hss_``: contingency scores at a rain-rate
  threshold X, the event being ``value > X`` (pysteps ``det_cat_fct``); ETS is pysteps'
  GSS / ETS.
- ``fss_Xmmh_Ykm``: fractions skill score (Roberts and Lean 2008) with the event ``value >=
  X`` (pysteps ``fss``) over a square window of Y km (``round(Y / pixel_km)`` pixels, at
  least one; the window in pixels is recorded), zero outside the domain and at no-data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predrnn_tf import units

RAIN_THRESHOLDS = (0.5, 1.0, 5.0, 10.0)  # mm/h
FSS_THRESHOLDS = (1.0, 5.0)  # mm/h
FSS_SCALES_KM = (1.0, 4.0, 16.0)
CATEGORICAL_SCORES = ("csi", "pod", "far", "ets", "hss")


def threshold_name(value: float, unit: str = "mmh") -> str:
    """1.0 -> "1mmh", 0.5 -> "0.5mmh" (metric names such as ``csi_1mmh``)."""
    return f"{value:g}{unit}"


def contingency_table(truth: np.ndarray, prediction: np.ndarray, threshold: float,
                      valid: np.ndarray | None = None) -> np.ndarray:
    """``[hits, misses, false_alarms, correct_negatives]`` (int64) of ``value > threshold``."""
    truth = np.asarray(truth)
    if valid is None:
        valid = np.ones(truth.shape, bool)
    observed = (truth > threshold) & valid
    forecast = (np.asarray(prediction) > threshold) & valid
    hits = np.sum(observed & forecast)
    misses = np.sum(observed & ~forecast)
    false_alarms = np.sum(~observed & forecast & valid)
    correct_negatives = np.sum(valid) - hits - misses - false_alarms
    return np.array([hits, misses, false_alarms, correct_negatives], np.int64)


def categorical_scores(table: np.ndarray) -> dict[str, np.ndarray]:
    """CSI, POD, FAR, ETS, HSS from tables ``[..., 4]``; NaN where undefined."""
    table = np.asarray(table, np.float64)
    hits, misses, false_alarms, negatives = (table[..., index] for index in range(4))
    total = hits + misses + false_alarms + negatives
    with np.errstate(divide="ignore", invalid="ignore"):
        random_hits = (hits + misses) * (hits + false_alarms) / total
        return {
            "csi": hits / (hits + misses + false_alarms),
            "pod": hits / (hits + misses),
            "far": false_alarms / (hits + false_alarms),
            "ets": (hits - random_hits) / (hits + misses + false_alarms - random_hits),
            "hss": 2.0 * (hits * negatives - misses * false_alarms)
                   / ((hits + misses) * (misses + negatives)
                      + (hits + false_alarms) * (false_alarms + negatives)),
        }


def box_mean(field: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size x size`` windows of a 2-D field, zero outside (as scipy's
    ``uniform_filter(mode="constant")``: window ``[i - size // 2, i - size // 2 + size)``)."""
    if size <= 1:
        return np.asarray(field, np.float64)
    before, after = size // 2, size - 1 - size // 2
    padded = np.pad(np.asarray(field, np.float64), ((before + 1, after), (before + 1, after)))
    summed = padded.cumsum(axis=0).cumsum(axis=1)
    window = (summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size]
              + summed[:-size, :-size])
    return window / float(size * size)


def fss_sums(truth: np.ndarray, prediction: np.ndarray, threshold: float, size: int,
             valid: np.ndarray | None = None) -> np.ndarray:
    """``[sum forecast^2, sum observed^2, sum forecast*observed]`` of the fractions of a frame."""
    truth = np.asarray(truth)
    if valid is None:
        valid = np.ones(truth.shape, bool)
    observed = box_mean(((truth >= threshold) & valid).astype(np.float64), size)
    forecast = box_mean(((np.asarray(prediction) >= threshold) & valid).astype(np.float64), size)
    return np.array([np.sum(forecast ** 2), np.sum(observed ** 2), np.sum(forecast * observed)])


def fss_score(sums: np.ndarray) -> np.ndarray:
    """FSS from summed :func:`fss_sums` ``[..., 3]`` (NaN when both fields are empty)."""
    sums = np.asarray(sums, np.float64)
    forecast_squared, observed_squared, product = (sums[..., index] for index in range(3))
    reference = forecast_squared + observed_squared
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (reference - 2.0 * product) / reference


def window_pixels(scale_km: float, pixel_km: float) -> int:
    """The FSS window in pixels for ``scale_km`` on a ``pixel_km`` grid (at least 1)."""
    return max(1, int(round(scale_km / pixel_km)))


def check_thresholds(thresholds: Sequence[float], metadata: dict[str, Any], flag: str) -> None:
    """ValueError (one line) for a threshold the dataset's rain-rate range cannot reach."""
    mapping = units.mapping_of(metadata) or {}
    low, high = units.RAIN_RATE_FLOOR, float(mapping.get("max", np.inf))
    for value in thresholds:
        if not low <= value < high:
            raise ValueError(f"{flag}: threshold {value:g} mm/h is outside the data's range "
                             f"[{low:g}, {high:.4g}) mm/h")


class RadarScores:
    """Streams the radar scores of one forecaster over batches of [0, 1] frames.

    Args:
      output_length: lead times per sequence.
      metadata: the dataset's metadata (a dBR ``value_mapping``; ``grid.pixel_km``).
      thresholds: rain-rate thresholds (mm/h) of the contingency scores.
      fss_thresholds: rain-rate thresholds (mm/h) of the FSS.
      fss_scales_km: FSS windows in km.
    """

    def __init__(self, output_length: int, metadata: dict[str, Any],
                 thresholds: Sequence[float] = RAIN_THRESHOLDS,
                 fss_thresholds: Sequence[float] = FSS_THRESHOLDS,
                 fss_scales_km: Sequence[float] = FSS_SCALES_KM):
        if not units.is_rain_rate_mapping(metadata):
            raise ValueError(f"dataset {metadata.get('name')!r} does not store rain rate "
                             f"(dBR value_mapping): convert it with --storage=rain_rate")
        check_thresholds(thresholds, metadata, "--thresholds")
        check_thresholds(fss_thresholds, metadata, "--fss_thresholds")
        self.metadata = metadata
        self.output_length = int(output_length)
        self.thresholds = tuple(float(value) for value in thresholds)
        self.fss_thresholds = tuple(float(value) for value in fss_thresholds)
        pixel_km = float((metadata.get("grid") or {}).get("pixel_km", 1.0))
        self.fss_scales_km = tuple(float(value) for value in fss_scales_km)
        self.fss_windows = tuple(window_pixels(value, pixel_km) for value in self.fss_scales_km)
        length = self.output_length
        self.errors = np.zeros((length, 3))  # squared, absolute, valid pixels
        self.tables = np.zeros((length, len(self.thresholds), 4), np.int64)
        self.fss = np.zeros((length, len(self.fss_thresholds), len(self.fss_windows), 3))
        self.num_sequences = 0

    def update(self, truth01: np.ndarray, prediction01: np.ndarray) -> None:
        """Adds ``[B, T, H, W, C]`` truth and forecast frames (model scale, [0, 1])."""
        truth01, prediction01 = np.asarray(truth01), np.asarray(prediction01)
        if truth01.shape != prediction01.shape or truth01.ndim != 5:
            raise ValueError(f"truth and prediction must be [B, T, H, W, C] of one shape, got "
                             f"{truth01.shape} and {prediction01.shape}")
        valid = units.valid_pixels(truth01, self.metadata)
        truth = units.pixels_to_rain_rate(truth01, self.metadata)
        prediction = units.pixels_to_rain_rate(np.clip(prediction01, 0.0, 1.0), self.metadata)
        for lead in range(self.output_length):
            self.add_frames(lead, truth[:, lead, ..., 0], prediction[:, lead, ..., 0],
                            valid[:, lead, ..., 0])
        self.num_sequences += truth01.shape[0]

    def add_frames(self, lead: int, truth: np.ndarray, prediction: np.ndarray,
                   valid: np.ndarray) -> None:
        """Adds rain-rate frames ``[N, H, W]`` (mm/h) of one lead time."""
        difference = np.where(valid, prediction - truth, 0.0)
        self.errors[lead] += (np.sum(difference ** 2), np.sum(np.abs(difference)), valid.sum())
        for index, threshold in enumerate(self.thresholds):
            self.tables[lead, index] += contingency_table(truth, prediction, threshold, valid)
        for frame_truth, frame_prediction, frame_valid in zip(truth, prediction, valid,
                                                              strict=True):
            for index, threshold in enumerate(self.fss_thresholds):
                for scale, size in enumerate(self.fss_windows):
                    self.fss[lead, index, scale] += fss_sums(frame_truth, frame_prediction,
                                                             threshold, size, frame_valid)

    def per_lead(self) -> dict[str, np.ndarray]:
        """Every score per lead time ``[T]``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = {"mse_mmh": self.errors[:, 0] / self.errors[:, 2],
                      "mae_mmh": self.errors[:, 1] / self.errors[:, 2]}
        for index, threshold in enumerate(self.thresholds):
            for name, values in categorical_scores(self.tables[:, index]).items():
                scores[f"{name}_{threshold_name(threshold)}"] = values
        for index, threshold in enumerate(self.fss_thresholds):
            for scale, scale_km in enumerate(self.fss_scales_km):
                key = f"fss_{threshold_name(threshold)}_{scale_km:g}km"
                scores[key] = fss_score(self.fss[:, index, scale])
        return scores

    def result(self) -> dict[str, Any]:
        """``{"metrics": {name: mean over leads}, "per_frame": {name: [T]}, ...}``."""
        if not self.num_sequences:
            raise ValueError("RadarScores.result() called before any update()")
        per_lead = self.per_lead()
        means = {}
        for name, values in per_lead.items():
            finite = values[np.isfinite(values)]
            means[name] = float(finite.mean()) if finite.size else float("nan")
        return {"metrics": means,
                "per_frame": {name: [float(value) for value in values]
                              for name, values in per_lead.items()},
                "fss_window_pixels": dict(zip([f"{value:g}km" for value in self.fss_scales_km],
                                              self.fss_windows, strict=True)),
                "num_sequences": self.num_sequences}
