"""The sampling-mask layout, re-exported for callers that import it from the models.

The owner is :mod:`predrnn_tf.masks` (a pure module that the training schedules also use).
"""

from predrnn_tf.masks import encoder_entries, forecast_mask, mask_index, mask_length

__all__ = ["encoder_entries", "forecast_mask", "mask_index", "mask_length"]
