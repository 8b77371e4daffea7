import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import predrnn_tf
from predrnn_tf import checkpoints
from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.training import loop
from predrnn_tf.training.trainer import Trainer, make_optimizer
from predrnn_tf.workdir import restore

TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=2, max_iterations=2, reverse_input=False,
              display_interval=2, test_interval=2, snapshot_interval=2, num_test_batches=1,
              shuffle_buffer=8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("synthetic"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=16, num_test=4)
    return path


def test_restore_rebuilds_the_trained_model(data_dir, tmp_path):
    workdir = str(tmp_path)
    loop.train_and_evaluate(TINY.replace(data_dir=data_dir), workdir)
    model, config = restore(workdir)
    assert config.num_hidden == (4, 4) and config.data_dir == data_dir
    again, _ = predrnn_tf.restore(workdir)  # the public name of the same door
    frames = np.random.default_rng(0).random((2, 3, 16, 16, 1)).astype(np.float32)
    first = predrnn_tf.forecast(model, frames).numpy()
    assert first.shape == (2, 3, 16, 16, 1)
    np.testing.assert_array_equal(first, again.forecast(frames).numpy())
    fresh = predrnn_tf.build_model(config)
    assert np.abs(fresh.forecast(frames).numpy() - first).max() > 1e-6  # weights were loaded


def test_restore_errors_name_the_workdir(tmp_path):
    with pytest.raises(predrnn_tf.ConfigError, match="not a training workdir"):
        restore(str(tmp_path))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_runs_with_float32_losses(data_dir, tmp_path, precision):
    result = loop.train_and_evaluate(TINY.replace(data_dir=data_dir, precision=precision),
                                          str(tmp_path))
    assert result["step"] == 2
    assert np.isfinite(result["train"]["loss"]) and np.isfinite(result["mse"])


# --- a missing state file or a damaged newest checkpoint never costs the run (issue 13) ---

RESUMABLE = TINY.replace(max_iterations=4, snapshot_interval=2, test_interval=100,
                         display_interval=100, log_every=1)


@pytest.fixture(scope="module")
def trained_run(data_dir, tmp_path_factory):
    """A run with ckpt-2 and ckpt-4 (and its loss log), copied by each test."""
    workdir = str(tmp_path_factory.mktemp("trained"))
    loop.train_and_evaluate(RESUMABLE.replace(data_dir=data_dir), workdir)
    return workdir


def _copy_run(trained_run, tmp_path):
    import shutil
    workdir = str(tmp_path / "run")
    shutil.copytree(trained_run, workdir)
    return workdir


def _checkpoint_files(workdir):
    return sorted(name for name in os.listdir(os.path.join(workdir, "checkpoints"))
                  if name.startswith("ckpt-"))


def _truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


def test_a_missing_state_file_resumes_from_the_newest_checkpoint(trained_run, data_dir,
                                                                 tmp_path):
    workdir = _copy_run(trained_run, tmp_path)
    files_before = _checkpoint_files(workdir)
    os.remove(os.path.join(workdir, "checkpoints", "checkpoint"))
    losses = open(os.path.join(workdir, "losses.jsonl")).read()
    assert checkpoints.latest_checkpoint(workdir).endswith("ckpt-4")
    result = loop.train_and_evaluate(
        RESUMABLE.replace(data_dir=data_dir, max_iterations=6), workdir)
    assert result["step"] == 6  # resumed at 4, not restarted from 0
    assert set(files_before) <= set(_checkpoint_files(workdir))  # nothing deleted
    assert open(os.path.join(workdir, "losses.jsonl")).read().startswith(losses)


