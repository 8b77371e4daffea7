"""Wet-sequence sampling: how much of a sequence rains, and how likely training draws it.

Most radar frames are dry; sampling every window alike spends most updates on no rain.
As DGMR (Ravuri et al. 2021, "importance sampling" of crops by rain), training keeps each
record with an acceptance probability that grows with its rain:

    wet_fraction = share of the record's valid pixels (over all its frames) with a rain
                   rate >= WET_THRESHOLD_MM_PER_HOUR (0.1 mm/h)
    weight       = max(floor, 1 - exp(-wet_fraction / scale))

With the defaults (floor 0.05, scale 0.1) a dry record is kept 1 time in 20, a record with
10% wet pixels 63% of the time and one with 30% or more almost always. The converter stores
``wet_fraction`` in every radar record (an optional ``float`` feature of the schema) and a
summary (:func:`summary`) in the dataset metadata under ``wet_sampling``; the reader draws
by :func:`weight_tf` (rejection sampling) when ``--wet_sampling`` is on. Records without the
feature (Moving MNIST, KTH, older radar datasets) have weight 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from predrnn_tf.config import Config
from predrnn_tf.errors import ConfigError

WET_THRESHOLD_MM_PER_HOUR = 0.1
SCHEME = "weight = max(floor, 1 - exp(-wet_fraction / scale)), rejection sampling"
HISTOGRAM_EDGES = (0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class WetSampling:
    """The acceptance rule's two numbers.

    Attributes:
      floor: acceptance of a dry record, in (0, 1] (keeps some dry cases: the model must
        learn that no rain stays no rain).
      scale: wet fraction at which the acceptance reaches 1 - 1/e.
    """

    floor: float = Config.wet_sampling_floor
    scale: float = Config.wet_sampling_scale

    def __post_init__(self):
        if not 0.0 < self.floor <= 1.0:
            raise ConfigError(f"--wet_sampling_floor must be in (0, 1], got {self.floor}")
        if not 0.0 < self.scale <= 1.0:  # a wet fraction lies in [0, 1]
            raise ConfigError(f"--wet_sampling_scale must be a wet fraction in (0, 1], got "
                              f"{self.scale}")

    def as_dict(self) -> dict[str, Any]:
        """The rule for metadata and data cards."""
        return {"scheme": SCHEME, "floor": self.floor, "scale": self.scale,
                "wet_threshold_mm_per_hour": WET_THRESHOLD_MM_PER_HOUR}


def wet_fraction(rain_rate: np.ndarray) -> float:
    """Share of the finite values of ``rain_rate`` (mm/h, NaN = no data) that are wet."""
    rain_rate = np.asarray(rain_rate, np.float64)
    valid = np.isfinite(rain_rate)
    count = int(valid.sum())
    if not count:
        return 0.0
    return float((rain_rate[valid] >= WET_THRESHOLD_MM_PER_HOUR).sum() / count)


def weight(fraction: float | np.ndarray, rule: WetSampling) -> np.ndarray:
    """The acceptance probability of records with ``fraction`` wet (negative = unknown: 1)."""
    fraction = np.asarray(fraction, np.float64)
    accepted = np.maximum(rule.floor, 1.0 - np.exp(-np.maximum(fraction, 0.0) / rule.scale))
    return np.where(fraction < 0.0, 1.0, accepted)


def weight_tf(fraction, rule: WetSampling):
    """:func:`weight` on a float32 tensor (graph-safe)."""
    import tensorflow as tf

    accepted = tf.maximum(rule.floor, 1.0 - tf.exp(-tf.maximum(fraction, 0.0) / rule.scale))
    return tf.where(fraction < 0.0, tf.ones_like(fraction), accepted)


def histogram(fractions: Sequence[float]) -> list[int]:
    """Counts of ``fractions`` in the bins of :data:`HISTOGRAM_EDGES` (last bin closed)."""
    counts, _ = np.histogram(np.asarray(fractions, np.float64), bins=HISTOGRAM_EDGES)
    return [int(count) for count in counts]


def summary(counts: Sequence[int], rule: WetSampling) -> dict[str, Any]:
    """Metadata of one split from its histogram: records, dry share, expected acceptance.

    The expected acceptance uses each bin's lower edge (a lower bound), so the figure never
    flatters the input rate.
    """
    counts = [int(count) for count in counts]
    total = sum(counts)
    lower = weight(np.asarray(HISTOGRAM_EDGES[:-1]), rule)
    accepted = float(np.dot(lower, counts) / total) if total else 0.0
    return {"records": total, "histogram_edges": list(HISTOGRAM_EDGES),
            "histogram": counts, "dry_records": counts[0],
            "expected_acceptance_at_least": round(accepted, 4)}
