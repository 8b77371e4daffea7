"""The paper's analyses: Fig. 8 gradients (against finite differences), Fig. 3 separation
scores, and the two tools on a quickstart-size work directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.analysis import gradients, memory, probes
from predrnn_tf.config import Config
from predrnn_tf.models.builder import build_model
from predrnn_tf.training.schedules import forecast_mask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(model_name="predrnn_v2", **changes) -> Config:
    values = dict(model_name=model_name, num_hidden=(3, 3), filter_size=3, patch_size=2,
                  img_width=8, input_length=3, total_length=6, reverse_scheduled_sampling=True)
    values.update(changes)
    return Config(**values)


def float64_model(config: Config):
    """The model of ``config`` computing in float64 (tight finite differences)."""
    from predrnn_tf.models.mim import MIM
    from predrnn_tf.models.predrnn import PredRNN

    common = dict(num_hidden=config.num_hidden, filter_size=config.filter_size,
                  patch_size=config.patch_size, input_length=config.input_length,
                  total_length=config.total_length, reverse_scheduled_sampling=True)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        if config.model_name == "mim":
            # OpenSTL detaches MIM-S's memory S; finite differences see through it.
            model = MIM(decouple=True, stop_stationary_gradient=False, **common)
        else:
            model = PredRNN(model_name=config.model_name, **common)
    finally:
        keras.config.set_dtype_policy(previous)
    model.build((None, config.total_length, config.img_width, config.img_width, 1))
    return model


@pytest.mark.parametrize("model_name", ["predrnn_v2", "mim"])
def test_hidden_state_gradients_match_finite_differences(model_name):
    config = tiny_config(model_name)
    keras.utils.set_random_seed(0)  # the same weights whatever ran before in this process
    model = float64_model(config)
    frames = tf.random.stateless_uniform([2, 6, 8, 8, 1], seed=[1, 2], dtype=tf.float32)
    mask = forecast_mask(config, 2)
    norms = gradients.hidden_state_gradients(model, frames, mask, loss_frames=[6, 5])
    steps = 5
    zeros = [tf.zeros([2, 4, 4, 3], tf.float64) for _ in range(steps)]
    rng = np.random.default_rng(0)
    for step in (0, 2, 3):  # H_1, H_3 (context) and H_4 (forecast)
        with tf.GradientTape() as tape:
            tape.watch(zeros[step])
            loss = tf.reduce_sum(gradients.perturbed_unroll(model, frames, mask, zeros)[:, 4])
        gradient = tape.gradient(loss, zeros[step]).numpy()
        np.testing.assert_allclose(np.linalg.norm(gradient.reshape(2, -1), axis=1),
                                   norms[6][:, step], rtol=1e-6)
        direction = rng.standard_normal(gradient.shape)
        h = 1e-3

        def loss_at(scale, step=step, direction=direction):
            shifted = list(zeros)
            shifted[step] = tf.constant(scale * direction)
            return float(tf.reduce_sum(
                gradients.perturbed_unroll(model, frames, mask, shifted)[:, 4]))

        finite_difference = (loss_at(h) - loss_at(-h)) / (2 * h)
        analytic = float(np.sum(gradient * direction))
        assert finite_difference == pytest.approx(analytic, rel=2e-3, abs=1e-9)
    # L_5 (prediction index 3) cannot depend on H_5 (step 4), which comes later.
    assert np.all(norms[5][:, 4] == 0.0) and np.all(norms[5][:, 3] > 0.0)


def test_gradient_curves_have_the_papers_axes():
    config = tiny_config()
    model = build_model(config)
    batches = [tf.random.stateless_uniform([2, 6, 8, 8, 1], seed=[3, 4])] * 2
    result = gradients.gradient_curves(model, config, batches, num_sequences=3)
    assert result["num_sequences"] == 3
    assert result["memory_flow"]["t"] == [1, 2, 3, 4, 5]
    assert result["reverse_sampling"]["t"] == [4, 5, 6]
    assert max(result["memory_flow"]["norm_normalised"]) == pytest.approx(1.0)
    assert all(value > 0 for value in result["reverse_sampling"]["norm"])


def test_probe_restores_the_cell_and_leaves_the_model_unchanged():
    config = tiny_config()
    model = build_model(config)
    frames = tf.random.stateless_uniform([1, 6, 8, 8, 1], seed=[5, 6])
    mask = forecast_mask(config, 1)
    before = model(frames, mask)[0].numpy()
    increments = memory.batch_increments(model, frames, mask)
    assert len(increments) == 2 and len(increments[0]) == 5
    assert increments[0][0][0].shape == (1, 4, 4, 3)
    assert "call" not in vars(model.cells[0])
    np.testing.assert_array_equal(model(frames, mask)[0].numpy(), before)


def test_separation_scores_tell_separable_from_intertwined():
    rng = np.random.default_rng(0)
    count = 40
    centre = rng.standard_normal(16)

    def collected(offset):
        c = rng.standard_normal((count, 16)) * 0.3 + centre
        m = rng.standard_normal((count, 16)) * 0.3 + centre + offset
        return {"features": np.concatenate([c, m]), "is_m": np.repeat([0.0, 1.0], count),
                "layer": np.zeros(2 * count), "step": np.zeros(2 * count),
                "sequence": np.tile(np.arange(count), 2), "cosine": np.zeros(count)}

    apart = memory.separation_scores(collected(3.0 * np.eye(16)[0]))["pooled"]
    mixed = memory.separation_scores(collected(np.zeros(16)))["pooled"]
    assert apart["linear_probe_accuracy"] == 1.0 and apart["silhouette"] > 0.5
    assert mixed["linear_probe_accuracy"] < 0.75 and abs(mixed["silhouette"]) < 0.1


def test_models_without_increments_are_refused():
    model = build_model(tiny_config("convlstm", reverse_scheduled_sampling=False))
    with pytest.raises(ValueError, match="no ST-LSTM or MIM cells"):
        probes.increment_cells(model)


# ------------------------------------------------------------------ tools on a workdir


@pytest.fixture(scope="module")
def quickstart_workdir(tmp_path_factory):
    """The quickstart's model size (2 x 32, 64 x 64, patch 4, 5 + 5 frames), untrained."""
    from predrnn_tf import checkpoints
    from predrnn_tf.config import save_config
    from predrnn_tf.data import schema

    root = tmp_path_factory.mktemp("analysis")
    data_dir, workdir = str(root / "data"), str(root / "workdir")
    frames = (np.random.default_rng(0).random((16, 10, 64, 64, 1)) * 255).astype(np.uint8)
    for split in ("train", "test"):
        with schema.ShardedWriter(data_dir, "toy", split) as writer:
            for sequence in frames:
                writer.write(sequence)
    schema.write_metadata(data_dir, "toy", {
        "image_height": 64, "image_width": 64, "channels": 1, "sequence_length": 10,
        "num_train": 16, "num_test": 16, "value_mapping": None, "synthetic": True})
    config = Config(model_name="predrnn_v2", num_hidden=(32, 32), filter_size=3, patch_size=4,
                    img_width=64, input_length=5, total_length=10, dataset_name="toy",
                    data_dir=data_dir)
    model = build_model(config)
    save_config(config, workdir)
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(1, dtype=tf.int64))
    checkpoints.make_manager(checkpoint, workdir).save()
    return workdir


