"""Sampling schedules (pure functions of the iteration) and the Bernoulli input masks.

The schedule is computed outside the model and passed in as a mask tensor: one 0/1 value
per (sample, step), 1 meaning "feed the true frame", 0 "feed the model's own prediction".
The layout of that mask (which entry governs which step) is :mod:`predrnn_tf.masks`, a pure
module: schedules import neither the models nor the layers.
"""

from __future__ import annotations

import math

import tensorflow as tf

from predrnn_tf import masks
from predrnn_tf.config import Config


def scheduled_sampling_eta(iteration: int, start_value: float = 1.0,
                           changing_rate: float = 2e-5, stop_iter: int = 50000) -> float:
    """Scheduled sampling (PredRNN v1): probability of the true frame in the decoder.

    Starts at ``start_value`` and falls by ``changing_rate`` per iteration until
    ``stop_iter``; 0 from then on (and never below 0).
    """
    if iteration >= stop_iter:
        return 0.0
    return max(0.0, start_value - changing_rate * iteration)


def _encoder_progress(iteration: int, step_1: int, step_2: int, alpha: float, curve: str) -> float:
    """How far the encoder curve has risen, in [0, 1], between ``step_1`` and ``step_2``."""
    elapsed = iteration - step_1
    if curve == "exponential":
        return 1.0 - math.exp(-elapsed / alpha)
    if curve == "linear":
        return elapsed / (step_2 - step_1)
    if curve == "sigmoid":
        midpoint = 0.5 * (step_2 - step_1)
        return 1.0 / (1.0 + math.exp(-(elapsed - midpoint) / alpha))
    raise ValueError(f"curve must be exponential, linear or sigmoid, received {curve!r}")


def reverse_sampling_probabilities(iteration: int, step_1: int = 25000, step_2: int = 50000,
                                   alpha: float = 2500.0, curve: str = "exponential",
                                   strategy: int = 2) -> tuple[float, float]:
    """Reverse scheduled sampling (PredRNN-V2): (encoder r_eta, decoder eta).

    Strategy 2 (the official code's, default): the encoder's probability of the true frame
    is 0.5 before ``step_1``, rises along ``curve`` (exponential:
    ``1 - 0.5*exp(-(k - step_1)/alpha)``) and is 1.0 from ``step_2``; the decoder's is 0.5
    before ``step_1``, falls linearly to 0 at ``step_2``, and is 0 after. Strategy 1: the
    encoder rises from 0 and the decoder falls from 1, with the same curves.

    Args:
      iteration: the training iteration k.
      step_1, step_2: ``r_sampling_step_1`` and ``r_sampling_step_2``.
      alpha: ``r_exp_alpha``, the time constant of the exponential and sigmoid curves.
      curve: encoder curve: ``exponential``, ``linear`` or ``sigmoid``.
      strategy: 1 or 2, see above.
    """
    encoder_start, decoder_start = (0.5, 0.5) if strategy == 2 else (0.0, 1.0)
    if iteration < step_1:
        return encoder_start, decoder_start
    if iteration >= step_2:
        return 1.0, 0.0
    progress = _encoder_progress(iteration, step_1, step_2, alpha, curve)
    encoder = encoder_start + (1.0 - encoder_start) * progress
    decoder = decoder_start * (1.0 - (iteration - step_1) / (step_2 - step_1))
    return encoder, decoder


def sampling_probabilities(config: Config, iteration: int) -> tuple[float, float]:
    """(encoder, decoder) probabilities of a true frame at ``iteration`` for ``config``.

    Without reverse scheduled sampling the encoder always reads true frames (1.0); without
    scheduled sampling either, the decoder always reads its own predictions (0.0).
    """
    if config.reverse_scheduled_sampling:
        return reverse_sampling_probabilities(
            iteration, config.r_sampling_step_1, config.r_sampling_step_2, config.r_exp_alpha,
            config.r_sampling_curve, config.r_sampling_strategy)
    if config.scheduled_sampling:
        return 1.0, scheduled_sampling_eta(iteration, config.sampling_start_value,
                                           config.sampling_changing_rate,
                                           config.sampling_stop_iter)
    return 1.0, 0.0


def draw_mask(generator: tf.random.Generator, batch_size: int, encoder_probability,
              decoder_probability, config: Config) -> tf.Tensor:
    """Bernoulli mask ``[B, M]`` for one iteration (graph-safe; probabilities may be tensors).

    With reverse scheduled sampling the first ``input_length - 1`` entries are encoder steps
    (probability ``encoder_probability``) and the rest decoder steps; otherwise every entry
    is a decoder step.
    """
    length = masks.mask_length(config.reverse_scheduled_sampling, config.input_length,
                         config.total_length)
    encoder_steps = masks.encoder_entries(config.reverse_scheduled_sampling, config.input_length)
    uniform = generator.uniform([batch_size, length], dtype=tf.float32)
    steps = tf.range(length)
    threshold = tf.where(steps < encoder_steps,
                         tf.cast(encoder_probability, tf.float32),
                         tf.cast(decoder_probability, tf.float32))  # [M]
    return tf.cast(uniform < threshold[None, :], tf.float32)


def forecast_mask(config: Config, batch_size, total_length: int | None = None) -> tf.Tensor:
    """Test-time mask: 1 for the input part, 0 after (a fully autoregressive forecast)."""
    return masks.forecast_mask(batch_size, config.reverse_scheduled_sampling, config.input_length,
                          total_length or config.total_length)
