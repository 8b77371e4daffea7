"""The radar output head: each frame is a prior frame plus the recurrent core's learned change.

Not in the paper or the official code: the radar recipe's ``--residual_frames`` and its
options. :class:`RadarHead` is composed around the paper's unroll
(:class:`~predrnn_tf.models.predrnn.PredRNN` with ``output_head=RadarHead(...)``): at every
step the core's output convolution gives a *change*, and the head turns it into the frame

    frame = prior + shaped change

- **prior**: the step's input frame (true or fed back): persistence; with ``advection_prior``
  that frame moved one step along the motion of the true input frames
  (:mod:`predrnn_tf.models.advection`): an extrapolation forecast.
- **shaped change** (:mod:`predrnn_tf.models.frame_change`): with ``dry_below`` the change is
  zero where the prior is dry; with ``zero_mean_change`` it has zero mean over the prior's wet
  pixels.

The head asks the core to start its output convolution at zero
(:attr:`RadarHead.output_kernel_initializer`), so an untrained model is its prior. The head
has no weights: it adds no variable and no checkpoint path to the model.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.models.advection import advect_frame, estimate_motion
from predrnn_tf.models.frame_change import shape_change
from predrnn_tf.models.patches import patch_frames, unpatch_frames
from predrnn_tf.units import DRY_BELOW_PIXEL


@keras.saving.register_keras_serializable(package="predrnn_tf")
class RadarHead(keras.layers.Layer):
    """Turns the core's patched change into the patched frame ``prior + shaped change``.

    Args:
      advection_prior: the prior is the step input advected along the inputs' motion
        (:meth:`input_motion`), not the step input itself.
      dry_below: 0 (the change acts everywhere) or the [0, 1] value below which a prior
        pixel is dry and keeps the prior's value.
      zero_mean_change: the change has zero mean over the prior's wet pixels.
      **kwargs: standard Keras layer arguments. ``autocast`` defaults to False: the motion
        stays float32 under a mixed precision policy.

    Raises:
      ValueError: for ``dry_below`` outside [0, 1), stating the received value.
    """

    # The core's output convolution starts at zero: an untrained model is its prior.
    output_kernel_initializer = "zeros"

    def __init__(self, advection_prior: bool = False, dry_below: float = 0.0,
                 zero_mean_change: bool = False, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if not 0.0 <= float(dry_below) < 1.0:
            raise ValueError(f"dry_below must be in [0, 1), received dry_below={dry_below}")
        self.advection_prior = bool(advection_prior)
        self.dry_below = float(dry_below)
        self.zero_mean_change = bool(zero_mean_change)

    def input_motion(self, input_frames: tf.Tensor) -> tf.Tensor | None:
        """The motion ``[B, H, W, 2]`` of ``[B, input_length, H, W, C]`` true frames, or None.

        None without ``advection_prior`` (the prior is then the step input itself).
        """
        if not self.advection_prior:
            return None
        return estimate_motion(input_frames)

    def prior(self, step_input: tf.Tensor, motion: tf.Tensor | None,
              patch_size: int) -> tf.Tensor:
        """The patched frame the change is added to: the step input, or it advected once."""
        if motion is None:
            return step_input  # [B, Hp, Wp, p*p*C]: persistence
        frame = unpatch_frames(step_input[:, None], patch_size)[:, 0]  # [B, H, W, C]
        advected = advect_frame(frame, motion)  # [B, H, W, C]
        return patch_frames(advected[:, None], patch_size)[:, 0]  # [B, Hp, Wp, p*p*C]

    def call(self, change, step_input, motion=None, patch_size: int = 1):
        """The frame of one step.

        Args:
          change: ``[B, Hp, Wp, p*p*C]`` the core's output convolution (patched).
          step_input: the step's input frame, the same shape (true or fed back).
          motion: :meth:`input_motion` of the true input frames, or None.
          patch_size: the core's space-to-depth factor p.

        Returns:
          ``[B, Hp, Wp, p*p*C]`` the prior plus the shaped change, in ``change``'s dtype.
        """
        prior = self.prior(step_input, motion, patch_size)
        return shape_change(change, prior, self.dry_below, self.zero_mean_change) + prior

    def compute_output_shape(self, change_shape, *args, **kwargs):
        return change_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"advection_prior": self.advection_prior, "dry_below": self.dry_below,
                       "zero_mean_change": self.zero_mean_change})
        return config


def radar_head_from_config(config: Config) -> RadarHead | None:
    """The head that ``config``'s radar flags ask for, or None (the paper's output).

    ``--residual_frames`` makes the head; ``--advection_prior``, ``--keep_dry_pixels``
    (dry below :data:`predrnn_tf.units.DRY_BELOW_PIXEL`) and ``--zero_mean_change`` set it.
    """
    if not config.residual_frames:
        return None
    return RadarHead(advection_prior=config.advection_prior,
                     dry_below=DRY_BELOW_PIXEL / 255.0 if config.keep_dry_pixels else 0.0,
                     zero_mean_change=config.zero_mean_change, name="radar_head")