@pytest.mark.parametrize("damage", ["truncate_index", "truncate_data", "delete_files"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_intact_one(trained_run, data_dir,
                                                                  tmp_path, caplog, damage):
    workdir = _copy_run(trained_run, tmp_path)
    prefix = os.path.join(workdir, "checkpoints", "ckpt-4")
    if damage == "truncate_index":
        _truncate(prefix + ".index")
    elif damage == "truncate_data":
        _truncate(glob.glob(prefix + ".data-*")[0])
    else:  # the state file still names ckpt-4
        for path in glob.glob(prefix + ".*"):
            os.remove(path)
    caplog.set_level("WARNING")
    assert checkpoints.latest_checkpoint(workdir).endswith("ckpt-2")
    warnings = [record.getMessage() for record in caplog.records if "ckpt-4" in record.getMessage()]
    assert len(warnings) == 1 and "newest intact one" in warnings[0], warnings
    model, _ = restore(workdir)  # evaluate/export take the same fallback
    assert model is not None
    result = loop.train_and_evaluate(RESUMABLE.replace(data_dir=data_dir), workdir)
    assert result["step"] == 4  # trained again from step 2 to 4


def test_every_checkpoint_damaged_is_an_error_that_keeps_them(trained_run, tmp_path):
    workdir = _copy_run(trained_run, tmp_path)
    for path in glob.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index")):
        _truncate(path)
    before = _checkpoint_files(workdir)
    with pytest.raises(predrnn_tf.errors.CheckpointError, match="no intact checkpoint") as raised:
        checkpoints.latest_checkpoint(workdir)
    assert "new --workdir" not in str(raised.value)
    assert _checkpoint_files(workdir) == before


def test_the_shape_check_writes_no_probe_checkpoint(trained_run, data_dir, tmp_path,
                                                    monkeypatch):
    """Resuming compares variable names and shapes without writing anything anywhere."""
    import tempfile
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    workdir = _copy_run(trained_run, tmp_path)
    saves = []
    original = tf.train.Checkpoint.save
    monkeypatch.setattr(tf.train.Checkpoint, "write",
                        lambda *args, **kwargs: saves.append(args) or None)
    monkeypatch.setattr(tf.train.Checkpoint, "save",
                        lambda *args, **kwargs: saves.append(args) or original(*args, **kwargs))
    trainer = Trainer(RESUMABLE.replace(data_dir=data_dir), workdir,
                      tf.distribute.get_strategy())
    trainer.make_checkpoint()
    assert trainer.restore_or_initialize() == 4
    assert saves == [] and os.listdir(temporary) == []
    other = Trainer(RESUMABLE.replace(data_dir=data_dir, num_hidden=(8, 8)), workdir,
                    tf.distribute.get_strategy())
    other.make_checkpoint()
    with pytest.raises(predrnn_tf.errors.CheckpointError, match="holds another model"):
        other.restore_or_initialize()


def test_expected_variables_name_what_a_checkpoint_stores(trained_run):
    model, config = restore(trained_run)
    trainer_checkpoint = checkpoints.make_training_checkpoint(
        model, make_optimizer(config), tf.Variable(0, dtype=tf.int64),
        tf.random.Generator.from_seed(0))
    trainer_checkpoint.optimizer.build(model.trainable_variables)
    stored = checkpoints.stored_variables(checkpoints.latest_checkpoint(trained_run))
    expected = checkpoints.expected_variables(trainer_checkpoint)
    def weights(variables):
        return {name: shape for name, shape in variables.items()
                if name.startswith(("model/", "optimizer/")) and name.endswith("VARIABLE_VALUE")}
    assert any(name.startswith("model/") for name in weights(stored))
    assert weights(expected) == weights(stored)


def test_a_moved_workdir_resumes(data_dir, tmp_path):
    """Paths inside a workdir are stored relative to it: move the folder, resume."""
    import shutil
    first = tmp_path / "first"
    inside = first / "mydata"
    shutil.copytree(data_dir, inside)
    loop.train_and_evaluate(RESUMABLE.replace(data_dir=str(inside), max_iterations=2),
                                 str(first))
    saved = json.loads((first / "config.json").read_text())
    assert saved["data_dir"] == "mydata"
    moved = tmp_path / "moved"
    shutil.move(str(first), str(moved))
    _, config = restore(str(moved))
    assert config.data_dir == str(moved / "mydata")
    result = loop.train_and_evaluate(config.replace(max_iterations=4), str(moved))
    assert result["step"] == 4 and checkpoints.latest_checkpoint(str(moved)).endswith("ckpt-4")
