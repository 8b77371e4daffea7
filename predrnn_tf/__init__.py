"""predrnn_tf: PredRNN-V2 and its baselines in TensorFlow 2 / Keras 3.

Public API (imported lazily, so ``import predrnn_tf`` does not load TensorFlow)::

    import predrnn_tf
    config = predrnn_tf.Config(model_name="predrnn_v2", img_width=64)
    model = predrnn_tf.build_model(config)
    model, config = predrnn_tf.restore("runs/quickstart")
    future = predrnn_tf.forecast(model, input_frames)  # [B, input_length, H, W, C] in [0, 1]
    past = predrnn_tf.load_frames("past.npy", value_mapping)  # .npy / PNG folder -> [0, 1]
    summary = predrnn_tf.predict_files(predrnn_tf.PredictOptions(
        input="past.npy", output_dir="forecast", workdir="runs/quickstart"))

Bad input (wrong rank, dtype, range, NaN, output_length) raises :class:`InputError` in one
line; the accepted input is described in :mod:`predrnn_tf.models.inputs`.
"""

from __future__ import annotations

import importlib

from predrnn_tf.config import Config, validate_config
from predrnn_tf.errors import ConfigError, DataError, InputError, PredRNNError

_LAZY = {
    "build_model": "predrnn_tf.models.builder",
    "PredRNN": "predrnn_tf.models.predrnn",
    "restore": "predrnn_tf.workdir",
    "train_and_evaluate": "predrnn_tf.training.loop",
    "load_frames": "predrnn_tf.inference.frames",
    "RadarArchive": "predrnn_tf.inference.frames",
    "PredictOptions": "predrnn_tf.inference.predict",
    "predict_files": "predrnn_tf.inference.predict",
    "write_forecast": "predrnn_tf.inference.outputs",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'predrnn_tf' has no attribute {name!r}")


def forecast(model, input_frames, output_length: int | None = None):
    """Forecasts ``[B, output_length, H, W, C]`` from ``[B, input_length, H, W, C]`` frames.

    ``input_frames`` float in [0, 1] or uint8; ``output_length`` a positive int or None (as
    trained). Raises InputError (one line) for anything else.
    """
    return model.forecast(input_frames, output_length)


__all__ = ["Config", "ConfigError", "DataError", "InputError", "PredRNN", "PredRNNError",
           "PredictOptions", "RadarArchive", "build_model", "forecast", "load_frames",
           "predict_files", "restore", "train_and_evaluate", "validate_config", "write_forecast"]
__version__ = "0.2.0"
