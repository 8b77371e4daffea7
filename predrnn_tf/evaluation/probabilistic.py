"""Probabilistic verification of ensemble nowcasts, pooled per lead time (pure NumPy).

Fields are in physical units (mm/h). The definitions are pysteps' (``pysteps.verification``
1.21, ``probscores`` and ``ensscores``), and ``tests/test_probabilistic.py`` checks equality
with its functions to 1e-6:

- CRPS (``probscores.CRPS``, Hersbach 2000): the CRPS of the members' empirical CDF, mean
  over valid pixels. Computed as ``mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 N^2)`` (the
  same integral). One difference, on purpose: pysteps' ``CRPS_accum`` drops the interval
  next to an observation that equals a member exactly (members [0, 0, 2], observation 0
  give 0 instead of 2/9), which on rain fields (many exact zeros) understates the CRPS; here
  ties are exact. Equal to pysteps wherever no member equals the observation. A deterministic
  forecast is a one-member ensemble: its CRPS is its MAE.
- Rank histogram (``ensscores.rankhist_accum``): rank of the observation among the N
  members, N + 1 bins; ties get a uniform random rank between the tied positions (as
  pysteps, from a ``numpy.random.RandomState`` passed in); with ``rank_threshold`` pairs
  where the observation and every member are below it are left out, and values below it
  are tied. Flatness: Delle Monache et al. (2006)'s reliability index
  ``RI = sum_k |f_k - 1 / (N + 1)|`` over the relative frequencies ``f_k`` (0 = flat).
- Exceedance probability (``ensemblestats.excprob``): fraction of members ``>= X``.
- Reliability diagram (``probscores.reldiag``): probabilities in ``n_bins`` bins with edges
  ``linspace(-1e-6, 1 + 1e-6, n_bins + 1)`` (right-closed), observed event ``y >= X``; a
  bin with fewer than ``min_count`` pooled samples is NaN. pysteps applies ``min_count`` to
  each ``reldiag_accum`` call; here to the pooled counts (= pysteps on all data at once).
- ROC (``probscores.ROC_curve``): probability thresholds ``linspace(0, 1, n)``, forecast
  yes ``P >= p``, observed yes ``y >= X``; area by pysteps' trapezoids.
- Ensemble skill / spread (``ensscores.ensemble_skill`` / ``ensemble_spread`` with metric
  "RMSE"): mean over members of the member's RMSE, and mean over member pairs of the pair's
  RMSE; pooled here over all frames of a lead, on the jointly valid pixels (pysteps' spread
  ignores the observation's mask; equal to pysteps on one frame with one mask).
- Spread-skill ratio: ``sqrt((N + 1) / N) * spread / RMSE(ensemble mean)`` with ``spread =
  sqrt(mean over pixels of the members' unbiased variance)``; the factor is Fortin et al.
  (2014)'s finite-ensemble correction, so a reliable ensemble has ratio 1.

Valid pixels are as :func:`predrnn_tf.evaluation.scores.valid_mask`: a finite observation,
every member finite, and the caller's mask. :class:`ProbabilisticAccumulator` pools sums per
lead time over any number of frames, so a score is never an average of per-frame scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predrnn_tf.evaluation.scores import threshold_name

DEFAULT_THRESHOLDS = (1.0, 5.0)  # mm/h


def ensemble_valid_mask(truth: np.ndarray, members: np.ndarray,
                        valid: np.ndarray | None = None) -> np.ndarray:
    """Finite truth ``[...]``, every member of ``[N, ...]`` finite, and ``valid``."""
    truth, members = np.asarray(truth), np.asarray(members)
    if members.shape[1:] != truth.shape:
        raise ValueError(f"members must be [N, *truth.shape], got {members.shape} for truth "
                         f"{truth.shape}")
    mask = np.isfinite(truth) & np.all(np.isfinite(members), axis=0)
    if valid is not None:
        mask &= np.asarray(valid, bool)
    return mask


def crps_values(truth: np.ndarray, members: np.ndarray) -> np.ndarray:
    """CRPS of each pixel: ``truth [P]``, ``members [N, P]`` (finite) -> ``[P]``."""
    members = np.sort(np.asarray(members, np.float64), axis=0)  # [N, P]
    count = members.shape[0]
    absolute = np.mean(np.abs(members - truth[None]), axis=0)
    weights = 2.0 * np.arange(1, count + 1) - count - 1  # sum_ij |x_i - x_j| / 2 per order
    pairwise = np.tensordot(weights, members, axes=1)  # [P]
    return absolute - pairwise / count ** 2


def exceedance_probability(members: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of members ``>= threshold``: ``[N, ...] -> [...]`` (NaN where one is NaN)."""
    members = np.asarray(members, np.float64)
    probability = np.mean(members >= threshold, axis=0)
    return np.where(np.all(np.isfinite(members), axis=0), probability, np.nan)


