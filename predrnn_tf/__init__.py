"""predrnn_tf: PredRNN-V2 and its baselines in TensorFlow 2 / Keras 3.

Public API::

    import predrnn_tf
    config = predrnn_tf.Config(model_name="predrnn_v2", img_width=64)
    model = predrnn_tf.build_model(config)
    model, config = predrnn_tf.restore("workdirs/run1")
    forecast = model.forecast(input_frames)   # [B, input_length, H, W, C] -> [B, out, H, W, C]
"""

from predrnn_tf.checkpoints import restore
from predrnn_tf.config import Config, ConfigError, validate_config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN


def forecast(model: PredRNN, input_frames, output_length: int | None = None):
    """Functional form of :meth:`PredRNN.forecast`."""
    return model.forecast(input_frames, output_length)


__all__ = ["Config", "ConfigError", "PredRNN", "build_model", "forecast", "restore",
           "validate_config"]
__version__ = "0.1.0"
