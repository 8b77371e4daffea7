"""Forecasting: the one unroll-from-inputs and the one compiled, clipped forecast.

Every model's ``forecast`` method is :func:`unroll_forecast`; training's test pass,
``evaluate``, ``predict`` and the exported serving signature all forecast through
:func:`clipped_forecast`, so they give the same numbers on the same checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from predrnn_tf.masks import forecast_mask


def unroll_forecast(model, input_frames, output_length: int | None = None) -> tf.Tensor:
    """Forecasts ``output_length`` frames (default: as trained) from true input frames.

    Args:
      model: a PredRNN-family or MIM model (``input_length``, ``total_length``,
        ``reverse_scheduled_sampling`` and ``call(frames, mask)``).
      input_frames: ``[B, input_length, H, W, C]`` in [0, 1].
      output_length: frames to forecast; may exceed the trained horizon.

    Returns:
      ``[B, output_length, H, W, C]`` float32 (not clipped).
    """
    output_length = output_length or (model.total_length - model.input_length)
    total = model.input_length + output_length
    if input_frames.shape[1] != model.input_length:
        raise ValueError(f"forecast needs {model.input_length} input frames, "
                         f"received shape {tuple(input_frames.shape)}")
    frames = tf.cast(input_frames, tf.float32)
    padding = tf.zeros_like(frames[:, :1])
    frames = tf.concat([frames] + [padding] * output_length, axis=1)  # [B, total, H, W, C]
    mask = forecast_mask(tf.shape(frames)[0], model.reverse_scheduled_sampling,
                         model.input_length, total)
    predictions, _ = model(frames, mask, training=False)
    return predictions[:, model.input_length - 1:]


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
