"""Motion of the input frames and semi-Lagrangian advection, in TensorFlow ops only.

The advection prior of the radar recipe (``--advection_prior=true``): the frame that the
network's learned change is added to is the step's input frame moved one step along the
motion of the input frames, instead of the input frame itself (persistence). An untrained
model is then an extrapolation forecast, and the network learns a correction to it. There
are no weights here, and every op is a core TensorFlow op, so exported SavedModels serve it.

Motion (:func:`estimate_motion`) is block matching: for every integer shift ``d`` in
``[-max_shift, max_shift]^2`` the squared difference between frame ``t`` and frame ``t - 1``
moved by ``d`` is summed over the last frame pairs and averaged over overlapping blocks, plus
half its average over the whole frame (so a block without rain follows the frame's motion).
A block's motion is the soft-argmin of its costs (sub-pixel, and zero where the costs are
flat). The block field is resized bilinearly to one vector per pixel.

Advection (:func:`advect_frame`) is backward semi-Lagrangian: the new value at ``x`` is the
old frame's bilinear value at ``x - motion(x)``, coordinates clamped to the frame (its edge
values flow in, as persistence would keep them).
"""

from __future__ import annotations

import tensorflow as tf

MAX_SHIFT = 8  # pixels per step; 8 x 2 km per 10 min = 96 km/h in the radar recipe
BLOCK_SIZE = 32  # pixels per side of a matching block, blocks overlap by half
MOTION_PAIRS = 3  # the last frame pairs whose costs are summed
SHARPNESS = 30.0  # soft-argmin: weight exp(-SHARPNESS * normalised cost)
GLOBAL_WEIGHT = 0.5  # weight of the whole frame's cost in every block's cost


def shift_grid(max_shift: int) -> tf.Tensor:
    """``[(2S+1)^2, 2]`` float32 shifts (dy, dx) in the order of :func:`matching_costs`."""
    size = 2 * max_shift + 1
    offsets = max_shift - tf.range(size, dtype=tf.float32)  # window index i -> shift S - i
    dy, dx = tf.meshgrid(offsets, offsets, indexing="ij")
    return tf.reshape(tf.stack([dy, dx], axis=-1), [size * size, 2])


def matching_costs(previous: tf.Tensor, current: tf.Tensor, max_shift: int) -> tf.Tensor:
    """Squared difference of ``current(x)`` and ``previous(x - d)`` for every shift ``d``.

    Args:
      previous: ``[B, H, W, C]`` float32 frame at ``t - 1``.
      current: ``[B, H, W, C]`` float32 frame at ``t``.
      max_shift: the largest shift S in pixels, per axis.

    Returns:
      ``[B, H, W, (2S+1)^2]`` costs, summed over channels, shifts as :func:`shift_grid`.
    """
    size = 2 * max_shift + 1
    margin = [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]]
    padded = tf.pad(previous, margin)  # [B, H+2S, W+2S, C], zeros outside the frame
    windows = tf.image.extract_patches(padded, sizes=[1, size, size, 1], strides=[1, 1, 1, 1],
                                       rates=[1, 1, 1, 1], padding="VALID")  # [B, H, W, K*K*C]
    shape = tf.shape(current)
    windows = tf.reshape(windows, [shape[0], shape[1], shape[2], size * size, shape[3]])
    return tf.reduce_sum(tf.square(windows - current[:, :, :, None, :]), axis=-1)


