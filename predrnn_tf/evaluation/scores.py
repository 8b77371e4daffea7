"""The one scoring engine of categorical skill: contingency scores and the FSS (pure NumPy).

Fields are in physical units (dBZ, mm/h: :func:`predrnn_tf.units.pixels_to_values` maps
[0, 1] pixels to them). The definitions are pysteps' (``pysteps.verification``, version
1.21), and ``tests/test_scores.py`` checks equality with its functions to 1e-6:

- Contingency table at threshold X (``detcatscores.det_cat_fct``): the event is ``value >
  X`` (pysteps' ``pred > thr``; a value exactly at X is no event). CSI, POD, FAR, ETS (=
  pysteps' GSS), HSS and the frequency bias come from the pooled table; NaN where undefined.
- Fractions skill score (``spatialscores.fss``, Roberts and Lean 2008): the event is ``value
  >= X`` (pysteps' ``X >= thr``; a value exactly at X is an event), fractions are means over
  ``size x size`` windows with zeros outside the domain (``scipy.ndimage.uniform_filter(mode=
  "constant")``); FSS = 1 - sum (f - o)^2 / sum (f^2 + o^2) over the pooled sums.
- Valid pixels: finite truth and finite forecast, and the caller's mask (no-data, outside
  coverage), one joint mask for both fields. Invalid pixels are left out of the tables; in
  the FSS they are no event in both fields (pysteps sets non-finite values below the
  threshold; equal to pysteps given NaN at every invalid pixel of both fields), so the
  neighbourhoods keep their size.

:class:`ScoreAccumulator` pools tables and sums per lead time over any number of frames (a
whole test set, a whole composite), so a score is never an average of per-frame scores.
Continuous errors in physical units (``mse``, ``mae`` over valid pixels) are pooled the same
way. Later scores (CRPS, rank histograms, reliability) add their own sums here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

COUNT_NAMES = ("hits", "misses", "false_alarms", "correct_negatives")
CATEGORICAL_SCORES = ("csi", "pod", "far", "ets", "hss", "bias")
FSS_SUM_NAMES = ("forecast_squared", "observed_squared", "product")


def categorical_event(values: np.ndarray, threshold: float) -> np.ndarray:
    """The event of the contingency table: ``value > threshold`` (pysteps det_cat_fct)."""
    return np.asarray(values) > threshold


def fss_event(values: np.ndarray, threshold: float) -> np.ndarray:
    """The event of the FSS: ``value >= threshold`` (pysteps fss)."""
    return np.asarray(values) >= threshold


def valid_mask(truth: np.ndarray, forecast: np.ndarray,
               valid: np.ndarray | None = None) -> np.ndarray:
    """Pixels to score: finite truth and forecast, and ``valid`` if given (same shape)."""
    truth, forecast = np.asarray(truth), np.asarray(forecast)
    if truth.shape != forecast.shape:
        raise ValueError(f"truth and forecast must have one shape, got {truth.shape} and "
                         f"{forecast.shape}")
    mask = np.isfinite(truth) & np.isfinite(forecast)
    if valid is not None:
        mask &= np.asarray(valid, bool)
    return mask


def contingency_table(truth: np.ndarray, forecast: np.ndarray, threshold: float,
                      valid: np.ndarray | None = None) -> np.ndarray:
    """``[hits, misses, false_alarms, correct_negatives]`` (int64) over the valid pixels."""
    mask = valid_mask(truth, forecast, valid)
    observed = categorical_event(np.where(mask, truth, -np.inf), threshold)
    predicted = categorical_event(np.where(mask, forecast, -np.inf), threshold)
    hits = np.count_nonzero(observed & predicted)
    misses = np.count_nonzero(observed & ~predicted)
    false_alarms = np.count_nonzero(~observed & predicted)
    correct_negatives = np.count_nonzero(mask) - hits - misses - false_alarms
    return np.array([hits, misses, false_alarms, correct_negatives], np.int64)


def categorical_scores(table: Any) -> dict[str, np.ndarray]:
    """CSI, POD, FAR, ETS, HSS and bias from tables ``[..., 4]``; NaN where undefined."""
    table = np.asarray(table, np.float64)
    hits, misses, false_alarms, negatives = (table[..., index] for index in range(4))
    total = hits + misses + false_alarms + negatives
    with np.errstate(divide="ignore", invalid="ignore"):
        random_hits = (hits + misses) * (hits + false_alarms) / total
        scores = {
            "csi": hits / (hits + misses + false_alarms),
            "pod": hits / (hits + misses),
            "far": false_alarms / (hits + false_alarms),
            "ets": (hits - random_hits) / (hits + misses + false_alarms - random_hits),
            "hss": 2.0 * (hits * negatives - misses * false_alarms)
                   / ((hits + misses) * (misses + negatives)
                      + (hits + false_alarms) * (false_alarms + negatives)),
            "bias": (hits + false_alarms) / (hits + misses),
        }
    return {name: np.where(np.isfinite(value), value, np.nan) for name, value in scores.items()}


def box_mean(field: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size x size`` windows of a 2-D field, zero outside.

    As ``scipy.ndimage.uniform_filter(mode="constant")``: the window of pixel i covers
    ``[i - size // 2, i - size // 2 + size)`` on each axis (summed-area table, exact in float64).
    """
    field = np.asarray(field, np.float64)
    if size <= 1:
        return field
    before, after = size // 2, size - 1 - size // 2
    padded = np.pad(field, ((before + 1, after), (before + 1, after)))  # [H + size, W + size]
    summed = padded.cumsum(axis=0).cumsum(axis=1)
    window = (summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size]
              + summed[:-size, :-size])  # [H, W]
    return window / float(size * size)


