"""The accepted input of every model: the one check of frames, masks and ``output_length``.

What the models accept (``forecast``, and through it ``predict``, ``evaluate`` and serving):

- **frames** ``[B, input_length, H, W, C]``: rank 5, ``B >= 1``, ``C == img_channel``,
  ``H`` and ``W`` multiples of ``patch_size``.
- **dtype and range**: float16, bfloat16, float32 or float64 in [0, 1] (pixel / 255 of the
  stored uint8 frames). uint8 frames are unambiguous (0..255) and are divided by 255.
  Floats above 1 (e.g. 0-255 floats), negative values and any other dtype are refused:
  the message says how to scale.
- **no data**: NaN or infinity is refused (one bad pixel would spoil the whole forecast).
  Replace no-data pixels by 0 ("no echo", the converters' rule) before forecasting;
  :func:`predrnn_tf.load_frames` does this for files in physical units.
- **output_length**: None (as trained) or a positive int.
- **mask** (``model(frames, mask)``): ``[B, M]`` with the model's ``mask_length`` M and
  values in {0, 1}; the official code's 5-D mask ``[B, M, H, W, C]`` is accepted when it is
  constant over each frame (reduced to ``[B, M]``) and refused otherwise.

Values are checked only when running eagerly; inside ``tf.function`` only the static shape
is checked (the exported signatures check values with graph-side assertions). Every refusal
is a one-line :class:`~predrnn_tf.errors.InputError`.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from predrnn_tf.errors import InputError

FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def check_output_length(output_length, trained_length: int) -> int:
    """``output_length`` as an int: None means ``trained_length``; 0, negatives, floats refused."""
    if output_length is None:
        return int(trained_length)
    if isinstance(output_length, bool) or not isinstance(output_length, numbers.Integral):
        raise InputError(f"output_length must be a positive int or None (as trained: "
                         f"{trained_length}), received {output_length!r}")
    if output_length < 1:
        raise InputError(f"output_length must be >= 1 (None = as trained: {trained_length}), "
                         f"received output_length={output_length}")
    return int(output_length)


def _as_tensor(value, name: str) -> tf.Tensor:
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        return tf.convert_to_tensor(value)
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InputError(f"{name} must be a numeric array, received dtype {array.dtype}")
    return tf.convert_to_tensor(array)


def _is_eager(tensor: tf.Tensor) -> bool:
    """Whether the tensor's values can be read now (not inside a tf.function trace)."""
    return tf.executing_eagerly() and hasattr(tensor, "numpy")


def check_frame_shape(shape, input_length: int | None, img_channel: int, patch_size: int,
                      name: str = "frames") -> None:
    """Static checks of ``[B, input_length, H, W, C]`` (None dimensions are skipped)."""
    shape = tuple(shape)
    expected = (f"[batch, {input_length if input_length is not None else 'T'}, H, W, "
                f"{img_channel}] with H and W multiples of patch_size={patch_size}")
    if len(shape) != 5:
        hint = " (add the batch axis: frames[None])" if len(shape) == 4 else ""
        raise InputError(f"{name} must be {expected}, received rank {len(shape)} shape "
                         f"{shape}{hint}")
    batch, length, height, width, channels = shape
    problems = []
    if batch == 0:
        problems.append("batch 0")
    if input_length is not None and length is not None and length != input_length:
        problems.append(f"{length} frames, the model takes {input_length}")
    if channels is not None and channels != img_channel:
        problems.append(f"{channels} channels, the model has {img_channel}")
    for label, size in (("H", height), ("W", width)):
        if size is not None and (size == 0 or size % patch_size):
            problems.append(f"{label}={size} is not a positive multiple of {patch_size}")
    if problems:
        raise InputError(f"{name} must be {expected}, received shape {shape}: "
                         f"{'; '.join(problems)}")


