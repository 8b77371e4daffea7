"""Random augmentation of training sequences in tf.data (never pre-materialised).

Every sequence ``[T, H, W, C]`` (uint8, square frames) gets one random 90-degree rotation
(k in 0..3), a random left-right flip (with the rotations: all 8 symmetries of the square)
and a random crop to ``size x size``, the same for all its frames. Evaluation takes the
centred crop (:func:`center_crop`). Radar fields have no preferred orientation at these
scales, so every symmetry is an equally likely weather situation.

With time reversal (:func:`reverse_time_at_random`), a training sequence is also played
backwards with probability 0.5, so growth and decay are equally likely in training and a
model cannot learn the net growth of its few training events. Evaluation never reverses.
"""

from __future__ import annotations

import tensorflow as tf


def center_crop(frames: tf.Tensor, size: int) -> tf.Tensor:
    """The centred ``size x size`` crop of ``[T, H, W, C]`` frames (no-op at that size)."""
    height, width = frames.shape[1], frames.shape[2]
    if height == size and width == size:
        return frames
    top, left = (height - size) // 2, (width - size) // 2
    return frames[:, top:top + size, left:left + size]


def augment_sequence(frames: tf.Tensor, size: int) -> tf.Tensor:
    """Random rotation by k * 90 degrees, random flip and random ``size`` crop of a sequence."""
    turns = tf.random.uniform([], 0, 4, dtype=tf.int32)
    frames = tf.image.rot90(frames, turns)  # [T, H, W, C], square frames keep their shape
    flip = tf.random.uniform([]) < 0.5
    frames = tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)
    length, height, width, channels = frames.shape
    if height == size and width == size:
        return frames
    return tf.image.random_crop(frames, [length, size, size, channels])


def reverse_time_at_random(frames: tf.Tensor) -> tf.Tensor:
    """The sequence ``[T, H, W, C]`` played backwards with probability 0.5, else unchanged."""
    backwards = tf.random.uniform([]) < 0.5
    return tf.cond(backwards, lambda: tf.reverse(frames, axis=[0]), lambda: frames)


def _spatial_transform(frame_shape: tuple[int, int, int], size: int | None, augment: bool):
    """The crop (random with symmetries, or centred) for ``Dataset.map``, or None."""
    height, width, _ = frame_shape
    size = size or height
    if size > min(height, width):
        raise ValueError(f"--img_width={size} is larger than the stored {height}x{width} frames")
    if augment and height != width:
        raise ValueError(f"--augment needs square frames, the dataset has {height}x{width}")
    if augment:
        return lambda frames: augment_sequence(frames, size)
    if (height, width) == (size, size):
        return None
    return lambda frames: center_crop(frames, size)


def make_frame_transform(frame_shape: tuple[int, int, int], size: int | None, augment: bool,
                         time_reversal: bool = False):
    """``[T, H, W, C] -> [T, size, size, C]`` for ``Dataset.map``, or None if nothing to do.

    Args:
      frame_shape: stored ``(H, W, C)``.
      size: frame side the model takes (None: the stored size).
      augment: random symmetries and crops (training) instead of the centred crop.
      time_reversal: also play each sequence backwards with probability 0.5 (training only).
    """
    spatial = _spatial_transform(frame_shape, size, augment)
    if not time_reversal:
        return spatial
    if spatial is None:
        return reverse_time_at_random
    return lambda frames: reverse_time_at_random(spatial(frames))
