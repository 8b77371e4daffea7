"""OpenSTL MIM checkpoints through the import and export tools (Table 3's model)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIM_FLAGS = ["--model_name=mim", "--num_hidden=4,4,4", "--filter_size=3", "--patch_size=2",
             "--img_width=8", "--img_channel=1", "--input_length=2", "--total_length=5",
             "--reverse_scheduled_sampling=false", "--layer_norm=true"]


def run_tool(name, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", name), *args],
                          capture_output=True, text=True, timeout=600)


def test_openstl_mim_imports_forecasts_the_same_and_exports_back(tmp_path):
    torch = pytest.importorskip("torch")
    import tensorflow as tf

    import predrnn_tf
    from predrnn_tf.config import Config
    from predrnn_tf.masks import forecast_mask
    from tools import openstl_mim_reference as reference

    config = Config(model_name="mim", num_hidden=(4, 4, 4), filter_size=3, patch_size=2,
                    img_width=8, input_length=2, total_length=5, layer_norm=True,
                    reverse_scheduled_sampling=False, decouple_beta=0.0)
    torch.manual_seed(0)
    network = reference.build_openstl_mim(config).eval()
    lightning = {"state_dict": {f"model.{key}": value
                                for key, value in network.state_dict().items()}}
    checkpoint = str(tmp_path / "best.ckpt")
    torch.save(lightning, checkpoint)
    workdir = str(tmp_path / "imported")
    completed = run_tool("import_pytorch_checkpoint.py", f"--checkpoint={checkpoint}",
                         f"--workdir={workdir}", "--checkpoint_format=openstl",
                         "--decouple_beta=0", *MIM_FLAGS)
    assert completed.returncode == 0, completed.stderr[-2000:]

    frames = np.random.default_rng(0).random((2, 5, 8, 8, 1)).astype(np.float32)
    mask = np.asarray(forecast_mask(2, False, 2, 5))
    expected = reference.run_openstl(network, frames, mask, config)[:, 1:]
    model, _ = predrnn_tf.restore(workdir)
    ours = model.forecast(tf.constant(frames[:, :2])).numpy()
    assert np.max(np.abs(ours - expected)) < 1e-4

    exported = str(tmp_path / "exported.pth")
    completed = run_tool("export_pytorch_checkpoint.py", f"--workdir={workdir}",
                         f"--output={exported}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "OpenSTL MIM_Model state dict" in completed.stdout
    state = torch.load(exported, weights_only=True)
    reloaded = reference.build_openstl_mim(config)
    reloaded.load_state_dict(state)  # strict: every OpenSTL key, nothing else
    for key, value in network.state_dict().items():
        if not key.endswith("conv_last.weight") or not key.startswith("stlstm_layer_diff."):
            np.testing.assert_array_equal(state[key].numpy(), value.numpy(), err_msg=key)


def test_openstl_format_needs_mim(tmp_path):
    pytest.importorskip("torch")
    completed = run_tool("import_pytorch_checkpoint.py", f"--checkpoint={tmp_path / 'x.pth'}",
                         f"--workdir={tmp_path / 'w'}", "--checkpoint_format=openstl",
                         "--model_name=predrnn_v2")
    assert completed.returncode == 2
    assert "is not an OpenSTL MIM; use --model_name=mim" in completed.stderr
