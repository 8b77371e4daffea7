"""The radar output head (predrnn_tf/models/radar_head.py) on its own and around the unroll."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.checkpoints import expected_variables
from predrnn_tf.config import Config, changed_model_fields
from predrnn_tf.errors import CheckpointFormatError, ConfigError
from predrnn_tf.interop.pytorch import check_official_config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.models.radar_head import RadarHead, radar_head_from_config
from predrnn_tf.training.schedules import forecast_mask
from predrnn_tf.units import DRY_BELOW_PIXEL

TINY = dict(num_hidden=(8, 8), filter_size=3, patch_size=2, img_width=8, input_length=3,
            total_length=6)


def _frames(batch=2, config=None, seed=0):
    config = config or Config(**TINY)
    shape = (batch, config.total_length, config.img_width, config.img_width, config.img_channel)
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_the_flags_make_the_head_and_no_flag_makes_none():
    assert radar_head_from_config(Config(**TINY)) is None
    head = radar_head_from_config(Config(residual_frames=True, advection_prior=True,
                                         keep_dry_pixels=True, zero_mean_change=True, **TINY))
    assert head.advection_prior and head.zero_mean_change
    assert head.dry_below == pytest.approx(DRY_BELOW_PIXEL / 255.0)
    assert radar_head_from_config(Config(residual_frames=True, **TINY)).dry_below == 0.0
    assert build_model(Config(residual_frames=True, **TINY)).output_head.name == "radar_head"


def test_the_head_frame_is_the_prior_plus_the_shaped_change():
    rng = np.random.default_rng(3)
    step_input = tf.constant(rng.random((2, 4, 4, 4)), tf.float32)
    change = tf.constant(rng.normal(0.0, 0.1, (2, 4, 4, 4)), tf.float32)
    plain = RadarHead()(change, step_input, None, patch_size=2)
    np.testing.assert_allclose(plain.numpy(), (step_input + change).numpy(), atol=1e-7)
    gated = RadarHead(dry_below=0.5)(change, step_input, None, patch_size=2).numpy()
    dry = step_input.numpy() < 0.5
    np.testing.assert_array_equal(gated[dry], step_input.numpy()[dry])
    np.testing.assert_allclose(gated[~dry], (step_input + change).numpy()[~dry], atol=1e-7)
    assert RadarHead().input_motion(tf.zeros([2, 3, 8, 8, 1])) is None
    motion = RadarHead(advection_prior=True).input_motion(tf.zeros([2, 3, 8, 8, 1]))
    assert tuple(motion.shape) == (2, 8, 8, 2) and motion.dtype == tf.float32


def test_the_head_checks_its_arguments_and_round_trips_its_config():
    with pytest.raises(ValueError, match="received dry_below=1.0"):
        RadarHead(dry_below=1.0)
    head = RadarHead(advection_prior=True, dry_below=0.01, zero_mean_change=True, name="h")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
    assert type(clone) is RadarHead and clone.get_config() == head.get_config()
    assert not head.autocast  # the motion stays float32 under a mixed policy


def test_the_head_adds_no_weight_and_no_checkpoint_path():
    config = Config(**TINY)
    plain = build_model(config)
    radar = build_model(config.replace(residual_frames=True, advection_prior=True,
                                       keep_dry_pixels=True, zero_mean_change=True))
    assert [v.path for v in radar.variables] == [v.path for v in plain.variables]
    assert (expected_variables(tf.train.Checkpoint(model=radar))
            == expected_variables(tf.train.Checkpoint(model=plain)))


def test_a_mixed_bfloat16_radar_model_forecasts_as_float32():
    config = Config(residual_frames=True, advection_prior=True, keep_dry_pixels=True,
                    zero_mean_change=True, **dict(TINY, img_width=16))
    exact = build_model(config)
    for variable in exact.variables:
        variable.assign(np.random.default_rng(2).normal(0.0, 0.2, variable.shape))
    mixed = build_model(config, precision="mixed_bfloat16")
    mixed.set_weights(exact.get_weights())
    frames = _frames(config=config)[:, :3]
    difference = np.abs(mixed.forecast(frames).numpy() - exact.forecast(frames).numpy())
    assert difference.max() < 0.05


def test_residual_frames_start_as_persistence_then_learn_a_change():
    config = Config(residual_frames=True, **TINY)
    model = build_model(config)
    frames = _frames()
    forecast = model.forecast(frames[:, :3]).numpy()
    last = np.repeat(frames[:, 2:3], 3, axis=1)
    np.testing.assert_allclose(forecast, last, atol=1e-6)  # untrained: persistence
    with tf.GradientTape() as tape:
        predictions, _ = model(frames, forecast_mask(config, 2))
        loss = tf.reduce_mean(tf.square(predictions - frames[:, 1:]))
    gradient = tape.gradient(loss, model.output_conv.kernel)
    assert float(tf.reduce_max(tf.abs(gradient))) > 0.0
    plain = build_model(Config(**TINY)).forecast(frames[:, :3]).numpy()
    assert np.abs(plain - last).max() > 1e-3  # the plain model does not start as persistence


def test_advection_prior_starts_as_the_extrapolation_of_the_inputs():
    from predrnn_tf.models.advection import advect_frame, estimate_motion

    config = Config(residual_frames=True, advection_prior=True, **dict(TINY, img_width=16))
    model = build_model(config)
    frames = np.zeros((1, 6, 16, 16, 1), np.float32)
    for step in range(6):
        frames[0, step, 4 + step:8 + step, 3:7] = 1.0  # a square moving one pixel down
    motion = estimate_motion(tf.constant(frames[:, :3]))
    expected, frame = [], tf.constant(frames[:, 2])
    for _ in range(3):
        frame = advect_frame(frame, motion)
        expected.append(frame.numpy())
    forecast = model.forecast(frames[:, :3]).numpy()
    np.testing.assert_allclose(forecast, np.stack(expected, axis=1), atol=1e-6)
    persistence = np.repeat(frames[:, 2:3], 3, axis=1)
    assert np.abs(forecast - frames[:, 3:]).mean() < np.abs(persistence - frames[:, 3:]).mean()
    with tf.GradientTape() as tape:
        predictions, _ = model(frames, forecast_mask(config, 1))
        loss = tf.reduce_mean(tf.square(predictions - frames[:, 1:]))
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, model.output_conv.kernel)))) > 0.0


def test_keep_dry_pixels_changes_only_where_the_prior_has_rain():
    config = Config(residual_frames=True, keep_dry_pixels=True, **TINY)
    model = build_model(config)
    kernel = np.random.default_rng(0).normal(0.0, 0.5, model.output_conv.kernel.shape)
    model.output_conv.kernel.assign(kernel.astype(np.float32))
    frames = np.full((1, 6, 8, 8, 1), 1.0 / 255.0, np.float32)  # the no-rain pixel
    frames[:, :, 2:5, 2:5] = 0.5  # a rain cell that stays put
    forecast = model.forecast(frames[:, :3]).numpy()
    dry = frames[:, 3:] < 1.5 / 255.0
    np.testing.assert_array_equal(forecast[dry], frames[:, 3:][dry])  # dry stays dry
    assert np.abs(forecast[~dry] - 0.5).max() > 0.01  # the change acts on the rain
    free = build_model(Config(residual_frames=True, **TINY))
    free.set_weights(model.get_weights())
    assert np.abs(free.forecast(frames[:, :3]).numpy()[dry] - 1.0 / 255.0).max() > 0.01


def test_advection_prior_needs_residual_frames():
    with pytest.raises(ConfigError, match="--advection_prior=true needs --residual_frames"):
        build_model(Config(advection_prior=True, **TINY))


def _rain_frames(seed=0):
    """No-rain background (pixel 1) with random rain cells, and one sample dry throughout."""
    rng = np.random.default_rng(seed)
    frames = np.full((3, 6, 8, 8, 1), 1.0 / 255.0, np.float32)
    rain = rng.random(frames.shape) < 0.4
    frames[rain] = rng.uniform(0.2, 0.8, rain.sum())
    frames[2] = 1.0 / 255.0  # a sample without any wet pixel
    return frames


@pytest.mark.parametrize("keep_dry_pixels", [False, True])
def test_zero_mean_change_keeps_the_wet_pixel_mean_of_each_frame(keep_dry_pixels):
    config = Config(residual_frames=True, zero_mean_change=True,
                    keep_dry_pixels=keep_dry_pixels, **TINY)
    model = build_model(config)
    kernel = np.random.default_rng(1).normal(0.0, 0.5, model.output_conv.kernel.shape)
    model.output_conv.kernel.assign(kernel.astype(np.float32))
    frames = _rain_frames()
    ones = tf.ones([3, model.mask_length])  # every step reads the true frame: the prior
    change = model(frames, ones)[0].numpy() - frames[:, :-1]  # [B, T-1, H, W, C]
    wet = frames[:, :-1] >= 1.5 / 255.0
    for sample in range(2):
        for step in range(5):
            assert abs(change[sample, step][wet[sample, step]].mean()) < 1e-6
            assert np.abs(change[sample, step]).max() > 0.01  # it does reshape the rain
    np.testing.assert_array_equal(change[2], 0.0)  # no wet pixel: no change at all
    if keep_dry_pixels:
        np.testing.assert_array_equal(change[~wet], 0.0)
    free = build_model(config.replace(zero_mean_change=False))
    free.set_weights(model.get_weights())
    free_change = free(frames, ones)[0].numpy() - frames[:, :-1]
    assert max(abs(free_change[0, step][wet[0, step]].mean()) for step in range(5)) > 1e-3


def test_zero_mean_change_is_a_checked_model_defining_argument():
    with pytest.raises(ConfigError, match="--zero_mean_change=true needs --residual_frames"):
        build_model(Config(zero_mean_change=True, **TINY))
    model = PredRNN(num_hidden=(4, 4), output_head=RadarHead(zero_mean_change=True))
    clone = PredRNN.from_config(model.get_config())
    assert clone.output_head.zero_mean_change and clone.get_config() == model.get_config()
    residual = Config(residual_frames=True, **TINY)
    assert changed_model_fields(residual, residual.replace(zero_mean_change=True)) == [
        "zero_mean_change"]
    with pytest.raises(CheckpointFormatError, match="zero_mean_change"):
        check_official_config(Config(zero_mean_change=True, **TINY))
