"""Tests for predrnn_tf.baselines."""

import sys

import numpy as np
import pytest

from predrnn_tf.evaluation import baselines


def _gaussian_blob_sequence(length=6, size=48, velocity=(1.0, 2.0)):
    rows, cols = np.mgrid[0:size, 0:size]
    frames = [np.exp(-((rows - 16 - velocity[0] * t) ** 2 + (cols - 12 - velocity[1] * t) ** 2)
                     / 40.0) for t in range(length)]
    return np.stack(frames).astype(np.float32)[None, ..., None]  # [1, T, H, W, 1]


def test_persistence_repeats_last_input():
    inputs = np.random.default_rng(0).random((2, 4, 8, 8, 1)).astype(np.float32)
    forecast = baselines.PersistenceBaseline(3)(inputs)
    assert forecast.shape == (2, 3, 8, 8, 1)
    for step in range(3):
        np.testing.assert_array_equal(forecast[:, step], inputs[:, -1])
    with pytest.raises(ValueError, match="input_frames must be"):
        baselines.persistence(inputs[0], 3)


def test_make_baseline_rejects_unknown_name():
    with pytest.raises(ValueError, match="baseline must be one of persistence, extrapolation"):
        baselines.make_baseline("climatology", 3)
    assert isinstance(baselines.make_baseline("persistence", 2), baselines.PersistenceBaseline)


def test_extrapolation_without_pysteps_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysteps", None)
    with pytest.raises(ImportError, match="pip install pysteps"):
        baselines.ExtrapolationBaseline(3)


def test_extrapolation_follows_the_motion():
    pytest.importorskip("pysteps")
    sequence = _gaussian_blob_sequence(length=8)
    inputs, truth = sequence[:, :4], sequence[:, 4:]
    forecast = baselines.make_baseline("extrapolation", 4)(inputs)
    assert forecast.shape == truth.shape and forecast.dtype == np.float32
    assert np.isfinite(forecast).all()
    extrapolation_error = np.square(forecast - truth).sum()
    persistence_error = np.square(baselines.persistence(inputs, 4) - truth).sum()
    assert extrapolation_error < 0.25 * persistence_error
    peak = np.unravel_index(np.argmax(forecast[0, -1, ..., 0]), forecast.shape[2:4])
    assert abs(peak[0] - (16 + 7)) <= 1 and abs(peak[1] - (12 + 14)) <= 1


def test_extrapolation_rejects_color_frames():
    pytest.importorskip("pysteps")
    with pytest.raises(ValueError, match="one-channel"):
        baselines.ExtrapolationBaseline(2)(np.zeros((1, 3, 8, 8, 3), np.float32))
