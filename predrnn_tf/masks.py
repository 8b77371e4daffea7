"""The sampling-mask layout: the one owner of how a mask ``[B, M]`` lines up with time steps.

A pure module (TensorFlow only, no other predrnn_tf import): the models read masks through it
and the training schedules draw them through it, so schedules need not import the models.

Step ``t`` of the unroll (``t = 1 .. T - 1``) reads the true frame ``x_t`` where the mask is
1 and the model's own previous prediction where it is 0. With reverse scheduled sampling
(``M = T - 2``) entry ``t - 1`` governs step ``t``: the first ``input_length - 1`` entries
are encoder steps and the rest decoder steps. Without it (``M = T - input_length - 1``)
only decoder steps ``t > input_length`` have an entry; encoder steps always read the truth.
The official code's 5-D masks ``[B, M, H, W, C]`` hold the same value over each frame.
"""

from __future__ import annotations

import tensorflow as tf


def mask_length(reverse_scheduled_sampling: bool, input_length: int, total_length: int) -> int:
    """Mask entries per sample: ``T - 2`` (reverse) or ``T - input_length - 1``."""
    if reverse_scheduled_sampling:
        return total_length - 2
    return total_length - input_length - 1


def encoder_entries(reverse_scheduled_sampling: bool, input_length: int) -> int:
    """How many leading mask entries are encoder steps (0 without reverse sampling)."""
    return input_length - 1 if reverse_scheduled_sampling else 0


def forecast_mask(batch_size, reverse_scheduled_sampling: bool, input_length: int,
                  total_length: int) -> tf.Tensor:
    """The test-time mask: true frames for the input part, predictions after it."""
    length = mask_length(reverse_scheduled_sampling, input_length, total_length)
    true_steps = encoder_entries(reverse_scheduled_sampling, input_length)
    row = tf.constant([1.0] * true_steps + [0.0] * (length - true_steps), tf.float32)
    return tf.tile(row[None, :], [batch_size, 1])  # [B, length]


def mask_index(step: int, reverse_scheduled_sampling: bool, input_length: int) -> int | None:
    """The mask entry that governs unroll step ``step`` (1 .. T-1), or None: always the truth."""
    index = step - 1 if reverse_scheduled_sampling else step - input_length
    return index if index >= 0 else None
