"""Builds a model (PredRNN family or MIM) from a Config, under the configured precision policy.

The one door callers use; which class makes which ``--model_name`` is the registry
(:func:`predrnn_tf.models.registry.get_model`).
"""

from __future__ import annotations

import keras

from predrnn_tf.config import PRECISIONS, Config, validate_config
from predrnn_tf.errors import ConfigError
from predrnn_tf.models.registry import get_model


def build_model(config: Config, precision: str | None = None) -> keras.Model:
    """Creates the model of ``config`` with all weights built (nothing is computed).

    Args:
      config: the run configuration.
      precision: overrides ``config.precision`` (``float32``, ``mixed_float16`` or
        ``mixed_bfloat16``): layers compute in that dtype, variables stay float32.

    Returns:
      A built :class:`PredRNN` or :class:`MIM`.
    """
    validate_config(config)  # a one-line ConfigError instead of a deep Keras/numpy error
    if precision is not None and precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    policy = precision or config.precision
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = get_model(config.model_name)(config)
    finally:
        keras.config.set_dtype_policy(previous)
    model.build((None, config.total_length, config.img_width, config.img_width,
                 config.img_channel))
    return model
