"""Models: the stacked unroll and its presets."""

from predrnn_tf.models.predrnn import PredRNN, forecast_mask, mask_length

__all__ = ["PredRNN", "forecast_mask", "mask_length"]
