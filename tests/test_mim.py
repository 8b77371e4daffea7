"""MIM: shapes, config round trips, masks, decoupling and parity with OpenSTL's PyTorch MIM.

OpenSTL's modules (openstl/modules/mim_modules.py, predrnn_modules.py and
openstl/models/mim_model.py) are transcribed in tools/openstl_mim_reference.py; torch is
imported lazily and the parity tests are skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest

from predrnn_tf.config import Config
from predrnn_tf.interop import mim_pytorch
from predrnn_tf.layers.mim_cell import MIMBlockCell, NonStationaryCell, StationaryCell
from predrnn_tf.masks import forecast_mask, mask_length
from predrnn_tf.models.mim import MIM

PREDICTION_TOLERANCE = 1e-4
BATCH = 2


def make_config(layer_norm=False, patch_size=2, reverse_scheduled_sampling=False,
                num_hidden=(4, 4, 4), img_channel=1) -> Config:
    return Config(model_name="mim", num_hidden=num_hidden, filter_size=3, patch_size=patch_size,
                  layer_norm=layer_norm, img_width=8, img_channel=img_channel, input_length=2,
                  total_length=5, reverse_scheduled_sampling=reverse_scheduled_sampling,
                  decouple_beta=0.1)


def build_mim(config: Config, decouple: bool = True, **kwargs) -> MIM:
    model = MIM(num_hidden=config.num_hidden, filter_size=config.filter_size,
                patch_size=config.patch_size, img_channel=config.img_channel,
                input_length=config.input_length, total_length=config.total_length,
                layer_norm=config.layer_norm,
                reverse_scheduled_sampling=config.reverse_scheduled_sampling, decouple=decouple,
                name="mim", **kwargs)
    model.build((None, config.total_length, config.img_width, config.img_width,
                 config.img_channel))
    return model


def make_frames(config: Config, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random([BATCH, config.total_length, config.img_width, config.img_width,
                       config.img_channel], dtype=np.float32)


def make_mask(kind: str, config: Config, seed: int = 1) -> np.ndarray:
    length = mask_length(config.reverse_scheduled_sampling, config.input_length,
                         config.total_length)
    if kind == "all_true":
        return np.ones([BATCH, length], np.float32)
    if kind == "autoregressive":
        return forecast_mask(BATCH, config.reverse_scheduled_sampling, config.input_length,
                             config.total_length).numpy()
    rng = np.random.default_rng(seed)
    return (rng.random([BATCH, length]) < 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------
# The Keras model on its own.
# ---------------------------------------------------------------------------------------


def test_shapes_dtypes_and_forecast():
    config = make_config(layer_norm=True)
    model = build_mim(config)
    frames = make_frames(config)
    predictions, decouple = model(frames, make_mask("random", config))
    assert predictions.shape == (BATCH, config.total_length - 1, 8, 8, 1)
    assert predictions.dtype.name == "float32" and decouple.dtype.name == "float32"
    assert decouple.shape == ()  # a scalar: the batch mean (issue 12)
    assert model.mask_length == config.total_length - config.input_length - 1
    forecast = model.forecast(frames[:, :config.input_length])
    assert forecast.shape == (BATCH, config.total_length - config.input_length, 8, 8, 1)
    assert model.forecast(frames[:, :config.input_length], output_length=5).shape[1] == 5
    with pytest.raises(ValueError, match="1 frames, the model takes"):
        model.forecast(frames[:, :1])


def test_model_get_config_round_trip():
    config = make_config(layer_norm=True, reverse_scheduled_sampling=True)
    model = build_mim(config, decouple=False, stop_stationary_gradient=False)
    clone = MIM.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.num_hidden == (4, 4, 4) and not clone.decouple and clone.adapter is None
    assert not clone.stop_stationary_gradient and clone.reverse_scheduled_sampling


@pytest.mark.parametrize("cell_class", [NonStationaryCell, StationaryCell, MIMBlockCell])
def test_cell_get_config_round_trip(cell_class):
    cell = cell_class(6, filter_size=3, layer_norm=True, forget_bias=0.5, name="cell")
    clone = cell_class.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    assert (clone.num_hidden, clone.filter_size, clone.layer_norm, clone.forget_bias) == \
        (6, 3, True, 0.5)


def test_cells_step_shapes_and_need_a_static_size():
    state = np.zeros([BATCH, 4, 4, 6], np.float32)
    block = MIMBlockCell(6, filter_size=3)
    outputs = block(state + 1.0, state, state, state, state, state)
    assert len(outputs) == 6 and all(tuple(value.shape) == state.shape for value in outputs)
    hidden, cell = NonStationaryCell(6, filter_size=3)(state + 1.0, state, state)
    assert hidden.shape == cell.shape == state.shape
    with pytest.raises(ValueError, match="static spatial size"):
        NonStationaryCell(6, filter_size=3).build((None, None, None, 6))


def test_invalid_arguments_state_the_received_values():
    with pytest.raises(ValueError, match=r"num_hidden=\(4, 8\)"):
        MIM(num_hidden=(4, 8))
    with pytest.raises(ValueError, match="input_length=5, total_length=5"):
        MIM(num_hidden=(4, 4), input_length=5, total_length=5)
    with pytest.raises(ValueError, match="filter_size=4"):
        MIMBlockCell(4, filter_size=4)
    with pytest.raises(ValueError, match="static frame size"):
        MIM(num_hidden=(4, 4), patch_size=2).build((None, 5, None, None, 1))


def test_masks_change_the_output():
    config = make_config()
    model = build_mim(config)
    frames = make_frames(config)
    with_truth, _ = model(frames, make_mask("all_true", config))
    with_predictions, _ = model(frames, make_mask("autoregressive", config))
    encoder = config.input_length - 1  # steps before the first mask entry read the truth
    np.testing.assert_allclose(with_truth[:, :encoder + 1], with_predictions[:, :encoder + 1],
                               atol=1e-6)
    assert np.max(np.abs(with_truth.numpy() - with_predictions.numpy())) > 1e-3


def test_decoupling_loss_is_finite_differentiable_and_zero_when_disabled():
    import tensorflow as tf

    config = make_config(layer_norm=True)
    frames, mask = make_frames(config), make_mask("random", config)
    model = build_mim(config, decouple=True)
    with tf.GradientTape() as tape:
        _, decouple = model(frames, mask, training=True)
        loss = tf.reduce_mean(decouple)
    values = decouple.numpy()
    assert np.all(np.isfinite(values)) and np.all(values > 0) and np.all(values <= 1)
    gradients = tape.gradient(loss, [model.adapter.kernel, model.cells[2].conv_s.kernel])
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in gradients)
    assert np.any(gradients[0].numpy() != 0)

    plain = build_mim(config, decouple=False)
    plain.set_weights([w for w in model.get_weights()][:len(plain.weights)])
    predictions, decouple_off = plain(frames, mask)
    np.testing.assert_array_equal(decouple_off.numpy(), np.float32(0.0))
    np.testing.assert_allclose(predictions, model(frames, mask)[0], atol=1e-6)


def test_stop_stationary_gradient_changes_gradients_not_outputs():
    import tensorflow as tf

    config = make_config()
    frames, mask = make_frames(config), make_mask("random", config)
    detached = build_mim(config, decouple=False)
    flowing = build_mim(config, decouple=False, stop_stationary_gradient=False)
    flowing.set_weights(detached.get_weights())
    gradients = []
    for model in (detached, flowing):
        with tf.GradientTape() as tape:
            predictions, _ = model(frames, mask)
            loss = tf.reduce_mean(tf.square(predictions))
        gradients.append(tape.gradient(loss, model.cells[1].stationary.conv_h.kernel).numpy())
        np.testing.assert_allclose(predictions, detached(frames, mask)[0], atol=1e-6)
    assert np.max(np.abs(gradients[0] - gradients[1])) > 0


# ---------------------------------------------------------------------------------------
# OpenSTL's PyTorch MIM.
# ---------------------------------------------------------------------------------------


@pytest.fixture(name="reference")
def fixture_reference():
    """tools/openstl_mim_reference.py (skips without torch)."""
    pytest.importorskip("torch")
    from tools import openstl_mim_reference

    return openstl_mim_reference


def make_openstl(reference, config: Config, seed: int = 0, weight_scale: float = 3.0):
    """OpenSTL's MIM with random weights: peepholes and layer-norm affines too (their
    defaults 0 / 1 / 0 would hide layout errors), convolutions scaled to O(1) outputs."""
    import torch

    torch.manual_seed(seed)
    network = reference.build_openstl_mim(config)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.endswith(("ct_weight", "oc_weight")):
                parameter.copy_(0.5 * torch.randn_like(parameter))
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(weight_scale)
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1.0 + 0.3 * torch.randn_like(module.weight))
                module.bias.copy_(0.3 * torch.randn_like(module.bias))
    return network.eval()


def numpy_state_dict(network) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in network.state_dict().items()}


PARITY_CASES = [
    pytest.param(False, 2, False, "random", 3, id="noln-p2-random-3layers"),
    pytest.param(True, 2, True, "random", 3, id="ln-p2-reverse-random-3layers"),
    pytest.param(True, 1, False, "autoregressive", 2, id="ln-p1-autoregressive-2layers"),
    pytest.param(False, 4, True, "all_true", 4, id="noln-p4-reverse-truth-4layers"),
]


@pytest.mark.parametrize("layer_norm, patch_size, reverse, mask_kind, layers", PARITY_CASES)
def test_forward_matches_openstl(reference, layer_norm, patch_size, reverse, mask_kind, layers):
    config = make_config(layer_norm=layer_norm, patch_size=patch_size,
                         reverse_scheduled_sampling=reverse, num_hidden=(4,) * layers)
    network = make_openstl(reference, config)
    model = build_mim(config, decouple=True)
    mim_pytorch.load_state_dict(model, numpy_state_dict(network), config)
    frames, mask = make_frames(config), make_mask(mask_kind, config)
    expected = reference.run_openstl(network, frames, mask, config)
    predictions, decouple = model(frames, mask)
    assert np.std(expected) > 0.05  # a meaningful scale for the tolerance
    assert np.max(np.abs(predictions.numpy() - expected)) < PREDICTION_TOLERANCE
    assert np.all(np.isfinite(decouple.numpy()))


def test_spec_order_and_shapes_are_openstls(reference):
    for layer_norm in (False, True):
        config = make_config(layer_norm=layer_norm)
        shapes = {key: tuple(value.shape)
                  for key, value in reference.build_openstl_mim(config).state_dict().items()}
        assert list(mim_pytorch.expected_shapes(config).items()) == list(shapes.items())


def test_state_dict_imports_forecasts_the_same_and_round_trips(reference, tmp_path):
    import torch

    config = make_config(layer_norm=True, img_channel=2)
    network = make_openstl(reference, config)
    path = str(tmp_path / "checkpoint.pth")
    torch.save(network.state_dict(), path)
    model = build_mim(config, decouple=False)
    mim_pytorch.load_state_dict(model, mim_pytorch.read_openstl_checkpoint(path), config, path)

    frames = make_frames(config)
    inputs = frames[:, :config.input_length]
    expected = reference.run_openstl(network, frames, make_mask("autoregressive", config),
                                     config)[:, config.input_length - 1:]
    assert np.max(np.abs(model.forecast(inputs).numpy() - expected)) < PREDICTION_TOLERANCE

    exported = mim_pytorch.model_state_dict(model, config)
    original = numpy_state_dict(network)
    assert list(exported) == list(original)
    for key, value in original.items():
        if key.startswith("stlstm_layer_diff.") and key.endswith("conv_last.weight"):
            np.testing.assert_array_equal(exported[key], np.zeros_like(value))  # never used
        else:
            np.testing.assert_array_equal(exported[key], value, err_msg=key)
    reloaded = reference.build_openstl_mim(config)
    reloaded.load_state_dict({key: torch.from_numpy(value) for key, value in exported.items()})
    again = reference.run_openstl(reloaded, frames, make_mask("autoregressive", config), config)
    np.testing.assert_allclose(again[:, config.input_length - 1:], expected, atol=1e-6)


def test_lightning_checkpoints_and_the_adapter_load(reference):
    config = make_config()
    network = make_openstl(reference, config)
    source = build_mim(config, decouple=True)
    state = mim_pytorch.model_state_dict(source, config, include_adapter=True)
    assert mim_pytorch.ADAPTER_KEY in state
    lightning = {"state_dict": {f"model.{key}": value for key, value in state.items()},
                 "epoch": 3}
    target = build_mim(config, decouple=True)
    mim_pytorch.load_state_dict(target, mim_pytorch.openstl_state_dict(lightning), config)
    np.testing.assert_array_equal(target.adapter.kernel.numpy(), source.adapter.kernel.numpy())
    kernel = target.cells[1].stationary.conv_x.kernel.numpy()
    np.testing.assert_array_equal(kernel, source.cells[1].stationary.conv_x.kernel.numpy())
    # Without an adapter key the adapter keeps its own weights.
    before = target.adapter.kernel.numpy()
    mim_pytorch.load_state_dict(target, numpy_state_dict(network), config)
    np.testing.assert_array_equal(target.adapter.kernel.numpy(), before)


def assert_one_line_error(config, shapes, *fragments):
    with pytest.raises(mim_pytorch.CheckpointFormatError) as error:
        mim_pytorch.check_shapes(shapes, config, source="best.pth")
    message = str(error.value)
    assert "\n" not in message and message.startswith("best.pth: ")
    for fragment in fragments:
        assert fragment in message, message


def test_mismatched_state_dicts_are_named(reference):
    config = make_config(layer_norm=True)
    shapes = {key: tuple(value.shape)
              for key, value in reference.build_openstl_mim(config).state_dict().items()}
    missing = dict(shapes)
    del missing["stlstm_layer.1.conv_s_cc.0.weight"]
    assert_one_line_error(config, missing, "missing key 'stlstm_layer.1.conv_s_cc.0.weight'")
    assert_one_line_error(config.replace(num_hidden=(8, 8, 8)), shapes,
                          "wrong shape for 'stlstm_layer.0.conv_x.0.weight'", "got [28, 4, 3, 3]")
    assert_one_line_error(config.replace(layer_norm=False), shapes,
                          "unexpected key 'stlstm_layer.0.conv_x.1.weight'")
    assert_one_line_error(config.replace(img_width=16), shapes,
                          "wrong shape for 'stlstm_layer.0.conv_x.1.weight'", "expected [28, 8, 8]")
    with pytest.raises(mim_pytorch.CheckpointFormatError, match="--model_name=predrnn_v2"):
        mim_pytorch.weight_specs(config.replace(model_name="predrnn_v2"))


def test_tf_checkpoint_restores_every_variable(tmp_path):
    import tensorflow as tf

    config = make_config(layer_norm=True)
    model = build_mim(config)
    for variable in model.weights:  # distinct values, so a swapped variable would show
        variable.assign(np.random.default_rng(len(variable.path)).standard_normal(
            variable.shape).astype(np.float32))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    restored = build_mim(config)
    status = tf.train.Checkpoint(model=restored).restore(path)
    status.assert_existing_objects_matched()
    assert len(restored.weights) == len(model.weights)
    for original, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(original.numpy(), loaded.numpy(), err_msg=original.path)
