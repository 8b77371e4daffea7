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
    with pytest.raises(ValueError,
                       match="baseline must be one of persistence, extrapolation, sprog"):
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


def _rain_rate_pixels(length=6, size=48):
    """A moving rain cell (peak 20 mm/h) as dBR pixels, the first row no data."""
    from predrnn_tf import units

    rate = 20.0 * _gaussian_blob_sequence(length, size)
    pixels = units.rain_rate_to_pixels(rate).astype(np.float32) / 255.0
    pixels[:, :, 0] = 0.0
    return pixels


@pytest.mark.parametrize("name", ["extrapolation", "sprog"])
def test_rain_rate_nowcasts_move_the_cell(name):
    pytest.importorskip("pysteps")
    from predrnn_tf import units
    from predrnn_tf.evaluation import radar_evaluation

    metadata = {"name": "toy", "value_mapping": units.rain_rate_mapping(),
                "grid": {"pixel_km": 2.0}}
    frames = _rain_rate_pixels(8)
    forecaster = baselines.make_baseline(name, 3, metadata)
    forecast = forecaster(frames[:, :5])
    assert forecast.shape == (1, 3, 48, 48, 1) and forecast.dtype == np.float32
    scores = {}
    for label, prediction in (("model", forecast),
                              ("persistence", baselines.persistence(frames[:, :5], 3))):
        scorer = radar_evaluation.RadarScores(3, metadata)
        scorer.update(frames[:, 5:], prediction)
        scores[label] = scorer.result()["metrics"]
    assert scores["model"]["mse_mmh"] < 0.5 * scores["persistence"]["mse_mmh"]


def test_sprog_needs_a_rain_rate_dataset():
    with pytest.raises(ValueError, match="--baselines=sprog needs a rain-rate dataset"):
        baselines.make_baseline("sprog", 3, {"value_mapping": None})


def test_advection_baseline_is_the_untrained_radar_recipe_model():
    from predrnn_tf.config import Config
    from predrnn_tf.models.builder import build_model

    config = Config(num_hidden=(8, 8), filter_size=3, patch_size=2, img_width=16,
                    input_length=4, total_length=8, residual_frames=True, advection_prior=True,
                    keep_dry_pixels=True, zero_mean_change=True)
    model = build_model(config)
    rng = np.random.default_rng(3)
    frames = np.full((2, 4, 16, 16, 1), 1.0 / 255.0, np.float32)  # the no-rain pixel
    for step in range(4):  # rain cells moving one pixel right per step
        frames[:, step, 3:9, 2 + step:8 + step] = rng.uniform(0.3, 0.9, (2, 6, 6, 1))
    baseline = baselines.make_baseline("advection", 4)
    forecast = baseline(frames)
    assert forecast.shape == (2, 4, 16, 16, 1)
    np.testing.assert_allclose(forecast, model.forecast(frames).numpy(), atol=1e-6)
    assert np.abs(forecast - frames[:, -1:]).max() > 0.1  # it moved the rain
    with pytest.raises(ValueError, match="advection needs frames"):
        baseline(frames[:, :1])


def test_guarded_baseline_leaves_out_counts_and_names_failed_sequences():
    def fails_on_empty(inputs):
        if np.any(np.asarray(inputs).max(axis=(1, 2, 3, 4)) == 0):
            raise ValueError("x contains non-finite values")
        return baselines.persistence(inputs, 2)

    inputs = np.ones((4, 3, 8, 8, 1), np.float32)
    inputs[2] = 0.0
    guarded = baselines.GuardedBaseline("sprog", fails_on_empty)
    forecast, done = guarded(inputs)
    assert done.tolist() == [0, 1, 3] and forecast.shape == (3, 2, 8, 8, 1)
    forecast, done = guarded(inputs[:2])  # a whole batch that works: no retry
    assert done.tolist() == [0, 1]
    assert guarded.report() == {"failed_sequences": 1, "scored_sequences": 5,
                                "errors": {"ValueError: x contains non-finite values": 1}}
    whole = baselines.fill_failed(*guarded(inputs), (4, 2, 8, 8, 1))
    assert np.isnan(whole[2]).all() and np.isfinite(whole[[0, 1, 3]]).all()


def test_extrapolated_rates_are_nan_where_advected_in_from_outside():
    pytest.importorskip("pysteps")
    from predrnn_tf import units

    metadata = {"name": "toy", "value_mapping": units.rain_rate_mapping()}
    nowcast = baselines.RainRateNowcast("extrapolation", 3, metadata)
    frames = _rain_rate_pixels(5)
    rates = nowcast.forecast_rates(frames)  # the cell moves down-right: inflow top-left
    assert rates.shape == (1, 3, 48, 48, 1)
    assert np.isnan(rates[0, :, 0, 0]).all() and np.isfinite(rates[0, :, 40, 40]).all()
    pixels = nowcast(frames)
    np.testing.assert_array_equal(
        pixels, units.rain_rate_to_unit_pixels(np.nan_to_num(rates)).astype(np.float32))