def soft_argmin_shift(costs: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """``[..., 2]`` expected shift under ``softmax(-SHARPNESS * normalised cost)``.

    Costs are normalised per position to ``(cost - min) / (mean - min)``, so the weights do
    not depend on the rain's intensity, and equal costs (no structure) give shift zero.
    """
    lowest = tf.reduce_min(costs, axis=-1, keepdims=True)
    spread = tf.reduce_mean(costs, axis=-1, keepdims=True) - lowest
    normalised = (costs - lowest) / (spread + 1e-12)
    weights = tf.nn.softmax(-SHARPNESS * normalised, axis=-1)
    return tf.tensordot(weights, shifts, axes=[[-1], [0]])


def estimate_motion(frames: tf.Tensor, max_shift: int = MAX_SHIFT,
                    block_size: int = BLOCK_SIZE) -> tf.Tensor:
    """Motion in pixels per step of a sequence of input frames, one vector per pixel.

    Args:
      frames: ``[B, T, H, W, C]`` input frames (any float dtype); with ``T < 2`` the motion
        is zero.
      max_shift: the largest motion in pixels per step, per axis.
      block_size: side of the matching blocks in pixels (they overlap by half).

    Returns:
      ``[B, H, W, 2]`` float32 (dy, dx): content at ``x`` moves to ``x + motion`` per step.
    """
    frames = tf.stop_gradient(tf.cast(frames, tf.float32))
    time_steps = frames.shape[1]
    shape = tf.shape(frames)
    if time_steps is None or time_steps < 2:
        return tf.zeros([shape[0], shape[2], shape[3], 2], tf.float32)
    first = max(time_steps - 1 - MOTION_PAIRS, 0)
    costs = tf.add_n([matching_costs(frames[:, step], frames[:, step + 1], max_shift)
                      for step in range(first, time_steps - 1)])  # [B, H, W, K*K]
    stride = max(block_size // 2, 1)
    block_costs = tf.nn.avg_pool2d(costs, ksize=block_size, strides=stride,
                                   padding="SAME")  # [B, Hb, Wb, K*K]
    frame_costs = tf.reduce_mean(costs, axis=[1, 2], keepdims=True)  # [B, 1, 1, K*K]
    block_motion = soft_argmin_shift(block_costs + GLOBAL_WEIGHT * frame_costs,
                                     shift_grid(max_shift))  # [B, Hb, Wb, 2]
    return tf.image.resize(block_motion, [shape[2], shape[3]], method="bilinear")


def advect_frame(frame: tf.Tensor, motion: tf.Tensor) -> tf.Tensor:
    """One semi-Lagrangian step: ``frame`` sampled bilinearly at ``x - motion(x)``.

    Args:
      frame: ``[B, H, W, C]`` (any float dtype; the result has the same dtype).
      motion: ``[B, H, W, 2]`` float32 (dy, dx) pixels per step, as :func:`estimate_motion`.

    Returns:
      ``[B, H, W, C]`` the advected frame; differentiable with respect to ``frame``.
    """
    dtype = frame.dtype
    frame = tf.cast(frame, tf.float32)
    shape = tf.shape(frame)
    height, width = shape[1], shape[2]
    rows, columns = tf.meshgrid(tf.range(height, dtype=tf.float32),
                                tf.range(width, dtype=tf.float32), indexing="ij")  # [H, W]
    source_y = tf.clip_by_value(rows - motion[..., 0], 0.0, tf.cast(height - 1, tf.float32))
    source_x = tf.clip_by_value(columns - motion[..., 1], 0.0, tf.cast(width - 1, tf.float32))
    top, left = tf.floor(source_y), tf.floor(source_x)
    weight_y, weight_x = (source_y - top)[..., None], (source_x - left)[..., None]
    top, left = tf.cast(top, tf.int32), tf.cast(left, tf.int32)
    bottom, right = tf.minimum(top + 1, height - 1), tf.minimum(left + 1, width - 1)
    flat = tf.reshape(frame, [shape[0], height * width, shape[3]])  # [B, H*W, C]

    def sample(y, x):
        indices = tf.reshape(y * width + x, [shape[0], height * width])  # [B, H*W]
        return tf.reshape(tf.gather(flat, indices, batch_dims=1), shape)  # [B, H, W, C]

    upper = (1.0 - weight_x) * sample(top, left) + weight_x * sample(top, right)
    lower = (1.0 - weight_x) * sample(bottom, left) + weight_x * sample(bottom, right)
    return tf.cast((1.0 - weight_y) * upper + weight_y * lower, dtype)


def extrapolate_frames(input_frames: tf.Tensor, output_length: int) -> tf.Tensor:
    """The last input frame advected one step at a time along the inputs' motion.

    Args:
      input_frames: ``[B, T, H, W, C]`` frames (any float dtype).
      output_length: frames to forecast.

    Returns:
      ``[B, output_length, H, W, C]`` float32: step ``k`` is step ``k - 1`` advected once
      (:func:`advect_frame`), as the radar recipe's model moves its own previous frame.
    """
    frames = tf.cast(input_frames, tf.float32)
    motion = estimate_motion(frames)  # [B, H, W, 2]
    frame, forecast = frames[:, -1], []
    for _ in range(output_length):
        frame = advect_frame(frame, motion)
        forecast.append(frame)
    return tf.stack(forecast, axis=1)  # [B, T_out, H, W, C]
