"""Models: the stacked unroll, its presets, patches, losses, the mask layout, forecasting.

May import config, errors, units and layers; never data, training, evaluation, serving,
cli/ or absl.
"""

from predrnn_tf.models.masks import forecast_mask, mask_length
from predrnn_tf.models.predrnn import PredRNN

__all__ = ["PredRNN", "forecast_mask", "mask_length"]
