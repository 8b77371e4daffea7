"""The learned change of a residual model's frame: gated to rain, centred on rain (radar options).

A residual model predicts each frame as a prior frame (the input, or the input advected) plus a
learned change (:class:`predrnn_tf.models.radar_head.RadarHead`). Two
options shape that change, both on the [0, 1] pixel scale of the prior:

- ``dry_below``: the change is zero where the prior is dry (below that value), so the model
  cannot paint rain on dry ground;
- ``zero_mean_change``: the change loses its mean over the prior's wet pixels, per sample and
  frame, so the model can move and reshape rain but not add or remove it in net. Wet means at
  least ``dry_below``, or :data:`WET_FROM` (the metrics' dry threshold) without it.
"""

from __future__ import annotations

import tensorflow as tf

from predrnn_tf.units import DRY_BELOW_PIXEL

WET_FROM = DRY_BELOW_PIXEL / 255.0  # the no-rain pixel plus half a step, on the [0, 1] scale


def centre_on_wet_pixels(change: tf.Tensor, wet: tf.Tensor) -> tf.Tensor:
    """``change`` minus its mean over the ``wet`` elements of each sample (zero if none).

    Args:
      change: ``[B, ...]`` the learned change of one frame.
      wet: ``[B, ...]`` bool, the same shape.

    Returns:
      The centred change, same shape and dtype; a sample without a wet element gets zero.
    """
    axes = list(range(1, len(change.shape)))
    weights = tf.cast(wet, change.dtype)
    count = tf.reduce_sum(weights, axis=axes, keepdims=True)  # [B, 1, ..., 1]
    mean = tf.reduce_sum(change * weights, axis=axes, keepdims=True) / tf.maximum(count, 1.0)
    return tf.where(count > 0, change - mean, tf.zeros_like(change))


def shape_change(change: tf.Tensor, prior: tf.Tensor, dry_below: float,
                 zero_mean_change: bool) -> tf.Tensor:
    """The learned change centred on the prior's wet pixels and/or zeroed on its dry ones.

    Args:
      change: ``[B, Hp, Wp, p*p*C]`` the output convolution's change (patched).
      prior: the prior frame, the same shape.
      dry_below: 0 (no gate) or the [0, 1] value below which a prior pixel is dry.
      zero_mean_change: subtract the change's mean over the wet pixels first.

    Returns:
      The change to add to ``prior``, the same shape and dtype.
    """
    if not (dry_below or zero_mean_change):
        return change
    wet = prior >= tf.cast(dry_below or WET_FROM, prior.dtype)  # [B, Hp, Wp, p*p*C]
    if zero_mean_change:
        change = centre_on_wet_pixels(change, wet)
    if dry_below:
        change = tf.where(wet, change, tf.zeros_like(change))
    return change
