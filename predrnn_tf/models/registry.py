"""The model registry: ``get_model(name)`` gives the factory that makes model ``name``.

As pysteps' ``get_method``: one door from a model name (``--model_name``) to the code that
makes it. A factory takes the run's :class:`~predrnn_tf.config.Config` and returns the
unbuilt Keras model; :func:`predrnn_tf.models.builder.build_model` (the door callers use)
sets the precision policy around it and builds the weights.

The PredRNN family (:data:`predrnn_tf.models.predrnn.VARIANTS`) gets the radar output head
when the config asks for residual frames
(:func:`~predrnn_tf.models.radar_head.radar_head_from_config`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from predrnn_tf.config import Config
from predrnn_tf.errors import ConfigError
from predrnn_tf.models.mim import MIM
from predrnn_tf.models.predrnn import VARIANTS, PredRNN
from predrnn_tf.models.radar_head import radar_head_from_config

ModelFactory = Callable[[Config], keras.Model]


def _common_arguments(config: Config) -> dict[str, Any]:
    """The constructor arguments every model takes, from ``config``."""
    return dict(
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


def make_predrnn(config: Config) -> PredRNN:
    """The PredRNN-family model of ``config`` (variant ``config.model_name``), unbuilt."""
    return PredRNN(
        model_name=config.model_name,
        memory_bottom_up=config.memory_bottom_up,
        memory_top_down=config.memory_top_down,
        conv_lstm_peephole=config.conv_lstm_peephole,
        remat=config.remat,
        output_head=radar_head_from_config(config),
        **_common_arguments(config),
    )


def make_mim(config: Config) -> MIM:
    """The MIM model of ``config`` (decoupling adapter if ``decouple_beta > 0``), unbuilt."""
    return MIM(decouple=config.decouple_beta > 0, **_common_arguments(config))


MODELS: dict[str, ModelFactory] = {
    **{name: make_predrnn for name in VARIANTS},
    "mim": make_mim,
}


def model_names() -> tuple[str, ...]:
    """The registered model names, sorted."""
    return tuple(sorted(MODELS))


def get_model(name: str) -> ModelFactory:
    """The factory ``(config) -> unbuilt keras.Model`` registered as ``name``.

    Raises:
      ConfigError: one line naming ``name`` and the known names.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model name {name!r}; known: {', '.join(model_names())}")
    return MODELS[name]
