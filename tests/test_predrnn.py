import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config, changed_model_fields
from predrnn_tf.errors import CheckpointFormatError, ConfigError
from predrnn_tf.interop.pytorch import check_official_config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.training.schedules import forecast_mask

TINY = dict(num_hidden=(8, 8), filter_size=3, patch_size=2, img_width=8, input_length=3,
            total_length=6)


def _frames(batch=2, config=None, seed=0):
    config = config or Config(**TINY)
    shape = (batch, config.total_length, config.img_width, config.img_width, config.img_channel)
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize("model_name", ["predrnn_v2", "predrnn", "predrnn_m_only", "convlstm"])
def test_every_preset_predicts_t_minus_one_frames(model_name):
    config = Config(model_name=model_name, **TINY)
    model = build_model(config)
    predictions, decouple = model(_frames(), forecast_mask(config, 2))
    assert tuple(predictions.shape) == (2, 5, 8, 8, 1)
    assert predictions.dtype == tf.float32
    assert tuple(decouple.shape) == ()  # a scalar: the batch mean (issue 12)
    if model_name == "predrnn_v2":
        assert np.all(decouple.numpy() > 0) and np.all(decouple.numpy() <= 1)
    else:
        np.testing.assert_array_equal(decouple.numpy(), 0.0)


def test_v2_weight_inventory_matches_official_layout():
    config = Config(num_hidden=(8, 8, 8), filter_size=5, patch_size=4, img_width=16)
    model = build_model(config)
    shapes = {w.path: tuple(w.shape) for w in model.weights}
    assert shapes["predrnn_v2/cell_0/conv_x/kernel"] == (5, 5, 16, 56)
    assert shapes["predrnn_v2/cell_2/conv_x/kernel"] == (5, 5, 8, 56)
    assert shapes["predrnn_v2/output_conv/kernel"] == (1, 1, 8, 16)
    assert shapes["predrnn_v2/adapter/kernel"] == (1, 1, 8, 8)
    assert len(shapes) == 3 * 5 + 2


def test_all_true_mask_makes_outputs_independent_of_earlier_predictions():
    config = Config(**TINY)
    model = build_model(config)
    frames = _frames()
    ones = tf.ones([2, model.mask_length])
    reference = model(frames, ones)[0].numpy()
    original = model.output_conv
    try:  # shift every prediction by a constant: a fed-back prediction would change later ones
        model.__dict__["output_conv"] = lambda hidden: original(hidden) + 100.0
        shifted = model(frames, ones)[0].numpy()
        autoregressive = model(frames, tf.zeros([2, model.mask_length]))[0].numpy()
    finally:
        model.__dict__["output_conv"] = original
    np.testing.assert_allclose(shifted - 100.0, reference, atol=1e-4)
    assert np.abs(autoregressive - 100.0 - reference)[:, 1:].max() > 1e-2


def test_mixing_rule_per_sample():
    config = Config(**TINY)
    model = build_model(config)
    patches = tf.constant(np.ones((2, 6, 4, 4, 4), np.float32))
    generated = tf.constant(np.full((2, 4, 4, 4), 5.0, np.float32))
    mask = tf.constant([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])[:, :, None, None, None]
    assert np.all(model._step_input(patches, mask, generated, 0).numpy() == 1.0)
    step_1 = model._step_input(patches, mask, generated, 1).numpy()
    assert np.all(step_1[0] == 1.0) and np.all(step_1[1] == 5.0)
    v1 = build_model(config.replace(reverse_scheduled_sampling=False))
    assert np.all(v1._step_input(patches, mask, generated, 2).numpy() == 1.0)
    step_3 = v1._step_input(patches, mask, generated, 3).numpy()
    assert np.all(step_3[0] == 1.0) and np.all(step_3[1] == 5.0)


def test_forecast_equals_unroll_with_test_mask_and_extends_horizon():
    config = Config(**TINY)
    model = build_model(config)
    frames = _frames()
    full, _ = model(frames, forecast_mask(config, 2))
    forecast = model.forecast(frames[:, :3])
    np.testing.assert_allclose(forecast.numpy(), full.numpy()[:, 2:], atol=1e-6)
    longer = model.forecast(frames[:, :3], output_length=7)
    assert tuple(longer.shape) == (2, 7, 8, 8, 1)
    np.testing.assert_allclose(longer.numpy()[:, :3], forecast.numpy(), atol=1e-5)


def test_memory_flow_ablations_change_the_output():
    frames = _frames()
    outputs = {}
    for flags in [(True, True), (False, True), (True, False)]:
        config = Config(memory_bottom_up=flags[0], memory_top_down=flags[1], **TINY)
        import keras
        keras.utils.set_random_seed(0)
        model = build_model(config)
        outputs[flags] = model(frames, forecast_mask(config, 2))[0].numpy()
    assert np.abs(outputs[(True, True)] - outputs[(False, True)]).max() > 1e-6
    assert np.abs(outputs[(True, True)] - outputs[(True, False)]).max() > 1e-6


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
    with pytest.raises(ValueError, match="dry_below=0.1, residual_frames=False"):
        PredRNN(num_hidden=(4, 4), dry_below=0.1)


def test_advection_prior_needs_residual_frames():
    with pytest.raises(ValueError, match="residual_frames=False"):
        PredRNN(num_hidden=(4, 4), advection_prior=True)


def test_model_config_round_trip():
    model = PredRNN(model_name="predrnn", num_hidden=(4, 4), patch_size=2, input_length=2,
                    total_length=5, layer_norm=True, reverse_scheduled_sampling=False,
                    memory_top_down=False, residual_frames=True, advection_prior=True,
                    dry_below=0.01)
    clone = PredRNN.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def test_bad_arguments_state_received_values():
    with pytest.raises(ValueError, match=r"num_hidden=\(8, 4\)"):
        PredRNN(num_hidden=(8, 4))
    with pytest.raises(ValueError, match="input_length=5, total_length=5"):
        PredRNN(input_length=5, total_length=5)
    PredRNN(model_name="convlstm", num_hidden=(8, 4))  # unequal sizes are fine without M


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_io():
    config = Config(precision="mixed_bfloat16", **TINY)
    model = build_model(config)
    assert model.cells[0].compute_dtype == "bfloat16"
    assert model.cells[0].conv_x.kernel.dtype == "float32"
    predictions, decouple = model(_frames(), forecast_mask(config, 2))
    assert predictions.dtype == tf.float32 and decouple.dtype == tf.float32
    reference = build_model(config.replace(precision="float32"))
    reference.set_weights(model.get_weights())
    expected = reference(_frames(), forecast_mask(config, 2))[0].numpy()
    assert np.abs(predictions.numpy() - expected).max() < 0.05


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
    with pytest.raises(ValueError, match="residual_frames=False, zero_mean_change=True"):
        PredRNN(num_hidden=(4, 4), zero_mean_change=True)
    with pytest.raises(ConfigError, match="--zero_mean_change=true needs --residual_frames"):
        build_model(Config(zero_mean_change=True, **TINY))
    model = PredRNN(num_hidden=(4, 4), residual_frames=True, zero_mean_change=True)
    clone = PredRNN.from_config(model.get_config())
    assert clone.zero_mean_change and clone.get_config() == model.get_config()
    residual = Config(residual_frames=True, **TINY)
    assert changed_model_fields(residual, residual.replace(zero_mean_change=True)) == [
        "zero_mean_change"]
    with pytest.raises(CheckpointFormatError, match="zero_mean_change"):
        check_official_config(Config(zero_mean_change=True, **TINY))
