"""Builds a model (PredRNN family or MIM) from a Config, under the configured precision policy."""

from __future__ import annotations

import keras

from predrnn_tf.config import PRECISIONS, Config, validate_config
from predrnn_tf.errors import ConfigError
from predrnn_tf.models.mim import MIM
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.units import DRY_BELOW_PIXEL


def _make_model(config: Config) -> keras.Model:
    common = dict(
        num_hidden=config.num_hidden,
        filter_size=config.filter_size,
        patch_size=config.patch_size,
        img_channel=config.img_channel,
        input_length=config.input_length,
        total_length=config.total_length,
        layer_norm=config.layer_norm,
        reverse_scheduled_sampling=config.reverse_scheduled_sampling,
        name=config.model_name,
    )
    if config.model_name == "mim":
        return MIM(decouple=config.decouple_beta > 0, **common)
    return PredRNN(
        model_name=config.model_name,
        memory_bottom_up=config.memory_bottom_up,
        memory_top_down=config.memory_top_down,
        conv_lstm_peephole=config.conv_lstm_peephole,
        remat=config.remat,
        residual_frames=config.residual_frames,
        advection_prior=config.advection_prior,
        dry_below=DRY_BELOW_PIXEL / 255.0 if config.keep_dry_pixels else 0.0,
        zero_mean_change=config.zero_mean_change,
        **common,
    )


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
        model = _make_model(config)
    finally:
        keras.config.set_dtype_policy(previous)
    model.build((None, config.total_length, config.img_width, config.img_width,
                 config.img_channel))
    return model
