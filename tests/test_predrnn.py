import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.cells import CELL_KINDS, CellOptions
from predrnn_tf.models.predrnn import VARIANTS, PredRNN
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


def test_model_config_round_trip():
    model = PredRNN(model_name="predrnn", num_hidden=(4, 4), patch_size=2, input_length=2,
                    total_length=5, layer_norm=True, reverse_scheduled_sampling=False,
                    memory_top_down=False, conv_lstm_peephole=True, remat=True)
    config = model.get_config()
    clone = PredRNN.from_config(config)
    assert clone.get_config() == config
    assert config["num_hidden"] == [4, 4] and config["output_head"] is None
    assert not clone.memory_top_down and clone.remat and clone.output_head is None


def test_the_paper_model_takes_no_radar_argument():
    for radar_argument in ("residual_frames", "advection_prior", "dry_below",
                           "zero_mean_change"):
        with pytest.raises(ValueError, match=f"Unrecognized keyword.*{radar_argument}"):
            PredRNN(num_hidden=(4, 4), **{radar_argument: True})
    assert build_model(Config(**TINY)).output_head is None


@pytest.mark.parametrize("model_name", sorted(VARIANTS))
def test_every_variant_stacks_its_registered_cell(model_name):
    model = build_model(Config(model_name=model_name, **TINY))
    kind = CELL_KINDS[VARIANTS[model_name].cell_kind]
    made = kind.make(8, CellOptions(3), "probe")
    assert model.cell_kind is kind
    assert all(type(cell) is type(made) for cell in model.cells)
    assert (model.adapter is not None) == VARIANTS[model_name].decouple


def test_bad_arguments_state_received_values():
    with pytest.raises(ValueError, match=r"num_hidden=\(8, 4\)"):
        PredRNN(num_hidden=(8, 4))
    with pytest.raises(ValueError, match="input_length=5, total_length=5"):
        PredRNN(input_length=5, total_length=5)
    with pytest.raises(ValueError, match="model_name='mim'"):
        PredRNN(model_name="mim")  # MIM is its own class, not a PredRNN variant
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


