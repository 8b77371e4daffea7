"""Models: the stacked unroll, its registry, the radar head, patches, losses, forecasting.

``get_model(name)`` (:mod:`predrnn_tf.models.registry`) is the door from a model name to
its factory; ``build_model`` (:mod:`predrnn_tf.models.builder`) is the door callers use.
The mask layout is :mod:`predrnn_tf.masks` (re-exported here).

May import config, errors, units, masks and layers; never data, training, evaluation,
serving, cli/ or absl.
"""

from predrnn_tf.masks import forecast_mask, mask_length
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.models.registry import get_model, model_names

# Names, and the public modules tools import (``builder``, ``ensemble``, ``forecasting``).
__all__ = ["PredRNN", "builder", "ensemble", "forecast_mask", "forecasting", "get_model",
           "mask_length", "model_names", "probability_matching"]
