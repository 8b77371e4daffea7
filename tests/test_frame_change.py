"""The shaping of a residual model's learned change: centred on wet pixels, gated to rain."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from predrnn_tf.models import frame_change


def test_centre_on_wet_pixels_subtracts_the_wet_mean_per_sample():
    change = np.array([[1.0, 2.0, 3.0, 10.0], [4.0, 4.0, -2.0, 0.0], [5.0, 6.0, 7.0, 8.0]],
                      np.float32)
    wet = np.array([[True, True, True, False], [False, True, True, False], [False] * 4])
    out = frame_change.centre_on_wet_pixels(tf.constant(change), tf.constant(wet)).numpy()
    np.testing.assert_allclose(out[0], [-1.0, 0.0, 1.0, 8.0])  # wet mean 2
    np.testing.assert_allclose(out[1], [3.0, 3.0, -3.0, -1.0])  # wet mean 1
    np.testing.assert_array_equal(out[2], 0.0)  # no wet pixel: no change


def test_shape_change_gates_and_centres_with_the_wet_threshold():
    prior = np.array([[[0.5, 0.5], [1.0 / 255.0, 0.0]]], np.float32)  # two wet, dry, no data
    change = np.array([[[0.2, 0.0], [0.3, 0.4]]], np.float32)
    untouched = frame_change.shape_change(tf.constant(change), tf.constant(prior), 0.0, False)
    np.testing.assert_array_equal(untouched.numpy(), change)
    centred = frame_change.shape_change(tf.constant(change), tf.constant(prior), 0.0, True)
    np.testing.assert_allclose(centred.numpy(), [[[0.1, -0.1], [0.2, 0.3]]], atol=1e-7)
    gated = frame_change.shape_change(tf.constant(change), tf.constant(prior),
                                      frame_change.WET_FROM, True)
    np.testing.assert_allclose(gated.numpy(), [[[0.1, -0.1], [0.0, 0.0]]], atol=1e-7)
    assert frame_change.WET_FROM == 1.5 / 255.0  # the metrics' dry threshold
