"""Probability matching of a rain-rate forecast to the last input's distribution.

A forecast trained on the squared error blurs: its rain area above 1 mm/h shrinks with the
lead time (frequency bias below 1). pysteps' S-PROG and STEPS correct the same effect by
matching each forecast field's empirical distribution to the observed one
(``pysteps.postprocessing.probmatching.nonparam_match_empirical_cdf``): the forecast keeps
the ranks of its pixels (where rain is heavier), and takes the values of the last observed
field. :func:`match_empirical_cdf` is that function in numpy (no pysteps needed, equal to it,
tests/test_probability_matching.py); :func:`match_forecast` applies it to every lead time of
a forecast in the model's [0, 1] pixels of a dBR rain-rate dataset, over the pixels valid in
the last input frame. Pixels outside them are left as forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predrnn_tf import units


def match_empirical_cdf(initial: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``initial`` with the empirical distribution of ``target`` (same size), pysteps' rule.

    The ranks of ``initial`` are kept; its pixels at its minimum (no rain) stay at the
    target's minimum; when the target has more pixels above its minimum than ``initial``,
    its lowest ones are set to its minimum first (the rain area never grows).

    Args:
      initial: the forecast field (finite values).
      target: the field whose distribution is wanted (NaN counted as its minimum).

    Returns:
      float64 array of ``initial``'s shape.
    """
    initial = np.asarray(initial, np.float64)
    target = np.asarray(target, np.float64)
    if initial.size != target.size:
        raise ValueError(f"initial and target sizes differ: {initial.shape} and {target.shape}")
    if not np.all(np.isfinite(initial)):
        raise ValueError("the initial field contains non-finite values")
    zero = initial.min()
    zero_target = np.nanmin(target)
    target = np.where(np.isnan(target), zero_target, target)
    wet = np.sum(initial > zero)
    if np.sum(target > zero_target) > wet:
        threshold = np.percentile(target, 100 * (1 - wet / initial.size))
        target[target < threshold] = zero_target
    ranked = np.sort(target.reshape(-1))
    ranks = np.empty(initial.size, int)
    ranks[initial.reshape(-1).argsort()] = np.arange(initial.size)
    output = ranked[ranks].reshape(initial.shape)
    output[initial == zero] = zero_target
    return output


def match_forecast(inputs01: Any, forecast01: Any, metadata: dict[str, Any]) -> np.ndarray:
    """Every forecast frame matched to the last input frame's rain-rate distribution.

    Args:
      inputs01: ``[B, T_in, H, W, 1]`` input frames, [0, 1] pixels of a dBR dataset.
      forecast01: ``[B, T_out, H, W, 1]`` forecast frames, same scale and size.
      metadata: the dataset's metadata (its dBR ``value_mapping``).

    Returns:
      float32 ``[B, T_out, H, W, 1]`` in [0, 1] pixels.
    """
    inputs01 = np.asarray(inputs01, np.float32)
    forecast01 = np.clip(np.asarray(forecast01, np.float32), 0.0, 1.0)
    if inputs01.shape[0] != forecast01.shape[0] or inputs01.shape[2:] != forecast01.shape[2:]:
        raise ValueError(f"inputs {inputs01.shape} and forecast {forecast01.shape} must share "
                         f"batch and frame size")
    last = inputs01[:, -1]  # [B, H, W, 1]
    valid = units.valid_pixels(last, metadata)  # [B, H, W, 1]
    target_rate = units.pixels_to_rain_rate(last, metadata)
    forecast_rate = units.pixels_to_rain_rate(forecast01, metadata)  # [B, T, H, W, 1]
    matched = forecast01.copy()
    for sequence in range(forecast01.shape[0]):
        mask = valid[sequence]
        if not mask.any():
            continue
        target = target_rate[sequence][mask]
        for lead in range(forecast01.shape[1]):
            rate = match_empirical_cdf(forecast_rate[sequence, lead][mask], target)
            matched[sequence, lead][mask] = units.rain_rate_to_unit_pixels(rate)
    return matched
