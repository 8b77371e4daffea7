"""Parity with the official PyTorch PredRNN (thuml/predrnn-pytorch) through its checkpoints.

The official modules (core/layers/SpatioTemporalLSTMCell*.py, core/models/predrnn*.py,
core/utils/preprocess.py reshape_patch) are transcribed in predrnn_tf/interop/official_predrnn.py,
keeping their key names, shapes and forward passes. The only change: the forward passes also
return the decoupling loss, which the official code folds into its training loss.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from predrnn_tf.checkpoints import restore  # noqa: E402
from predrnn_tf.config import Config  # noqa: E402
from predrnn_tf.interop import pytorch  # noqa: E402
from predrnn_tf.interop.official_predrnn import (  # noqa: E402
    build_official_network,
    official_mask,
    reshape_patch,
    reshape_patch_back,
)
from predrnn_tf.masks import forecast_mask, mask_length  # noqa: E402
from predrnn_tf.models.builder import build_model  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICTION_TOLERANCE = 1e-4
DECOUPLE_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------


def make_config(model_name="predrnn_v2", layer_norm=False, patch_size=4, img_channel=1,
                reverse_scheduled_sampling=None, num_hidden=(8, 8)) -> Config:
    if reverse_scheduled_sampling is None:
        reverse_scheduled_sampling = model_name == "predrnn_v2"
    return Config(model_name=model_name, num_hidden=num_hidden, filter_size=3,
                  patch_size=patch_size, layer_norm=layer_norm, img_width=16,
                  img_channel=img_channel, input_length=3, total_length=7,
                  reverse_scheduled_sampling=reverse_scheduled_sampling, decouple_beta=0.1)


def make_official(config: Config, seed: int = 0, weight_scale: float = 3.0) -> nn.Module:
    """The official module for ``config`` with random weights (layer-norm affines too).

    PyTorch's default convolution init (uniform, bound 1/sqrt(fan_in)) is scaled by
    ``weight_scale`` so that the predictions are of order 1 and a layout error cannot hide
    below the tolerance.
    """
    torch.manual_seed(seed)
    network = build_official_network(config)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Conv2d):  # O(1) outputs make the tolerance meaningful
                module.weight.mul_(weight_scale)
            if isinstance(module, nn.LayerNorm):  # default 1 and 0 would hide layout errors
                module.weight.copy_(1.0 + 0.3 * torch.randn_like(module.weight))
                module.bias.copy_(0.3 * torch.randn_like(module.bias))
    return network.eval()


def save_official(network: nn.Module, path: str) -> str:
    """As the official model_factory.save."""
    stats = {}
    stats["net_param"] = network.state_dict()
    torch.save(stats, path)
    return path


def make_mask(kind: str, config: Config, batch: int, rng: np.random.Generator) -> np.ndarray:
    length = mask_length(config.reverse_scheduled_sampling, config.input_length,
                         config.total_length)
    if kind == "all_true":
        return np.ones([batch, length], np.float32)
    if kind == "autoregressive":
        return forecast_mask(batch, config.reverse_scheduled_sampling, config.input_length,
                             config.total_length).numpy()
    return (rng.random([batch, length]) < 0.5).astype(np.float32)


def run_official(network: nn.Module, frames: np.ndarray, mask: np.ndarray, config: Config):
    """Official forward on image-space frames; returns (image-space predictions, decouple)."""
    patches = reshape_patch(frames, config.patch_size)
    with torch.no_grad():
        next_frames, _, decouple = network(torch.from_numpy(patches),
                                           torch.from_numpy(official_mask(mask, config)))
    return reshape_patch_back(next_frames.numpy(), config.patch_size), float(decouple)


def run_ours(model, frames: np.ndarray, mask: np.ndarray):
    predictions, decouple = model(frames, mask, training=False)
    return predictions.numpy(), float(np.mean(decouple.numpy()))


def official_state_dict(network: nn.Module) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in network.state_dict().items()}


def imported_model(config: Config, path: str):
    model = build_model(config)
    pytorch.load_state_dict(model, pytorch.read_torch_checkpoint(path), config, path)
    return model


# ---------------------------------------------------------------------------------------
# Parity.
# ---------------------------------------------------------------------------------------

PARITY_CASES = [
    pytest.param(model_name, layer_norm, patch_size,
                 id=f"{model_name}-{'ln' if layer_norm else 'noln'}-p{patch_size}")
    for model_name in ("predrnn_v2", "predrnn")
    for layer_norm in (False, True)
    for patch_size in (1, 4)
]


@pytest.mark.parametrize("model_name, layer_norm, patch_size", PARITY_CASES)
def test_imported_checkpoint_matches_official_forward(tmp_path, model_name, layer_norm,
                                                      patch_size):
    config = make_config(model_name, layer_norm, patch_size)
    network = make_official(config)
    path = save_official(network, str(tmp_path / "model.ckpt-10"))
    model = imported_model(config, path)
    rng = np.random.default_rng(1)
    frames = rng.random([2, config.total_length, 16, 16, 1], dtype=np.float32)
    outputs = {}
    for kind in ("all_true", "autoregressive", "random"):
        mask = make_mask(kind, config, 2, rng)
        expected, expected_decouple = run_official(network, frames, mask, config)
        predictions, decouple = run_ours(model, frames, mask)
        assert predictions.shape == (2, config.total_length - 1, 16, 16, 1)
        difference = np.max(np.abs(predictions - expected))
        assert difference < PREDICTION_TOLERANCE, f"{kind}: max abs diff {difference}"
        assert abs(decouple - expected_decouple) < DECOUPLE_TOLERANCE, kind
        if model_name == "predrnn_v2":
            assert expected_decouple > 0.01  # a real value, not the zero of v1
        outputs[kind] = expected
    # The masks really change the unroll, so each one tests the input mixing.
    assert np.max(np.abs(outputs["all_true"] - outputs["autoregressive"])) > 1e-3


@pytest.mark.parametrize("model_name, reverse", [("predrnn_v2", False), ("predrnn", True)])
def test_parity_in_the_other_mask_layout_with_color_frames(tmp_path, model_name, reverse):
    config = make_config(model_name, layer_norm=True, patch_size=4, img_channel=2,
                         reverse_scheduled_sampling=reverse)
    network = make_official(config, seed=3)
    path = save_official(network, str(tmp_path / "model.ckpt"))
    model = imported_model(config, path)
    rng = np.random.default_rng(4)
    frames = rng.random([3, config.total_length, 16, 16, 2], dtype=np.float32)
    for kind in ("autoregressive", "random"):
        mask = make_mask(kind, config, 3, rng)
        expected, expected_decouple = run_official(network, frames, mask, config)
        predictions, decouple = run_ours(model, frames, mask)
        assert np.max(np.abs(predictions - expected)) < PREDICTION_TOLERANCE, kind
        assert abs(decouple - expected_decouple) < DECOUPLE_TOLERANCE, kind


def test_parity_check_detects_a_wrong_kernel_layout(tmp_path, monkeypatch):
    """The parity test can fail: swapping kh and kw in the mapping breaks it."""
    config = make_config("predrnn_v2", layer_norm=True, patch_size=4)
    network = make_official(config)
    path = save_official(network, str(tmp_path / "model.ckpt"))
    monkeypatch.setattr(pytorch, "_CONV_TO_KERAS", (3, 2, 1, 0))
    model = imported_model(config, path)
    rng = np.random.default_rng(1)
    frames = rng.random([2, config.total_length, 16, 16, 1], dtype=np.float32)
    mask = make_mask("random", config, 2, rng)
    expected, _ = run_official(network, frames, mask, config)
    predictions, _ = run_ours(model, frames, mask)
    assert np.max(np.abs(predictions - expected)) > 100 * PREDICTION_TOLERANCE


# ---------------------------------------------------------------------------------------
# Layout checks and mapping.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["predrnn_v2", "predrnn"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_expected_shapes_match_the_official_state_dict(model_name, layer_norm):
    config = make_config(model_name, layer_norm, patch_size=4, img_channel=2)
    network = make_official(config)
    official = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    assert pytorch.expected_shapes(config) == official
    assert list(pytorch.expected_shapes(config)) == list(official)  # same key order


def test_mapping_round_trip_is_exact():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal([56, 16, 3, 3]).astype(np.float32)
    affine = rng.standard_normal([56, 4, 4]).astype(np.float32)
    assert pytorch.to_keras(kernel, "conv").shape == (3, 3, 16, 56)
    assert pytorch.to_keras(affine, "norm").shape == (4, 4, 56)
    np.testing.assert_array_equal(
        pytorch.to_torch(pytorch.to_keras(kernel, "conv"), "conv"), kernel)
    np.testing.assert_array_equal(
        pytorch.to_torch(pytorch.to_keras(affine, "norm"), "norm"), affine)
    # Spot-check the meaning: torch [out=5, in=7, row=2, col=1] is keras [row, col, in, out].
    assert pytorch.to_keras(kernel, "conv")[2, 1, 7, 5] == kernel[5, 7, 2, 1]
    assert pytorch.to_keras(affine, "norm")[3, 1, 9] == affine[9, 3, 1]


def shapes_of(network):
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


def assert_one_line_error(config, shapes, *fragments):
    with pytest.raises(pytorch.CheckpointFormatError) as error:
        pytorch.check_shapes(shapes, config, source="model.ckpt-5")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("model.ckpt-5: ")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_key_is_named():
    config = make_config("predrnn_v2", layer_norm=True)
    shapes = shapes_of(make_official(config))
    del shapes["cell_list.1.conv_m.0.weight"]
    assert_one_line_error(config, shapes, "missing key 'cell_list.1.conv_m.0.weight'")


def test_v1_checkpoint_for_a_v2_config_names_the_adapter():
    v1_shapes = shapes_of(make_official(make_config("predrnn")))
    assert_one_line_error(make_config("predrnn_v2"), v1_shapes, "missing key 'adapter.weight'",
                          "--model_name=predrnn")


def test_unexpected_key_is_named():
    v2_shapes = shapes_of(make_official(make_config("predrnn_v2")))
    assert_one_line_error(make_config("predrnn"), v2_shapes, "unexpected key 'adapter.weight'",
                          "--model_name=predrnn_v2")


def test_layer_norm_checkpoint_for_a_plain_config_is_refused():
    shapes = shapes_of(make_official(make_config("predrnn_v2", layer_norm=True)))
    assert_one_line_error(make_config("predrnn_v2", layer_norm=False), shapes,
                          "unexpected key 'cell_list.0.conv_x.1.weight'", "--layer_norm=true")


def test_wrong_shape_is_named_with_both_shapes():
    config = make_config("predrnn_v2")
    shapes = shapes_of(make_official(config))
    other = make_config("predrnn_v2", num_hidden=(16, 16))
    assert_one_line_error(other, shapes, "wrong shape for 'cell_list.0.conv_x.0.weight'",
                          "got [56, 16, 3, 3]", "expected [112, 16, 3, 3]")


def test_wrong_image_width_is_caught_on_the_layer_norm():
    config = make_config("predrnn_v2", layer_norm=True)
    shapes = shapes_of(make_official(config))
    assert_one_line_error(config.replace(img_width=32), shapes,
                          "wrong shape for 'cell_list.0.conv_x.1.weight'", "expected [56, 8, 8]")


def test_models_without_official_layout_are_refused():
    with pytest.raises(pytorch.CheckpointFormatError, match="--model_name=convlstm"):
        pytorch.weight_specs(make_config("predrnn").replace(model_name="convlstm"))
    with pytest.raises(pytorch.CheckpointFormatError, match="memory_bottom_up"):
        pytorch.weight_specs(make_config("predrnn").replace(memory_bottom_up=False))


def test_unreadable_files_give_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(pytorch.CheckpointFormatError, match="not a readable PyTorch"):
        pytorch.read_torch_checkpoint(str(garbage))
    with pytest.raises(pytorch.CheckpointFormatError, match="does not exist"):
        pytorch.read_torch_checkpoint(str(tmp_path / "absent.ckpt"))
    listing = tmp_path / "list.ckpt"
    torch.save({"net_param": [1, 2]}, str(listing))
    with pytest.raises(pytorch.CheckpointFormatError, match="net_param"):
        pytorch.read_torch_checkpoint(str(listing))


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match="pip install torch==2.13.0"):
        pytorch.import_torch()


def test_library_round_trip_torch_to_keras_to_torch_is_bit_exact(tmp_path):
    config = make_config("predrnn_v2", layer_norm=True, patch_size=4, img_channel=2)
    network = make_official(config)
    path = save_official(network, str(tmp_path / "model.ckpt"))
    model = imported_model(config, path)
    written = pytorch.write_torch_checkpoint(
        pytorch.model_state_dict(model, config), str(tmp_path / "back.ckpt"))
    original = official_state_dict(network)
    back = pytorch.read_torch_checkpoint(written)
    assert list(back) == list(original)
    for key, value in original.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    # The official code loads it with the strict load_state_dict.
    reloaded = make_official(config, seed=9)
    reloaded.load_state_dict(torch.load(written, weights_only=True)["net_param"])


# ---------------------------------------------------------------------------------------
# The command-line tools, end to end.
# ---------------------------------------------------------------------------------------


def run_tool(script: str, *arguments: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", script),
                           *arguments], capture_output=True, text=True, env=environment,
                          cwd=REPO_ROOT, timeout=300)


def write_flagfile(path, config: Config) -> str:
    lines = [
        f"--model_name={config.model_name}",
        f"--num_hidden={','.join(str(size) for size in config.num_hidden)}",
        f"--filter_size={config.filter_size}",
        f"--patch_size={config.patch_size}",
        f"--layer_norm={str(config.layer_norm).lower()}",
        f"--img_width={config.img_width}",
        f"--img_channel={config.img_channel}",
        f"--input_length={config.input_length}",
        f"--total_length={config.total_length}",
        f"--reverse_scheduled_sampling={str(config.reverse_scheduled_sampling).lower()}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_tools_import_then_export_round_trip(tmp_path):
    config = make_config("predrnn_v2", layer_norm=True, patch_size=4)
    network = make_official(config)
    checkpoint = save_official(network, str(tmp_path / "model.ckpt-80000"))
    flagfile = write_flagfile(tmp_path / "tiny.flags", config)
    workdir = str(tmp_path / "imported")

    result = run_tool("import_pytorch_checkpoint.py", f"--checkpoint={checkpoint}",
                      f"--flagfile={flagfile}", f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(os.path.join(workdir, "config.json"))

    model, restored_config = restore(workdir)
    assert restored_config.num_hidden == config.num_hidden
    assert restored_config.layer_norm
    rng = np.random.default_rng(2)
    frames = rng.random([2, config.total_length, 16, 16, 1], dtype=np.float32)
    mask = make_mask("autoregressive", config, 2, rng)
    expected, expected_decouple = run_official(network, frames, mask, config)
    predictions, decouple = run_ours(model, frames, mask)
    assert np.max(np.abs(predictions - expected)) < PREDICTION_TOLERANCE
    assert abs(decouple - expected_decouple) < DECOUPLE_TOLERANCE

    import tensorflow as tf

    from predrnn_tf.checkpoints import latest_checkpoint
    step = tf.train.load_variable(latest_checkpoint(workdir), "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == 80000

    # Continued training restores the same checkpoint (weights, optimizer, step, generator).
    from predrnn_tf.training.trainer import Trainer
    trainer = Trainer(restored_config, workdir, tf.distribute.get_strategy())
    trainer.make_checkpoint()
    assert trainer.restore_or_initialize() == 80000
    kernel = trainer.model.cells[1].conv_m.kernel.numpy()
    expected_kernel = network.state_dict()["cell_list.1.conv_m.0.weight"].numpy()
    np.testing.assert_array_equal(kernel, expected_kernel.transpose(2, 3, 1, 0))

    output = str(tmp_path / "exported" / "model.ckpt-80000")
    result = run_tool("export_pytorch_checkpoint.py", f"--workdir={workdir}", f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    exported = torch.load(output, weights_only=True)
    assert list(exported) == ["net_param"]
    original = network.state_dict()
    assert list(exported["net_param"]) == list(original)
    for key, value in original.items():
        assert torch.equal(exported["net_param"][key], value), key


def test_import_tool_refuses_a_mismatched_checkpoint_cleanly(tmp_path):
    config = make_config("predrnn_v2")
    checkpoint = save_official(make_official(make_config("predrnn")), str(tmp_path / "v1.ckpt"))
    flagfile = write_flagfile(tmp_path / "tiny.flags", config)
    workdir = tmp_path / "imported"
    result = run_tool("import_pytorch_checkpoint.py", f"--checkpoint={checkpoint}",
                      f"--flagfile={flagfile}", f"--workdir={workdir}")
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "missing key 'adapter.weight'" in error_lines[-1]
    assert "Traceback" not in result.stderr
    assert not workdir.exists()
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".imported")]
    assert not leftovers


def test_an_interrupted_official_training_run_continues_exactly(tmp_path):
    """tools/fidelity.py --mode=train resumes the official run from OfficialModel.save and
    OfficialOrder.get_state: the updates after a restore equal those of one run."""
    from predrnn_tf.analysis.fidelity import OfficialOrder, official_reverse_mask
    from predrnn_tf.interop.official_predrnn import OfficialModel

    config = make_config().replace(batch_size=2)
    sequences = np.random.default_rng(0).random((6, 7, 16, 16, 1)).astype(np.float32)

    def train(model, order, rng, iterations):
        for iteration in iterations:
            mask = official_mask(official_reverse_mask(config, iteration, rng), config)
            model.train(reshape_patch(sequences[order.next_indices()], 4), mask)

    def fresh():
        torch.manual_seed(0)
        return OfficialModel(config), OfficialOrder(6, 2, 0), np.random.default_rng(1)

    straight = fresh()
    train(*straight, range(1, 5))
    first = fresh()
    train(*first, range(1, 3))
    path = str(tmp_path / "official.pt")
    first[0].save(path, order=first[1].get_state(), masks=first[2].bit_generator.state)
    resumed = fresh()
    extra = resumed[0].load(path)
    resumed[1].set_state(extra["order"])
    resumed[2].bit_generator.state = extra["masks"]
    train(*resumed, range(3, 5))
    for name, value in straight[0].network.state_dict().items():
        np.testing.assert_array_equal(resumed[0].network.state_dict()[name].numpy(),
                                      value.numpy(), err_msg=name)
    assert not os.path.exists(path + ".tmp")


def test_official_updates_in_channels_last_equal_the_official_layout(tmp_path):
    """tools/fidelity.py trains the official model with NHWC weights (much faster on CPU):
    the same updates as the NCHW network, to float32 rounding, and its state file resumes."""
    from predrnn_tf.interop.official_predrnn import OfficialModel

    config = make_config(num_hidden=(8, 8)).replace(batch_size=2)
    rng = np.random.default_rng(0)
    batches = [reshape_patch(rng.random((2, 7, 16, 16, 1)).astype(np.float32), 4)
               for _ in range(3)]
    masks = [official_mask((rng.random((2, mask_length(True, 3, 7))) < 0.5)
                           .astype(np.float32), config) for _ in range(3)]

    def trained(memory_format):
        torch.manual_seed(0)
        model = OfficialModel(config, memory_format=memory_format)
        losses = [float(model.train(frames, mask)) for frames, mask in zip(batches, masks)]
        return model, losses

    plain, plain_losses = trained(torch.contiguous_format)
    nhwc, nhwc_losses = trained(torch.channels_last)
    kernel = nhwc.network.cell_list[0].conv_x[0].weight  # [56, 16, 3, 3]
    assert kernel.is_contiguous(memory_format=torch.channels_last)
    assert not kernel.is_contiguous()
    np.testing.assert_allclose(nhwc_losses, plain_losses, rtol=1e-5)
    for name, value in plain.network.state_dict().items():
        np.testing.assert_allclose(nhwc.network.state_dict()[name].numpy(), value.numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    path = str(tmp_path / "nhwc.pt")
    nhwc.save(path, iteration=3)
    torch.manual_seed(1)
    reloaded = OfficialModel(config, memory_format=torch.channels_last)
    assert reloaded.load(path) == {"iteration": 3}
    frames, mask = batches[0], masks[0]
    assert float(reloaded.train(frames, mask)) == float(nhwc.train(frames, mask))
