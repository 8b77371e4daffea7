"""Pure loss functions: frame MSE and the PredRNN-V2 memory decoupling loss."""

from __future__ import annotations

import tensorflow as tf

# The official code uses F.normalize (eps 1e-12) then torch.cosine_similarity (eps 1e-8).
_NORMALIZE_EPSILON = 1e-12
_COSINE_EPSILON = 1e-8


def frame_mse(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Per-sample mean squared error over all frames and pixels: ``[B]`` float32."""
    difference = tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32)
    return tf.reduce_mean(tf.square(difference), axis=tf.range(1, tf.rank(difference)))


def decoupling_cosine(delta_c: tf.Tensor, delta_m: tf.Tensor) -> tf.Tensor:
    """|cosine| between the adapted memory increments, per sample: ``[B]`` float32.

    Each increment ``[B, H, W, C]`` is flattened over space per channel and L2-normalised
    over space; the absolute cosine similarity of the two is averaged over channels.

    Args:
      delta_c: the cell-memory increment after the shared adapter convolution.
      delta_m: the spatiotemporal-memory increment after the same adapter.
    """
    delta_c = tf.cast(delta_c, tf.float32)
    delta_m = tf.cast(delta_m, tf.float32)
    shape = tf.shape(delta_c)
    flat_c = tf.reshape(delta_c, [shape[0], -1, shape[3]])  # [B, H*W, C]
    flat_m = tf.reshape(delta_m, [shape[0], -1, shape[3]])  # [B, H*W, C]
    unit_c = flat_c / tf.maximum(tf.norm(flat_c, axis=1, keepdims=True), _NORMALIZE_EPSILON)
    unit_m = flat_m / tf.maximum(tf.norm(flat_m, axis=1, keepdims=True), _NORMALIZE_EPSILON)
    dot = tf.reduce_sum(unit_c * unit_m, axis=1)  # [B, C]
    norms = tf.norm(unit_c, axis=1) * tf.norm(unit_m, axis=1)  # [B, C]
    cosine = dot / tf.maximum(norms, _COSINE_EPSILON)
    return tf.reduce_mean(tf.abs(cosine), axis=1)


def adapted_decoupling_cosine(adapter, delta_c: tf.Tensor, delta_m: tf.Tensor) -> tf.Tensor:
    """Per-sample |cosine| between ``delta_c`` and ``delta_m`` after the shared 1x1 adapter.

    Both increments go through ``adapter`` in one call (``[2B, Hp, Wp, nh]``), as the
    official code applies the same ``adapter`` convolution to each.
    """
    both = adapter(tf.concat([delta_c, delta_m], axis=0))  # [2B, Hp, Wp, nh]
    adapted_c, adapted_m = tf.split(both, 2, axis=0)
    return decoupling_cosine(adapted_c, adapted_m)