def run_tool(name, *args):
    start = time.monotonic()
    completed = subprocess.run([sys.executable, os.path.join(REPO, "tools", name), *args],
                               capture_output=True, text=True, timeout=300)
    return completed, time.monotonic() - start


def test_analyze_gradients_tool(quickstart_workdir, tmp_path):
    completed, seconds = run_tool("analyze_gradients.py", f"--workdir={quickstart_workdir}",
                                  f"--output_dir={tmp_path}", "--num_sequences=8")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert seconds < 600, f"took {seconds:.0f} s"  # a hang guard; timings: BUILD.md
    result = json.loads((tmp_path / "gradients.json").read_text())["workdir"]
    assert len(result["memory_flow"]["norm"]) == 9 and len(result["reverse_sampling"]["norm"]) == 5
    assert (tmp_path / "gradients.png").stat().st_size > 1000


def test_analyze_memory_tool(quickstart_workdir, tmp_path):
    completed, seconds = run_tool("analyze_memory.py", f"--workdir={quickstart_workdir}",
                                  f"--output_dir={tmp_path}", "--num_sequences=8")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert seconds < 600, f"took {seconds:.0f} s"  # a hang guard; timings: BUILD.md
    assert "linear probe accuracy" in completed.stdout
    result = json.loads((tmp_path / "memory.json").read_text())["workdir"]
    assert 0.0 <= result["pooled"]["linear_probe_accuracy"] <= 1.0
    assert set(result["per_layer"]) == {"0", "1"}
    sklearn = pytest.importorskip("sklearn")
    assert sklearn and (tmp_path / "memory_tsne.png").exists()


def test_tools_give_one_line_errors(tmp_path):
    completed, _ = run_tool("analyze_gradients.py", f"--workdir={tmp_path}",
                            f"--output_dir={tmp_path / 'out'}")
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("error:") and "config.json" in completed.stderr
