"""What every recurrent model here shares: arguments, mask mixing, forecast and config.

:class:`RecurrentModel` is the base of :class:`~predrnn_tf.models.predrnn.PredRNN` and
:class:`~predrnn_tf.models.mim.MIM`. It owns the arguments both take, the input side of the
unroll (patching, the mask check, the step input mixed from the truth and the model's own
prediction), the output side (unpatching, the decoupling loss as a batch mean), the one
``forecast`` and the one ``get_config``. A subclass builds its cells and writes the step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from predrnn_tf.masks import mask_index, mask_length
from predrnn_tf.models.forecasting import unroll_forecast
from predrnn_tf.models.inputs import check_mask, check_model_frames, check_output_length
from predrnn_tf.models.patches import patch_frames, unpatch_frames


def check_lengths(input_length: int, total_length: int) -> None:
    """Raises a ValueError stating the received values unless ``1 <= input < total``."""
    if not 1 <= input_length < total_length:
        raise ValueError(f"need 1 <= input_length < total_length, received "
                         f"input_length={input_length}, total_length={total_length}")


class RecurrentModel(keras.Model):
    """A stack of recurrent cells unrolled over ``[B, T, H, W, C]`` frames with sampled inputs.

    Args:
      num_hidden: hidden channels per layer.
      filter_size: kernel size of the cells.
      patch_size: space-to-depth factor p.
      img_channel: channels of the image frames.
      input_length: frames given before the forecast starts.
      total_length: frames per training sequence.
      layer_norm: layer normalisation inside the cells.
      reverse_scheduled_sampling: mask layout (:mod:`predrnn_tf.masks`).
      **kwargs: standard Keras model arguments.
    """

    # The constructor arguments that get_config writes; a subclass adds its own.
    CONFIG_FIELDS: ClassVar[tuple[str, ...]] = (
        "num_hidden", "filter_size", "patch_size", "img_channel", "input_length",
        "total_length", "layer_norm", "reverse_scheduled_sampling")

    def __init__(self, num_hidden=(128, 128, 128, 128), filter_size: int = 5,
                 patch_size: int = 4, img_channel: int = 1, input_length: int = 10,
                 total_length: int = 20, layer_norm: bool = False,
                 reverse_scheduled_sampling: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_hidden = tuple(int(size) for size in num_hidden)
        self.filter_size = filter_size
        self.patch_size = patch_size
        self.img_channel = img_channel
        self.input_length = input_length
        self.total_length = total_length
        self.layer_norm = layer_norm
        self.reverse_scheduled_sampling = reverse_scheduled_sampling
        self.num_layers = len(self.num_hidden)

    @property
    def mask_length(self) -> int:
        """Mask entries per sample for a training sequence of ``total_length`` frames."""
        return mask_length(self.reverse_scheduled_sampling, self.input_length, self.total_length)

    def _track_cells(self, cells) -> None:
        """Makes each cell an attribute named after it, so ``tf.train.Checkpoint`` sees it.

        (tf.train.Checkpoint does not follow Keras 3 lists.) The attribute names are the
        checkpoints' object paths (``model/cell_0/...``): they must not change.
        """
        for cell in cells:
            setattr(self, cell.name, cell)

    def _prepare_inputs(self, frames, mask):
        """``(patches [B, T, Hp, Wp, p*p*C], mask [B, M, 1, 1, 1])`` in the compute dtype."""
        time_steps = frames.shape[1]
        if time_steps is None:
            raise ValueError("frames must have a static time dimension, received None")
        dtype = self.compute_dtype
        patches = patch_frames(tf.cast(frames, dtype), self.patch_size)  # [B, T, Hp, Wp, p*p*C]
        mask = check_mask(mask, frames.shape[0], mask_length(
            self.reverse_scheduled_sampling, self.input_length, time_steps))  # [B, M]
        return patches, tf.cast(mask, dtype)[:, :, None, None, None]  # [B, M, 1, 1, 1]

    def _step_input(self, patches, mask, generated, step: int):
        """The frame step ``step`` reads: the truth, or its mask-weighted mix with ``generated``."""
        true_frame = patches[:, step]
        index = mask_index(step, self.reverse_scheduled_sampling, self.input_length)
        if generated is None or index is None:
            return true_frame
        with tf.name_scope("mask_mixing"):
            weight = mask[:, index]
            return weight * true_frame + (1.0 - weight) * generated

    def _finish(self, predictions, cosines):
        """``(predictions [B, T-1, H, W, C] float32, decoupling loss: a float32 scalar)``.

        Args:
          predictions: the per-step patched frames, each ``[B, Hp, Wp, p*p*C]``.
          cosines: the per-step, per-layer ``[B]`` decoupling cosines (may be empty: 0).
        """
        predictions = tf.stack(predictions, axis=1)  # [B, T-1, Hp, Wp, p*p*C]
        predictions = tf.cast(unpatch_frames(predictions, self.patch_size), tf.float32)
        if cosines:
            decouple_loss = tf.reduce_mean(tf.stack(cosines, axis=0))  # mean of [steps*L, B]
        else:
            decouple_loss = tf.zeros([], tf.float32)
        return predictions, decouple_loss

    def forecast(self, input_frames, output_length: int | None = None):
        """Forecasts ``output_length`` frames from ``[B, input_length, H, W, C]`` inputs.

        All inputs are true frames; every later step reads the model's own prediction.

        Args:
          input_frames: ``[B, input_length, H, W, C]`` float in [0, 1] or uint8 0..255
            (the accepted input: :mod:`predrnn_tf.models.inputs`).
          output_length: frames to forecast, a positive int; None = as trained.

        Returns:
          ``[B, output_length, H, W, C]`` float32 (not clipped).

        Raises:
          InputError: one line, for a wrong rank, shape, dtype, range, NaN or length.
        """
        output_length = check_output_length(output_length, self.total_length - self.input_length)
        return unroll_forecast(self, check_model_frames(self, input_frames), output_length)

    def get_config(self) -> dict[str, Any]:
        """The Keras config: the base config plus every name in :attr:`CONFIG_FIELDS`."""
        config = super().get_config()
        for field in self.CONFIG_FIELDS:
            value = getattr(self, field)
            config[field] = list(value) if isinstance(value, tuple) else value
        return config
