"""predrnn_tf: PredRNN-V2 and its baselines in TensorFlow 2 / Keras 3.

Public API (imported lazily, so ``import predrnn_tf`` does not load TensorFlow)::

    import predrnn_tf
    config = predrnn_tf.Config(model_name="predrnn_v2", img_width=64)
    model = predrnn_tf.build_model(config)
    model, config = predrnn_tf.restore("runs/quickstart")
    future = predrnn_tf.forecast(model, input_frames)  # [B, input_length, H, W, C] in [0, 1]
"""

from __future__ import annotations

import importlib

from predrnn_tf.config import Config, validate_config
from predrnn_tf.errors import ConfigError, DataError

_LAZY = {
    "build_model": "predrnn_tf.models.builder",
    "PredRNN": "predrnn_tf.models.predrnn",
    "restore": "predrnn_tf.checkpoints",
    "train_and_evaluate": "predrnn_tf.training.loop",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'predrnn_tf' has no attribute {name!r}")


def forecast(model, input_frames, output_length: int | None = None):
    """Forecasts ``[B, output_length, H, W, C]`` from ``[B, input_length, H, W, C]`` frames."""
    return model.forecast(input_frames, output_length)


__all__ = ["Config", "ConfigError", "DataError", "PredRNN", "build_model", "forecast", "restore",
           "train_and_evaluate", "validate_config"]
__version__ = "0.1.0"
