"""tf.distribute: two logical CPU devices and two local workers give the default results.

Logical devices must be configured before TensorFlow initialises its devices, so these
checks run in fresh subprocesses.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.training.fault_tolerance import read_loss_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=4, lr=3e-3, max_iterations=3, reverse_input=False,
              display_interval=100, test_interval=100, snapshot_interval=100, log_every=1,
              num_test_batches=1, r_sampling_step_1=2, r_sampling_step_2=10, r_exp_alpha=2.0,
              shuffle_buffer=16, deterministic=True)

MIRRORED_SCRIPT = r"""
import json, os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from predrnn_tf.training import loop
from predrnn_tf.config import Config
from predrnn_tf.training.fault_tolerance import read_loss_log

base, root = Config.from_dict(json.loads(sys.argv[1])), sys.argv[2]
mirrored = base.replace(distribution_strategy="mirrored")
out = {}
loop.train_and_evaluate(base, os.path.join(root, "default"))
out["default"] = read_loss_log(os.path.join(root, "default", "losses.jsonl"))
# Mirrored: 2 steps, then a resume (the input position is replayed, not checkpointed).
loop.train_and_evaluate(mirrored.replace(max_iterations=2), os.path.join(root, "mirrored"))
loop.train_and_evaluate(mirrored, os.path.join(root, "mirrored"))
out["mirrored"] = read_loss_log(os.path.join(root, "mirrored", "losses.jsonl"))
strategy = loop.make_strategy(mirrored)
trainer = loop.Trainer(mirrored, os.path.join(root, "scope"), strategy)
out["replicas"] = strategy.num_replicas_in_sync
out["optimizer_variables_in_scope"] = [
    strategy.extended.variable_created_in_scope(v.value) for v in trainer.optimizer.variables]
out["model_variables_in_scope"] = [
    strategy.extended.variable_created_in_scope(v.value) for v in trainer.model.weights]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("synthetic"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=64, num_test=8)
    return path


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def test_mirrored_on_two_cpus_matches_the_default_strategy(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir)
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, json.dumps(config.to_dict()), str(tmp_path)],
        env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert out["replicas"] == 2
    assert out["optimizer_variables_in_scope"] and all(out["optimizer_variables_in_scope"])
    assert all(out["model_variables_in_scope"])
    default = [out["default"][str(step)]["loss"] for step in (1, 2, 3)]
    mirrored = [out["mirrored"][str(step)]["loss"] for step in (1, 2, 3)]
    assert len(set(default)) == 3  # the steps differ, so the comparison means something
    for ours, theirs in zip(mirrored, default):
        assert ours == pytest.approx(theirs, abs=1e-5)


def test_two_local_workers_train_and_agree(data_dir, tmp_path):
    workdir, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    args = [f"--{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in TINY.replace(data_dir=data_dir).to_dict().items()
            if key != "distribution_strategy"]
    result = subprocess.run(
        [sys.executable, "tools/launch_local.py", "--num_workers=2", "--timeout=500", "--",
         f"--workdir={workdir}", *args],
        cwd=REPO, env=_env(TMPDIR=str(scratch)), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = {0: {}, 1: {}}
    for worker, step, loss in re.findall(r"\[worker (\d)\].*step (\d+)/3  loss (\S+)",
                                         result.stderr):
        losses[int(worker)][int(step)] = float(loss)
    assert sorted(losses[0]) == [1, 2, 3]
    assert losses[0] == losses[1]
    chief_log = read_loss_log(str(workdir / "losses.jsonl"))
    for step, loss in losses[0].items():
        assert chief_log[step]["loss"] == pytest.approx(loss, abs=1e-5)
    assert (workdir / "checkpoints" / "ckpt-3.index").exists()
    assert os.listdir(scratch) == []  # the other worker's temporary checkpoints are gone


SKIP_STEP_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from predrnn_tf.training import loop
from predrnn_tf.config import Config

config = Config.from_dict(json.loads(sys.argv[1]))
result = loop.train_and_evaluate(config, sys.argv[2])
print("RESULT " + json.dumps({"step": result["step"], "finite": result["train"]["finite"]}))
"""


def test_skip_step_policy_runs_under_the_mirrored_strategy(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, distribution_strategy="mirrored", lr=1e30,
                          nan_policy="skip_step", deterministic=False)
    result = subprocess.run(
        [sys.executable, "-c", SKIP_STEP_SCRIPT, json.dumps(config.to_dict()),
         str(tmp_path / "run")], env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert out["step"] == config.max_iterations
    assert out["finite"] == 0.0  # the last steps were skipped on both replicas