def check_frame_values(frames: tf.Tensor, name: str = "frames") -> tf.Tensor:
    """Eager dtype/range/finiteness check; returns float32 frames in [0, 1]."""
    dtype = frames.dtype
    if dtype == tf.uint8:
        return tf.cast(frames, tf.float32) / 255.0
    if dtype not in FLOAT_DTYPES:
        raise InputError(f"{name} must be float in [0, 1] or uint8 in 0..255, received dtype "
                         f"{dtype.name} (convert with frames.astype('float32') / scale)")
    values = tf.cast(frames, tf.float32)
    if not _is_eager(values) or tf.size(values) == 0:
        return values
    finite = tf.math.is_finite(values)
    if not bool(tf.reduce_all(finite)):
        count = int(tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int64)))
        raise InputError(f"{name} hold {count} NaN or infinite values: replace no-data pixels "
                         f"by 0 (no echo) before forecasting")
    low, high = float(tf.reduce_min(values)), float(tf.reduce_max(values))
    if high > 1.0:
        hint = " (0-255 values? divide by 255)" if high <= 255.0 else ""
        raise InputError(f"{name} must be in [0, 1], received values in [{low:g}, {high:g}]"
                         f"{hint}")
    if low < 0.0:
        raise InputError(f"{name} must be in [0, 1], received values in [{low:g}, {high:g}]")
    return values


def check_frames(frames, input_length: int | None, img_channel: int, patch_size: int,
                 name: str = "frames") -> tf.Tensor:
    """The accepted input (module docstring): float32 ``[B, T, H, W, C]`` in [0, 1].

    Args:
      frames: array or tensor of frames.
      input_length: the number of frames the caller needs, or None for any.
      img_channel: the model's channels.
      patch_size: the model's patch size.
      name: the argument's name in messages.

    Raises:
      InputError: one line naming the shape, dtype or range problem.
    """
    tensor = _as_tensor(frames, name)
    check_frame_shape(tensor.shape, input_length, img_channel, patch_size, name)
    return check_frame_values(tensor, name)


def check_model_frames(model, frames, name: str = "input_frames") -> tf.Tensor:
    """:func:`check_frames` with the model's ``input_length``, channels and patch size."""
    return check_frames(frames, model.input_length, model.img_channel, model.patch_size, name)


def check_mask(mask, batch_size, mask_length: int, name: str = "mask") -> tf.Tensor:
    """The accepted mask: float32 ``[B, M]`` of 0/1 (5-D official masks reduced per frame).

    Args:
      mask: ``[B, M]`` or the official ``[B, M, H, W, C]``.
      batch_size: the frames' batch size (int, or None when unknown).
      mask_length: the model's ``mask_length``.
      name: the argument's name in messages.
    """
    tensor = tf.cast(_as_tensor(mask, name), tf.float32)
    shape = tuple(tensor.shape)
    if len(shape) not in (2, 5):
        raise InputError(f"{name} must be [batch, {mask_length}] (or the official "
                         f"[batch, {mask_length}, H, W, C]), received shape {shape}")
    if shape[1] is not None and shape[1] != mask_length:
        raise InputError(f"{name} must have {mask_length} entries per sample (the model's "
                         f"mask_length), received shape {shape}")
    if batch_size is not None and shape[0] is not None and shape[0] != batch_size:
        raise InputError(f"{name} has batch {shape[0]} but the frames have batch {batch_size}")
    eager = _is_eager(tensor)
    if len(shape) == 5:
        per_frame = tensor[:, :, 0, 0, 0]  # [B, M]
        if eager and tf.size(tensor) and not bool(tf.reduce_all(
                tf.equal(tensor, per_frame[:, :, None, None, None]))):
            raise InputError(f"{name} of shape {shape} varies within a frame; only masks "
                             f"constant over each frame are supported (give [batch, "
                             f"{mask_length}])")
        tensor = per_frame
    if eager and tf.size(tensor) and not bool(tf.reduce_all(
            tf.logical_or(tf.equal(tensor, 0.0), tf.equal(tensor, 1.0)))):
        raise InputError(f"{name} values must be 0 or 1, received values in "
                         f"[{float(tf.reduce_min(tensor)):g}, {float(tf.reduce_max(tensor)):g}]")
    return tensor