def fss_sums(truth: np.ndarray, forecast: np.ndarray, threshold: float, size: int,
             valid: np.ndarray | None = None) -> np.ndarray:
    """``[sum f^2, sum o^2, sum f*o]`` of the fractions of one 2-D frame ``[H, W]``."""
    mask = valid_mask(truth, forecast, valid)
    if mask.ndim != 2:
        raise ValueError(f"fss_sums takes one frame [H, W], got shape {mask.shape}")
    observed = box_mean(fss_event(np.where(mask, truth, -np.inf), threshold), size)
    predicted = box_mean(fss_event(np.where(mask, forecast, -np.inf), threshold), size)
    return np.array([np.sum(predicted ** 2), np.sum(observed ** 2),
                     np.sum(predicted * observed)])


def fss_score(sums: Any) -> np.ndarray:
    """FSS from pooled :func:`fss_sums` ``[..., 3]``; NaN when both fields have no event."""
    sums = np.asarray(sums, np.float64)
    forecast_squared, observed_squared, product = (sums[..., index] for index in range(3))
    reference = forecast_squared + observed_squared
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (reference - 2.0 * product) / reference
    return np.where(reference > 0, score, np.nan)


def threshold_name(value: float, unit: str = "") -> str:
    """30.0 -> "30", 0.5 with "mmh" -> "0.5mmh" (metric names such as ``csi_1mmh``)."""
    return f"{value:g}{unit}"


