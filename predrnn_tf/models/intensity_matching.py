"""Probability matching of forecast intensities to the last observed frame (a pure function).

A forecast trained on a squared error smooths: its light rain spreads out and its peaks fall
below thresholds such as 1 mm/h, which costs it CSI. pysteps' S-PROG corrects the same
smoothing with probability matching (``pysteps.postprocessing.probmatching``,
``nonparam_match_empirical_cdf``): each forecast field keeps its spatial ranking, but its
values are replaced, rank for rank, by the sorted values of the most recent observation. This
module does that in TensorFlow, so a forecast, the evaluation and an exported SavedModel share
it. It is a monotone remapping: it is the same in the stored pixel scale as in rain rate.
"""

from __future__ import annotations

import tensorflow as tf

_BELOW_EVERYTHING = -1e9  # sorts the no-data pixels after every valid value


def match_intensity_distribution(forecast: tf.Tensor, reference: tf.Tensor,
                                 no_data_level: float) -> tf.Tensor:
    """Each forecast frame takes the value distribution of ``reference`` over valid pixels.

    The k-th largest forecast value of a frame, among the pixels where ``reference`` holds
    data, becomes the k-th largest valid value of ``reference``. Ties keep pixel order.
    Pixels where ``reference`` has no data keep the forecast's value.

    Args:
      forecast: ``[B, T, H, W, C]`` float.
      reference: ``[B, H, W, C]`` float, the last observed frame of each sample.
      no_data_level: a reference value at or below it is no data.

    Returns:
      ``[B, T, H, W, C]``, the forecast's dtype.
    """
    shape = tf.shape(forecast)
    values = tf.reshape(tf.cast(forecast, tf.float32), [shape[0], shape[1], -1])  # [B, T, N]
    observed = tf.reshape(tf.cast(reference, tf.float32), [shape[0], 1, -1])  # [B, 1, N]
    valid = observed > no_data_level  # [B, 1, N]
    keys = tf.where(valid, values, _BELOW_EVERYTHING)  # [B, T, N]
    order = tf.argsort(keys, axis=-1, direction="DESCENDING", stable=True)  # pixel of rank k
    ranks = tf.argsort(order, axis=-1, stable=True)  # rank of each pixel
    sorted_observed = tf.sort(tf.where(valid, observed, _BELOW_EVERYTHING), axis=-1,
                              direction="DESCENDING")  # [B, 1, N]
    sorted_observed = tf.broadcast_to(sorted_observed, tf.shape(values))  # [B, T, N]
    matched = tf.gather(sorted_observed, ranks, batch_dims=2)  # [B, T, N]
    matched = tf.where(valid, matched, values)
    return tf.cast(tf.reshape(matched, shape), forecast.dtype)