def rank_counts(truth: np.ndarray, members: np.ndarray, threshold: float | None,
                random_state: np.random.RandomState) -> np.ndarray:
    """Rank histogram counts ``[N + 1]`` of ``truth [P]`` among ``members [N, P]`` (finite)."""
    truth, members = np.asarray(truth, np.float64), np.asarray(members, np.float64)
    count = members.shape[0]
    if threshold is not None:
        kept = (truth >= threshold) | np.any(members >= threshold, axis=0)
        truth, members = truth[kept], members[:, kept]
        truth = np.where(truth < threshold, threshold - 1.0, truth)
        members = np.where(members < threshold, threshold - 1.0, members)
    below = np.sum(members < truth[None], axis=0)  # [P] first position of the observation
    equal = np.sum(members == truth[None], axis=0)
    ranks = below.copy()
    tied = np.flatnonzero(equal > 0)  # pysteps draws for these in pixel order
    if tied.size:
        draws = random_state.uniform(low=0.0, high=1.0, size=tied.size)
        ranks[tied] = (below[tied] + draws * (equal[tied] + 1)).astype(int)
    return np.bincount(ranks, minlength=count + 1)


def reliability_index(counts: np.ndarray) -> np.ndarray:
    """Delle Monache's ``sum_k |f_k - 1 / (N + 1)|`` of rank counts ``[..., N + 1]``."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        frequencies = counts / total
    index = np.sum(np.abs(frequencies - 1.0 / counts.shape[-1]), axis=-1)
    return np.where(total[..., 0] > 0, index, np.nan)


def reliability_sums(probability: np.ndarray, observed: np.ndarray, threshold: float,
                     num_bins: int) -> np.ndarray:
    """``[bins, 3]``: per bin the sum of probabilities, observed events and samples."""
    edges = np.linspace(-1e-6, 1 + 1e-6, int(num_bins + 1))
    bins = np.digitize(probability, edges, right=True) - 1  # pysteps' bin k -> k - 1
    inside = (bins >= 0) & (bins < num_bins)
    bins, probability, observed = bins[inside], probability[inside], observed[inside]
    return np.stack([np.bincount(bins, probability, num_bins),
                     np.bincount(bins, (observed >= threshold).astype(float), num_bins),
                     np.bincount(bins, minlength=num_bins).astype(float)], axis=-1)


def reliability_curve(sums: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean forecast probability, observed frequency)`` per bin; NaN below ``min_count``."""
    sums = np.asarray(sums, np.float64)
    count = sums[..., 2]
    enough = count >= max(min_count, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        forecast = np.where(enough, sums[..., 0] / count, np.nan)
        observed = np.where(enough, sums[..., 1] / count, np.nan)
    return forecast, observed


def roc_counts(probability: np.ndarray, observed: np.ndarray, threshold: float,
               probability_thresholds: np.ndarray) -> np.ndarray:
    """``[P, 4]`` hits, misses, false alarms, correct negatives per probability threshold."""
    event = observed >= threshold
    yes = probability[None] >= probability_thresholds[:, None]  # [P, pixels]
    hits = np.sum(yes & event, axis=1)
    misses = np.sum(~yes & event, axis=1)
    false_alarms = np.sum(yes & ~event, axis=1)
    negatives = np.sum(~yes & ~event, axis=1)
    return np.stack([hits, misses, false_alarms, negatives], axis=-1).astype(np.int64)


def roc_curve(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(POFD [P], POD [P], area)`` of :func:`roc_counts` ``[P, 4]``, as pysteps."""
    counts = np.asarray(counts, np.float64)
    hits, misses, false_alarms, negatives = (counts[:, index] for index in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        pod = hits / (hits + misses)
        pofd = false_alarms / (negatives + false_alarms)
    area = (1.0 - pofd[0]) * (1.0 + pod[0]) / 2.0
    area += np.sum((pofd[:-1] - pofd[1:]) * (pod[1:] + pod[:-1]) / 2.0)
    area += pofd[-1] * pod[-1] / 2.0
    return pofd, pod, float(area)


def spread_sums(truth: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``[2]`` sum of squared errors of the ensemble mean, sum of unbiased member variance."""
    mean = members.mean(axis=0)
    variance = (members.var(axis=0, ddof=1) if members.shape[0] > 1
                else np.full(truth.shape, np.nan))
    return np.array([np.sum((mean - truth) ** 2), np.sum(variance)])


def member_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(i, j)`` of the member pairs ``i < j`` in pysteps' order."""
    first, second = np.triu_indices(count, k=1)
    return first, second


def pair_squared_sums(members: np.ndarray) -> np.ndarray:
    """``[N (N - 1) / 2]`` sums of squared differences of each member pair."""
    first, second = member_pairs(members.shape[0])
    return np.array([np.sum((members[i] - members[j]) ** 2) for i, j in zip(first, second,
                                                                         strict=True)])


class ProbabilisticAccumulator:
    """Pools the probabilistic scores of one N-member forecaster per lead time.

    Args:
      output_length: lead times T.
      num_members: members N per forecast (1: a deterministic forecaster).
      thresholds: exceedance thresholds of the reliability diagram and ROC (physical units).
      unit: suffix of the threshold in metric names ("mmh" -> ``roc_area_1mmh``).
      num_bins: reliability diagram bins.
      min_count: fewest pooled samples for a reliability bin to be shown.
      num_probability_thresholds: points of the ROC curve.
      rank_threshold: pysteps' ``X_min`` of the rank histogram (None: every valid pixel).
      seed: seed of the ``RandomState`` that breaks rank ties.
    """

    def __init__(self, output_length: int, num_members: int,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS, unit: str = "mmh",
                 num_bins: int = 10, min_count: int = 10, num_probability_thresholds: int = 10,
                 rank_threshold: float | None = None, seed: int = 0):
        if output_length < 1 or num_members < 1:
            raise ValueError(f"output_length and num_members must be positive, got "
                             f"{output_length} and {num_members}")
        self.output_length, self.num_members = int(output_length), int(num_members)
        self.thresholds = tuple(float(value) for value in thresholds)
        self.unit, self.num_bins, self.min_count = unit, int(num_bins), int(min_count)
        self.probability_thresholds = np.linspace(0.0, 1.0, int(num_probability_thresholds))
        self.rank_threshold = rank_threshold
        self.random_state = np.random.RandomState(seed)
        leads, levels = self.output_length, len(self.thresholds)
        self.crps = np.zeros((leads, 2))  # sum, valid pixels
        self.ranks = np.zeros((leads, self.num_members + 1), np.int64)
        self.reliability = np.zeros((leads, levels, self.num_bins, 3))
        self.roc = np.zeros((leads, levels, len(self.probability_thresholds), 4), np.int64)
        self.spread = np.zeros((leads, 2))  # ensemble-mean squared error, member variance
        self.member_errors = np.zeros((leads, self.num_members))  # squared error sums
        self.pair_errors = np.zeros((leads, len(member_pairs(self.num_members)[0])))

    def add(self, lead: int, truth: np.ndarray, members: np.ndarray,
            valid: np.ndarray | None = None) -> None:
        """Adds frames of lead ``lead`` (0-based): truth ``[F, H, W]``, members ``[F, N, H, W]``.

        One frame (truth ``[H, W]``, members ``[N, H, W]``) is accepted too.
        """
        truth, members = np.asarray(truth, np.float64), np.asarray(members, np.float64)
        if members.ndim == truth.ndim + 1 and truth.ndim == 2:
            truth, members = truth[None], members[None]  # [1, H, W], [1, N, H, W]
            valid = None if valid is None else np.asarray(valid)[None]
        if members.shape[1] != self.num_members:
            raise ValueError(f"expected {self.num_members} members, got shape {members.shape}")
        members = np.moveaxis(members, 1, 0)  # [N, F, H, W]
        mask = ensemble_valid_mask(truth, members, valid)
        observed, forecast = truth[mask], members[:, mask]  # [P], [N, P]
        self.crps[lead] += (np.sum(crps_values(observed, forecast)), observed.size)
        self.ranks[lead] += rank_counts(observed, forecast, self.rank_threshold,
                                        self.random_state)
        self._add_probabilities(lead, observed, forecast)
        self.spread[lead] += spread_sums(observed, forecast)
        self.member_errors[lead] += np.sum((forecast - observed[None]) ** 2, axis=1)
        self.pair_errors[lead] += pair_squared_sums(forecast)

    def _add_probabilities(self, lead: int, observed: np.ndarray, forecast: np.ndarray) -> None:
        for index, threshold in enumerate(self.thresholds):
            probability = exceedance_probability(forecast, threshold)
            self.reliability[lead, index] += reliability_sums(probability, observed, threshold,
                                                              self.num_bins)
            self.roc[lead, index] += roc_counts(probability, observed, threshold,
                                                self.probability_thresholds)

    def add_sequences(self, truth: np.ndarray, members: np.ndarray,
                      valid: np.ndarray | None = None) -> None:
        """Adds truth ``[B, T, H, W(, 1)]`` and members ``[B, N, T, H, W(, 1)]``, all leads."""
        truth, members = np.asarray(truth), np.asarray(members)
        if members.ndim == 6:
            truth, members = truth[..., 0], members[..., 0]  # [B, T, H, W], [B, N, T, H, W]
            valid = None if valid is None else np.asarray(valid)[..., 0]
        if truth.ndim != 4 or members.ndim != 5 or truth.shape[1] != self.output_length:
            raise ValueError(f"expected truth [B, {self.output_length}, H, W] and members "
                             f"[B, N, {self.output_length}, H, W], got {truth.shape} and "
                             f"{members.shape}")
        for lead in range(self.output_length):
            self.add(lead, truth[:, lead], members[:, :, lead],
                     None if valid is None else valid[:, lead])

    def per_lead(self) -> dict[str, np.ndarray]:
        """Every scalar score per lead time ``[T]`` (NaN where undefined)."""
        suffix = f"_{self.unit}" if self.unit else ""
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = self.crps[:, 1]
            rmse_mean = np.sqrt(self.spread[:, 0] / pixels)
            spread = np.sqrt(self.spread[:, 1] / pixels)
            scores = {
                f"crps{suffix}": self.crps[:, 0] / pixels,
                "rank_reliability_index": reliability_index(self.ranks),
                f"rmse_ensemble_mean{suffix}": rmse_mean,
                f"spread{suffix}": spread,
                "spread_skill_ratio": (np.sqrt((self.num_members + 1) / self.num_members)
                                       * spread / rmse_mean),
                f"ensemble_skill_rmse{suffix}": np.mean(
                    np.sqrt(self.member_errors / pixels[:, None]), axis=1),
                f"ensemble_spread_rmse{suffix}": (
                    np.mean(np.sqrt(self.pair_errors / pixels[:, None]), axis=1)
                    if self.pair_errors.shape[1] else np.full(self.output_length, np.nan)),
            }
        for index, threshold in enumerate(self.thresholds):
            areas = [roc_curve(self.roc[lead, index])[2] for lead in range(self.output_length)]
            scores[f"roc_area_{threshold_name(threshold, self.unit)}"] = np.array(areas)
        return scores

    def curves(self) -> dict[str, Any]:
        """Rank histograms ``[T, N + 1]`` (frequencies), reliability and ROC curves per lead."""
        with np.errstate(divide="ignore", invalid="ignore"):
            total = self.ranks.sum(axis=1, keepdims=True)
            curves: dict[str, Any] = {"rank_histogram": self.ranks / total}
        for index, threshold in enumerate(self.thresholds):
            name = threshold_name(threshold, self.unit)
            forecast, observed = reliability_curve(self.reliability[:, index], self.min_count)
            curves[f"reliability_{name}"] = {"forecast_probability": forecast,
                                             "observed_frequency": observed,
                                             "samples": self.reliability[:, index, :, 2]}
            pofd, pod = zip(*(roc_curve(self.roc[lead, index])[:2]
                              for lead in range(self.output_length)), strict=True)
            curves[f"roc_{name}"] = {"pofd": np.array(pofd), "pod": np.array(pod)}
        return curves
