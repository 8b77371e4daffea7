"""Probability matching of a rain-rate forecast: the rain area a squared-error model loses.

A forecast trained on the squared error blurs: its rain area above 1 mm/h shrinks with the
lead time (frequency bias below 1). pysteps' S-PROG and STEPS correct the same effect by
matching each forecast field's empirical distribution to an observed one
(``pysteps.postprocessing.probmatching.nonparam_match_empirical_cdf``): the forecast keeps
the ranks of its pixels (where rain is heavier) and takes the target's values.
:func:`match_empirical_cdf` is that function in numpy (no pysteps needed, equal to it,
tests/test_probability_matching.py). Two post-processing methods (:data:`METHODS`), both on
the model's [0, 1] pixels of a dBR rain-rate dataset, over the pixels valid in the last
input frame (pixels outside them are left as forecast):

- ``last_input`` (:func:`match_forecast`): every lead matched to the last input's
  distribution. Keeps persistence's rain area, which grows far too large where rain decays
  or leaves the domain.
- ``extrapolation`` (:func:`match_to_extrapolation`): every lead blended with the same
  lead's extrapolation nowcast (pysteps' Lucas-Kanade + semi-Lagrangian, given by the
  caller), half each in mm/h, then moved 85 % of the way to its probability-matched version,
  whose target is the extrapolated field's distribution over the pixels advected from
  inside the domain (extrapolation has no rain to bring in at the edges, so its own area is
  too small where rain flows in). The blend weight and the strength (defaults
  :data:`MODEL_WEIGHT`, :data:`MATCH_STRENGTH`) are arguments; the defaults were chosen on
  the leave-one-source-out whole composites (docs/experiments/radar_whole_composite.md).
"""

from __future__ import annotations

from collections.abc import Callable
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


METHODS = ("none", "last_input", "extrapolation")
# for an ensemble's members only: each matched to the members' pooled distribution per lead
MEMBER_METHODS = (*METHODS, "pooled")
MODEL_WEIGHT = 0.5  # the model's share of the blend with extrapolation (mm/h)
MATCH_STRENGTH = 0.85  # how far the blend moves to the matched field (0: blend, 1: matched)


def check_method(method: str, members: bool = False) -> str:
    """``method`` if it is one of :data:`METHODS` (``members``: :data:`MEMBER_METHODS`), else
    ValueError naming the choices."""
    choices = MEMBER_METHODS if members else METHODS
    if method not in choices:
        raise ValueError(f"probability_matching must be one of {', '.join(choices)}, got "
                         f"{method!r}")
    return method