def finite_mean(values: Any) -> float:
    """The mean of the finite values (NaN if there is none)."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


class ScoreAccumulator:
    """Pools the categorical and FSS counts (and errors) of one forecaster per lead time.

    Args:
      output_length: lead times T.
      thresholds: contingency-table thresholds (physical units).
      fss_thresholds: FSS thresholds (physical units).
      fss_windows: FSS window sides in pixels (each >= 1).
      unit: suffix of the threshold in metric names ("" -> ``csi_30``, "mmh" -> ``csi_1mmh``).
      window_names: names of the windows in FSS metric names (default: the sizes in pixels,
        ``fss_30_5``; the radar path passes "16km" -> ``fss_1mmh_16km``).
    """

    def __init__(self, output_length: int, thresholds: Sequence[float] = (),
                 fss_thresholds: Sequence[float] = (), fss_windows: Sequence[int] = (),
                 unit: str = "", window_names: Sequence[str] | None = None):
        if output_length < 1:
            raise ValueError(f"output_length must be positive, got {output_length}")
        if any(int(size) < 1 for size in fss_windows):
            raise ValueError(f"FSS windows must be positive pixel counts, got {list(fss_windows)}")
        self.output_length = int(output_length)
        self.thresholds = tuple(float(value) for value in thresholds)
        self.fss_thresholds = tuple(float(value) for value in fss_thresholds)
        self.fss_windows = tuple(int(value) for value in fss_windows)
        self.unit = unit
        self.window_names = tuple(window_names or (str(size) for size in self.fss_windows))
        self.tables = np.zeros((self.output_length, len(self.thresholds), 4), np.int64)
        self.fss = np.zeros((self.output_length, len(self.fss_thresholds),
                             len(self.fss_windows), 3))
        self.errors = np.zeros((self.output_length, 3))  # squared, absolute, valid pixels
        self.num_frames = np.zeros(self.output_length, np.int64)

    def add(self, lead: int, truth: np.ndarray, forecast: np.ndarray,
            valid: np.ndarray | None = None) -> None:
        """Adds frames ``[N, H, W]`` (or one ``[H, W]``) of lead ``lead`` (0-based)."""
        truth, forecast = np.asarray(truth, np.float64), np.asarray(forecast, np.float64)
        mask = valid_mask(truth, forecast, valid)
        if mask.ndim == 2:
            truth, forecast, mask = truth[None], forecast[None], mask[None]  # [1, H, W]
        difference = np.where(mask, forecast - truth, 0.0)
        self.errors[lead] += (np.sum(difference ** 2), np.sum(np.abs(difference)), mask.sum())
        for index, threshold in enumerate(self.thresholds):
            self.tables[lead, index] += contingency_table(truth, forecast, threshold, mask)
        if self.fss_thresholds and self.fss_windows:
            for frame_truth, frame_forecast, frame_mask in zip(truth, forecast, mask,
                                                               strict=True):
                self._add_fss(lead, frame_truth, frame_forecast, frame_mask)
        self.num_frames[lead] += mask.shape[0]

    def _add_fss(self, lead: int, truth: np.ndarray, forecast: np.ndarray,
                 mask: np.ndarray) -> None:
        for index, threshold in enumerate(self.fss_thresholds):
            for window, size in enumerate(self.fss_windows):
                self.fss[lead, index, window] += fss_sums(truth, forecast, threshold, size, mask)

    def add_sequences(self, truth: np.ndarray, forecast: np.ndarray,
                      valid: np.ndarray | None = None) -> None:
        """Adds one-channel sequences ``[B, T, H, W, 1]`` (or ``[B, T, H, W]``), all leads."""
        truth, forecast = np.asarray(truth), np.asarray(forecast)
        if truth.ndim == 5:
            if truth.shape[-1] != 1:
                raise ValueError(f"categorical scores need one-channel frames, got shape "
                                 f"{truth.shape}")
            truth, forecast = truth[..., 0], forecast[..., 0]  # [B, T, H, W]
            valid = None if valid is None else np.asarray(valid)[..., 0]
        if truth.ndim != 4 or truth.shape[1] != self.output_length:
            raise ValueError(f"expected [B, {self.output_length}, H, W(, 1)] frames, got "
                             f"shape {truth.shape}")
        for lead in range(self.output_length):
            self.add(lead, truth[:, lead], forecast[:, lead],
                     None if valid is None else valid[:, lead])

    def per_lead(self, errors: bool = True) -> dict[str, np.ndarray]:
        """Every score per lead time ``[T]`` (``mse`` / ``mae`` only with ``errors``)."""
        scores = {}
        if errors:
            with np.errstate(divide="ignore", invalid="ignore"):
                scores[f"mse_{self.unit}" if self.unit else "mse"] = (
                    self.errors[:, 0] / self.errors[:, 2])
                scores[f"mae_{self.unit}" if self.unit else "mae"] = (
                    self.errors[:, 1] / self.errors[:, 2])
        for index, threshold in enumerate(self.thresholds):
            name = threshold_name(threshold, self.unit)
            for score, values in categorical_scores(self.tables[:, index]).items():
                scores[f"{score}_{name}"] = values
        for index, threshold in enumerate(self.fss_thresholds):
            for window, window_name in enumerate(self.window_names):
                key = f"fss_{threshold_name(threshold, self.unit)}_{window_name}"
                scores[key] = fss_score(self.fss[:, index, window])
        return scores

    def counts(self) -> dict[str, dict[str, list[int]]]:
        """``{threshold name: {count name: [T ints]}}``: the pooled tables."""
        return {threshold_name(threshold, self.unit): {
                    name: self.tables[:, index, column].tolist()
                    for column, name in enumerate(COUNT_NAMES)}
                for index, threshold in enumerate(self.thresholds)}
