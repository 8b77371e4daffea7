"""The soft-CSI rain-area loss and the fair CRPS (predrnn_tf/models/losses.py) and their wiring."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.config import Config, ConfigError, parse_csi_thresholds, validate_config
from predrnn_tf.models import losses
from predrnn_tf.training.schedules import forecast_mask
from predrnn_tf.training.trainer import Trainer


def rain_pixels(rates_mmh) -> np.ndarray:
    """Rain rates (mm/h; NaN = no data) -> [0, 1] dBR pixels as the recipe stores them."""
    rates = np.asarray(rates_mmh, np.float64)
    return (units.rain_rate_to_pixels(rates) / 255.0).astype(np.float32)


def hard_csi(forecast_mmh, truth_mmh, threshold) -> float:
    """CSI by hand over the valid (non-NaN truth) pixels: hits / (hits + misses + false)."""
    valid = ~np.isnan(truth_mmh)
    observed = (np.nan_to_num(truth_mmh) >= threshold) & valid
    forecast = (forecast_mmh >= threshold) & valid
    hits = np.sum(observed & forecast)
    return hits / (hits + np.sum(observed & ~forecast) + np.sum(~observed & forecast))


# One sample, three frames of 2 x 3 pixels: frame 0 partly right (CSI 2 / 5 at 1 mm/h, the
# no-data pixel's forecast of 8 mm/h ignored), frame 1 dry in truth and forecast (no term),
# frame 2 a false alarm only (CSI 0).
TRUTH = np.array([[[0.0, 2.0, 3.0], [np.nan, 0.5, 6.0]],
                  [[0.0, 0.2, 0.0], [0.0, 0.0, 0.5]],
                  [[0.0, 0.0, 0.0], [0.0, 0.3, 0.0]]])
FORECAST = np.array([[[1.5, 4.0, 0.3], [8.0, 3.0, 2.0]],
                     [[0.0, 0.5, 0.0], [0.3, 0.0, 0.0]],
                     [[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])


def test_soft_csi_tends_to_the_hard_csi_as_the_temperature_falls():
    truth, forecast = rain_pixels(TRUTH)[None, ..., None], rain_pixels(FORECAST)[None, ..., None]
    # The stored pixels quantise the rates, so the reference reads them back as the metrics do.
    forecast_mmh = units.pixels_to_rain_rate(forecast[0, ..., 0], units.rain_rate_mapping())
    truth_mmh = np.where(np.isnan(TRUTH), np.nan,
                         units.pixels_to_rain_rate(truth[0, ..., 0], units.rain_rate_mapping()))
    expected = [hard_csi(forecast_mmh[frame], truth_mmh[frame], 1.0) for frame in (0, 2)]
    assert expected == pytest.approx([2 / 5, 0.0])
    csi, counted = losses.soft_csi_frames(forecast, truth, 1.0, temperature_db=1e-3)
    np.testing.assert_array_equal(counted.numpy(), [[1.0, 0.0, 1.0]])
    np.testing.assert_allclose(csi.numpy()[0, [0, 2]], expected, atol=1e-4)
    loss = losses.soft_csi_loss(forecast, truth, (1.0,), temperature_db=1e-3).numpy()
    np.testing.assert_allclose(loss, [1.0 - np.mean(expected)], atol=1e-4)
    # A warm sigmoid scores near misses and near hits in part; the gap closes as it cools.
    gaps = [abs(float(losses.soft_csi_frames(forecast, truth, 1.0, temperature)[0][0, 0]) - 0.4)
            for temperature in (3.0, 0.3, 0.03)]
    assert gaps[0] > 5e-3 and gaps[0] > gaps[1] > gaps[2]


def test_two_thresholds_average_and_a_dry_sample_gives_zero():
    truth = rain_pixels(np.stack([TRUTH, np.zeros_like(TRUTH)]))[..., None]
    forecast = rain_pixels(np.stack([FORECAST, np.zeros_like(FORECAST)]))[..., None]
    loss = losses.soft_csi_loss(forecast, truth, (1.0, 5.0), temperature_db=1e-3).numpy()
    # 5 mm/h: frame 0 has truth 6 vs forecast 8 (no data, ignored) -> one miss, CSI 0.
    np.testing.assert_allclose(loss, [(0.6 + 1.0 + 1.0) / 3, 0.0], atol=1e-4)


def test_gradient_is_finite_and_nonzero():
    truth = tf.constant(rain_pixels(TRUTH)[None, ..., None])
    forecast = tf.Variable(rain_pixels(FORECAST)[None, ..., None])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.soft_csi_loss(forecast, truth, (1.0,), 1.0))
    gradient = tape.gradient(loss, forecast).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.abs(gradient).max() > 1e-4
    assert gradient[0, 0, 0, 2, 0] < 0  # the missed 3 mm/h pixel: raise the forecast
    assert gradient[0, 0, 1, 0, 0] == 0  # the no-data pixel has no say


def tiny_config(**changes) -> Config:
    return Config(model_name="convlstm", num_hidden=(4,), filter_size=3, patch_size=2,
                  img_width=4, input_length=2, total_length=5, batch_size=2,
                  residual_frames=True, frame_loss="masked_mse", **changes)


def test_weight_zero_leaves_the_training_loss_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    frames = tf.constant(rain_pixels(rng.exponential(1.5, (2, 5, 4, 4)))[..., None])
    results = {}
    for weight in (0.0, 0.5):
        config = validate_config(tiny_config(csi_loss_weight=weight))
        trainer = Trainer(config, str(tmp_path / str(weight)),
                                      tf.distribute.get_strategy())
        mask = forecast_mask(config, 2)
        loss, frame_loss, decouple = trainer.replica_loss(frames, mask)
        predictions, _ = trainer.model(frames, mask, training=True)
        results[weight] = (float(loss), float(frame_loss + config.decouple_beta * decouple),
                           float(tf.reduce_mean(trainer.csi_loss(predictions, frames))))
    assert results[0.0][0] == results[0.0][1]
    assert results[0.5][1] == pytest.approx(results[0.0][1], rel=1e-6)  # same seed, weights
    assert results[0.5][0] == pytest.approx(results[0.5][1] + 0.5 * results[0.5][2], rel=1e-5)
    assert results[0.5][2] > 0


@pytest.mark.parametrize("changes, message", [
    ({"csi_loss_weight": -0.1}, "--csi_loss_weight must be >= 0 (0 = off), got -0.1"),
    ({"csi_loss_temperature_db": 0.0}, "--csi_loss_temperature_db must be positive, got 0.0"),
    ({"csi_loss_thresholds_mmh": "1,x"}, "--csi_loss_thresholds_mmh must be comma-separated "
                                         "positive rain rates in mm/h, got '1,x'"),
    ({"csi_loss_thresholds_mmh": "1,-5"}, "--csi_loss_thresholds_mmh must be comma-separated "
                                          "positive rain rates in mm/h, got '1,-5'"),
    ({"csi_loss_thresholds_mmh": "nan"}, "--csi_loss_thresholds_mmh must be comma-separated "
                                         "positive rain rates in mm/h, got 'nan'"),
    ({"csi_loss_thresholds_mmh": ""}, "--csi_loss_thresholds_mmh must be comma-separated"),
])
def test_bad_values_are_one_line_errors_naming_the_flag(changes, message):
    with pytest.raises(ConfigError) as error:
        validate_config(Config(**changes))
    assert isinstance(error.value, ValueError)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_thresholds_parse_and_the_library_refuses_bad_arguments():
    assert parse_csi_thresholds("0.5, 1,5") == (0.5, 1.0, 5.0)
    pixels = tf.zeros((1, 1, 2, 2, 1))
    with pytest.raises(ValueError, match="thresholds_mmh must be positive"):
        losses.soft_csi_loss(pixels, pixels, (0.0,))
    with pytest.raises(ValueError, match="temperature_db must be positive, got -1"):
        losses.soft_csi_loss(pixels, pixels, (1.0,), temperature_db=-1.0)


def fair_crps_reference(members: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-sample fair CRPS by the definition: ``members [B, M, ...]``, ``truth [B, ...]``."""
    count = members.shape[1]
    absolute = np.mean(np.abs(members - truth[:, None]), axis=1)
    pairs = np.abs(members[:, :, None] - members[:, None, :]).sum(axis=(1, 2))
    crps = absolute - pairs / (2.0 * count * (count - 1))
    return crps.reshape(len(crps), -1).mean(axis=1)


