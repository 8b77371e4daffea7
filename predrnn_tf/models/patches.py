"""Space-to-depth patching of frame sequences, as the official ``reshape_patch``."""

from __future__ import annotations

import tensorflow as tf


def patch_frames(frames: tf.Tensor, patch_size: int) -> tf.Tensor:
    """``[B, T, H, W, C]`` -> ``[B, T, H/p, W/p, p*p*C]``.

    The pixel at row ``hp*p + pi``, column ``wp*p + pj``, channel ``c`` goes to position
    ``(hp, wp)``, channel ``(pi*p + pj)*C + c``. H and W may be dynamic.
    """
    if patch_size == 1:
        return frames
    with tf.name_scope("patch_frames"):
        return _patch(frames, patch_size)


def _patch(frames: tf.Tensor, patch_size: int) -> tf.Tensor:
    shape = tf.shape(frames)
    batch, time, height, width = shape[0], shape[1], shape[2], shape[3]
    channels = frames.shape[-1]
    p = patch_size
    # [B, T, Hp, pi, Wp, pj, C]
    blocks = tf.reshape(frames, [batch, time, height // p, p, width // p, p, channels])
    blocks = tf.transpose(blocks, [0, 1, 2, 4, 3, 5, 6])  # [B, T, Hp, Wp, pi, pj, C]
    return tf.reshape(blocks, [batch, time, height // p, width // p, p * p * channels])


def unpatch_frames(patches: tf.Tensor, patch_size: int) -> tf.Tensor:
    """Exact inverse of :func:`patch_frames`: ``[B, T, Hp, Wp, p*p*C]`` -> ``[B, T, H, W, C]``."""
    if patch_size == 1:
        return patches
    with tf.name_scope("unpatch_frames"):
        return _unpatch(patches, patch_size)


def _unpatch(patches: tf.Tensor, patch_size: int) -> tf.Tensor:
    shape = tf.shape(patches)
    batch, time, patched_height, patched_width = shape[0], shape[1], shape[2], shape[3]
    p = patch_size
    channels = patches.shape[-1] // (p * p)
    # [B, T, Hp, Wp, pi, pj, C]
    blocks = tf.reshape(patches, [batch, time, patched_height, patched_width, p, p, channels])
    blocks = tf.transpose(blocks, [0, 1, 2, 4, 3, 5, 6])  # [B, T, Hp, pi, Wp, pj, C]
    return tf.reshape(blocks, [batch, time, patched_height * p, patched_width * p, channels])