def check_blend(model_weight: float, strength: float) -> tuple[float, float]:
    """``(model_weight, strength)`` if both are in [0, 1], else ValueError naming the value."""
    for name, value in (("probability_matching_blend", model_weight),
                        ("probability_matching_strength", strength)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(model_weight), float(strength)


def blend_options(method: str, model_weight: float | None, strength: float | None
                  ) -> dict[str, float]:
    """The given blend weight / strength as ``postprocess`` keywords (None: the default).

    ValueError (one line, naming the flag) for a value outside [0, 1] or given with a method
    other than ``extrapolation``.
    """
    given = {name: value for name, value in (("model_weight", model_weight),
                                              ("strength", strength)) if value is not None}
    if given and method != "extrapolation":
        flag = "probability_matching_blend" if "model_weight" in given else \
            "probability_matching_strength"
        raise ValueError(f"{flag} needs --probability_matching=extrapolation, got "
                         f"--probability_matching={method}")
    check_blend(given.get("model_weight", MODEL_WEIGHT), given.get("strength", MATCH_STRENGTH))
    return given


def resample_distribution(values: np.ndarray, size: int) -> np.ndarray:
    """``size`` values with the empirical distribution of ``values`` (sorted, interpolated)."""
    values = np.sort(np.asarray(values, np.float64).reshape(-1))
    if values.size == size or not values.size:
        return values
    positions = (np.arange(size) + 0.5) * values.size / size - 0.5
    return np.interp(positions, np.arange(values.size), values)


def blend_and_match(forecast: np.ndarray, extrapolated: np.ndarray,
                    model_weight: float = MODEL_WEIGHT,
                    strength: float = MATCH_STRENGTH) -> np.ndarray:
    """One field (mm/h, flat): blended with ``extrapolated``, moved towards its distribution.

    Args:
      forecast: the model's rain rates (finite).
      extrapolated: the extrapolation's rain rates of the same pixels, NaN where the pixel
        was advected in from outside the domain (its rain there is unknown).
      model_weight: the model's share of the blend (the rest is the extrapolation's, NaN = 0).
      strength: 0 keeps the blend, 1 takes the matched field.

    Returns:
      float64 rain rates of ``forecast``'s shape.
    """
    inside = np.isfinite(extrapolated)
    blend = model_weight * forecast + (1 - model_weight) * np.where(inside, extrapolated, 0.0)
    if not inside.any():
        return blend
    target = resample_distribution(extrapolated[inside], blend.size)
    return (1 - strength) * blend + strength * match_empirical_cdf(blend, target)


def match_to_extrapolation(inputs01: Any, forecast01: Any, extrapolated_rate: Any,
                           metadata: dict[str, Any], model_weight: float = MODEL_WEIGHT,
                           strength: float = MATCH_STRENGTH) -> np.ndarray:
    """Every forecast frame blended with extrapolation, then (mostly) matched to its distribution.

    Args:
      inputs01: ``[B, T_in, H, W, 1]`` input frames, [0, 1] pixels of a dBR dataset.
      forecast01: ``[B, T_out, H, W, 1]`` forecast frames, same scale and size.
      extrapolated_rate: ``[B, T_out, H, W, 1]`` extrapolation nowcast in mm/h, NaN where
        advected in from outside the domain.
      metadata: the dataset's metadata (its dBR ``value_mapping``).
      model_weight: see :func:`blend_and_match`.
      strength: see :func:`blend_and_match`.

    Returns:
      float32 ``[B, T_out, H, W, 1]`` in [0, 1] pixels.
    """
    inputs01 = np.asarray(inputs01, np.float32)
    forecast01 = np.clip(np.asarray(forecast01, np.float32), 0.0, 1.0)
    extrapolated_rate = np.asarray(extrapolated_rate, np.float64)
    if extrapolated_rate.shape != forecast01.shape:
        raise ValueError(f"extrapolation {extrapolated_rate.shape} and forecast "
                         f"{forecast01.shape} must have one shape")
    valid = units.valid_pixels(inputs01[:, -1], metadata)  # [B, H, W, 1]
    forecast_rate = units.pixels_to_rain_rate(forecast01, metadata)  # [B, T, H, W, 1]
    matched = forecast01.copy()
    for sequence in range(forecast01.shape[0]):
        mask = valid[sequence]
        for lead in range(forecast01.shape[1]):
            rate = blend_and_match(forecast_rate[sequence, lead][mask],
                                   extrapolated_rate[sequence, lead][mask], model_weight,
                                   strength)
            matched[sequence, lead][mask] = units.rain_rate_to_unit_pixels(np.maximum(rate, 0))
    return matched


def match_members_to_pool(inputs01: Any, members01: Any, metadata: dict[str, Any]
                          ) -> np.ndarray:
    """Every member matched, lead by lead, to the pooled distribution of all the members.

    The target is the ensemble's own rain amounts at that lead (every member's valid pixels
    pooled, resampled to one field's size), so the members keep their places and the
    ensemble its decay, and lose only their differences in amount.

    Args:
      inputs01: ``[B, T_in, H, W, 1]`` input frames, [0, 1] pixels of a dBR dataset (the last
        one's valid pixels are matched).
      members01: ``[B, N, T_out, H, W, 1]`` members, same scale and frame size.
      metadata: the dataset's metadata (its dBR ``value_mapping``).

    Returns:
      float32 ``[B, N, T_out, H, W, 1]`` in [0, 1] pixels.
    """
    inputs01 = np.asarray(inputs01, np.float32)
    members01 = np.clip(np.asarray(members01, np.float32), 0.0, 1.0)
    if members01.ndim != 6 or inputs01.shape[0] != members01.shape[0] or \
            inputs01.shape[2:] != members01.shape[3:]:
        raise ValueError(f"inputs {inputs01.shape} and members {members01.shape} must be "
                         f"[B, T_in, H, W, 1] and [B, N, T_out, H, W, 1]")
    valid = units.valid_pixels(inputs01[:, -1], metadata)  # [B, H, W, 1]
    rates = units.pixels_to_rain_rate(members01, metadata)  # [B, N, T, H, W, 1]
    matched = members01.copy()
    for sequence in range(members01.shape[0]):
        mask = valid[sequence]
        if not mask.any():
            continue
        for lead in range(members01.shape[2]):
            fields = rates[sequence, :, lead][:, mask]  # [N, valid pixels]
            target = resample_distribution(fields, fields.shape[1])
            for member, field in enumerate(fields):
                matched[sequence, member, lead][mask] = units.rain_rate_to_unit_pixels(
                    match_empirical_cdf(field, target))
    return matched


def postprocess(method: str, inputs01: Any, forecast01: Any, metadata: dict[str, Any],
                extrapolate: Callable[[Any], Any] | None = None,
                model_weight: float = MODEL_WEIGHT, strength: float = MATCH_STRENGTH
                ) -> np.ndarray:
    """The forecast post-processed by ``method`` (one of :data:`METHODS`).

    Args:
      method: ``none``, ``last_input`` or ``extrapolation``.
      inputs01: ``[B, T_in, H, W, 1]`` input frames, [0, 1] pixels of a dBR dataset.
      forecast01: ``[B, T_out, H, W, 1]`` the model's forecast.
      metadata: the dataset's metadata (its dBR ``value_mapping``).
      extrapolate: ``extrapolation`` only: ``inputs01 -> [B, T_out, H, W, 1]`` mm/h, NaN where
        advected from outside (e.g. ``baselines.RainRateNowcast.forecast_rates``).
      model_weight: ``extrapolation`` only: the model's share of the blend.
      strength: ``extrapolation`` only: how far the blend moves to its matched field.
    """
    check_method(method)
    check_blend(model_weight, strength)
    if method == "none":
        return np.asarray(forecast01, np.float32)
    if not units.is_rain_rate_mapping(metadata):
        raise ValueError(f"probability_matching={method} needs a rain-rate (dBR) model; this "
                         f"one's data is {(units.mapping_of(metadata) or {}).get('units')!r}")
    if method == "last_input":
        return match_forecast(inputs01, forecast01, metadata)
    if extrapolate is None:
        raise ValueError("probability_matching=extrapolation needs the extrapolation nowcast")
    return match_to_extrapolation(inputs01, forecast01, extrapolate(inputs01), metadata,
                                  model_weight, strength)