@pytest.mark.parametrize("count", [2, 5])
def test_fair_crps_equals_its_definition_and_pysteps_crps_rescaled(count):
    from pysteps.verification import probscores

    rng = np.random.default_rng(count)
    truth = rng.uniform(0.1, 1.0, (3, 4, 6, 5, 1))  # every pixel valid (pixel 0 is no data)
    members = rng.uniform(0.1, 1.0, (3, count, 4, 6, 5, 1))
    loss = losses.fair_crps(tf.constant(members, tf.float32), tf.constant(truth, tf.float32))
    np.testing.assert_allclose(loss.numpy(), fair_crps_reference(members, truth), atol=1e-6)
    for sample in range(3):  # pysteps' CRPS is A - B / (2 M^2); fair = (M CRPS - A) / (M - 1)
        standard = probscores.CRPS(members[sample], truth[sample])
        absolute = np.mean(np.abs(members[sample] - truth[sample][None]))
        fair = (count * standard - absolute) / (count - 1)
        assert float(loss[sample]) == pytest.approx(fair, abs=1e-6)


def test_fair_crps_of_equal_members_is_the_mae_and_no_data_pixels_are_left_out():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.1, 1.0, (2, 3, 4, 4, 1)).astype(np.float32)
    truth[:, :, :2] = 0.0  # the no-data pixel: left out
    forecast = rng.uniform(0.0, 1.0, (2, 3, 4, 4, 1)).astype(np.float32)
    equal = np.repeat(forecast[:, None], 3, axis=1)  # [B, 3, T, H, W, C]
    loss = losses.fair_crps(tf.constant(equal), tf.constant(truth)).numpy()
    expected = np.abs(forecast - truth)[:, :, 2:].reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    spread = equal + rng.normal(0.0, 0.2, equal.shape).astype(np.float32)
    assert np.all(losses.fair_crps(tf.constant(spread), tf.constant(truth)).numpy() > 0)
    with pytest.raises(ValueError, match="at least 2, got 1"):
        losses.fair_crps(tf.constant(equal[:, :1]), tf.constant(truth))


