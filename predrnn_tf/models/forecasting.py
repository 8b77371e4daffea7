"""The one compiled forecast: ``[B, input_length, H, W, C]`` -> clipped float32 forecast.

Training's test pass, ``evaluate``, ``predict`` and the exported serving signature all
forecast through :func:`clipped_forecast`, so they give the same numbers on the same
checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


def clipped_forecast(model, frames: tf.Tensor, output_length: int | None = None) -> tf.Tensor:
    """Forecasts ``output_length`` frames (default: as trained) in float32, clipped to [0, 1].

    Graph-safe: usable inside ``tf.function`` bodies such as a serving signature.
    """
    predictions = model.forecast(frames, output_length)
    return tf.clip_by_value(tf.cast(predictions, tf.float32), 0.0, 1.0)


def make_forecast_function(model, output_length: int | None = None
                           ) -> Callable[[tf.Tensor], tf.Tensor]:
    """``tf.function`` of :func:`clipped_forecast`, traced once per input shape."""
    return tf.function(lambda frames: clipped_forecast(model, frames, output_length),
                       reduce_retracing=True)