@pytest.mark.parametrize("changes, message", [
    ({"ensemble_loss": "crps"}, "--ensemble_loss must be one of none, fair_crps, got 'crps'"),
    ({"ensemble_loss_members": 1}, "--ensemble_loss_members must be at least 2 (the fair CRPS "
                                   "compares members), got 1"),
    ({"ensemble_loss_members": 65}, "--ensemble_loss_members=65 is too large (at most 64)"),
    ({"ensemble_loss": "fair_crps", "residual_frames": True},
     "--ensemble_loss=fair_crps needs --advection_prior=true (members perturb its motion)"),
])
def test_bad_ensemble_loss_flags_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError) as error:
        validate_config(Config(**changes))
    assert str(error.value) == message


def test_fair_crps_without_the_data_grid_is_refused_in_one_line(tmp_path):
    from predrnn_tf.training.trainer import ensemble_grid

    config = validate_config(tiny_config(advection_prior=True, ensemble_loss="fair_crps"))
    assert ensemble_grid(config.replace(ensemble_loss="none"), {}) is None
    assert ensemble_grid(config, {"grid": {"pixel_km": 1, "interval_minutes": 5}}) == (1.0, 5.0)
    with pytest.raises(ConfigError, match="needs the dataset's grid, but --dataset_name="
                                          "synthetic_radar has metadata without pixel_km") as error:
        ensemble_grid(config, {"name": "synthetic_radar"})
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="received grid=None"):
        Trainer(config, str(tmp_path), tf.distribute.get_strategy())
