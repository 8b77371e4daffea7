import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import reader, synthetic_radar
from predrnn_tf.errors import DataError
from predrnn_tf.training import loop
from predrnn_tf.training.trainer import resume_input_seed
from predrnn_tf.workdir import WorkDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = Config(num_hidden=(8, 8), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=4, lr=3e-3, max_iterations=4, reverse_input=False,
              display_interval=2, test_interval=2, snapshot_interval=2, log_every=1,
              num_test_batches=2, r_sampling_step_1=2, r_sampling_step_2=10, r_exp_alpha=2.0,
              shuffle_buffer=16)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("synthetic"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=64, num_test=16)
    return path


def _trainer(config, data_dir, workdir):
    trainer = loop.Trainer(config, workdir, tf.distribute.get_strategy())
    trainer.make_train_iterator(data_dir)
    return trainer


def _run_steps(trainer, steps):
    step_fn = trainer.make_train_step()
    losses = []
    for _ in range(steps):
        out = step_fn(trainer.train_iterator, tf.constant(1.0), tf.constant(1.0))
        losses.append(float(out["loss"]))
    return losses


def test_a_few_steps_reduce_the_loss(data_dir, tmp_path):
    losses = _run_steps(_trainer(TINY.replace(data_dir=data_dir), data_dir, str(tmp_path)), 30)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])


def test_eager_and_tf_function_give_the_same_loss(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, deterministic=True, reverse_input=True)
    graph_loss = _run_steps(_trainer(config, data_dir, str(tmp_path / "a")), 2)
    tf.config.run_functions_eagerly(True)
    try:
        eager_loss = _run_steps(_trainer(config, data_dir, str(tmp_path / "b")), 2)
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(eager_loss, graph_loss, rtol=1e-5)


def test_resume_continues_step_and_matches_uninterrupted_run(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, deterministic=True, max_iterations=6)
    straight = loop.train_and_evaluate(config, str(tmp_path / "straight"))
    first = loop.train_and_evaluate(config.replace(max_iterations=3), str(tmp_path / "cut"))
    assert first["step"] == 3
    resumed = loop.train_and_evaluate(config, str(tmp_path / "cut"))
    assert resumed["step"] == 6
    assert resumed["train"]["loss"] == pytest.approx(straight["train"]["loss"], rel=1e-6)
    assert resumed["mse"] == pytest.approx(straight["mse"], rel=1e-5)


def test_resume_refuses_a_changed_model_shape(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, max_iterations=2)
    loop.train_and_evaluate(config, str(tmp_path))
    with pytest.raises(loop.ConfigError, match="--num_hidden"):
        loop.train_and_evaluate(config.replace(num_hidden=(4, 4)), str(tmp_path))
    result = loop.train_and_evaluate(config.replace(max_iterations=3, lr=1e-4),
                                          str(tmp_path))
    assert result["step"] == 3


def test_fair_crps_with_state_noise_keeps_the_checkpoint_of_the_plain_model(data_dir, tmp_path):
    from predrnn_tf import checkpoints
    from predrnn_tf.data import schema
    from predrnn_tf.models.builder import build_model

    gridded = str(tmp_path / "gridded")  # the synthetic data with a data card's grid
    for path in glob.glob(os.path.join(data_dir, "synthetic_radar-*.tfrecord")):
        os.makedirs(gridded, exist_ok=True)
        os.symlink(path, os.path.join(gridded, os.path.basename(path)))
    metadata = schema.read_metadata(data_dir, "synthetic_radar")
    schema.write_metadata(gridded, "synthetic_radar", {
        **metadata, "grid": {"pixel_km": 2.0, "interval_minutes": 10.0}})
    config = TINY.replace(data_dir=gridded, max_iterations=2, test_interval=100,
                          residual_frames=True, advection_prior=True, frame_loss="masked_mse",
                          ensemble_loss="fair_crps", ensemble_loss_members=3,
                          ensemble_noise_std=0.5)  # state noise: no variable of its own
    workdir = str(tmp_path / "run")
    result = loop.train_and_evaluate(config, workdir)
    assert np.isfinite(result["train"]["loss"]) and result["train"]["loss"] > 0
    crps_checkpoint = WorkDir(workdir).latest_checkpoint()
    plain = config.replace(ensemble_loss="none", ensemble_noise_std=0.0)  # same weights: resumable
    assert loop.check_resume(plain, workdir) == crps_checkpoint
    plain_trainer = loop.Trainer(plain, str(tmp_path / "plain"), tf.distribute.get_strategy())
    expected = checkpoints.expected_variables(plain_trainer._training_checkpoint(False))
    stored = set(checkpoints.stored_variables(crps_checkpoint))
    assert stored - {"_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"} \
        == set(expected)
    model = checkpoints.restore_model(plain, crps_checkpoint)  # no missing or unused weight
    assert checkpoints.stored_model_weights(crps_checkpoint) == checkpoints.model_weights(
        build_model(plain))
    assert type(model.output_head).__name__ == "RadarHead"


def test_fair_crps_without_a_grid_is_refused_before_anything_is_written(tmp_path):
    config = TINY.replace(residual_frames=True, advection_prior=True, frame_loss="masked_mse",
                          ensemble_loss="fair_crps")  # synthetic radar data has no grid
    workdir = tmp_path / "run"
    with pytest.raises(loop.ConfigError, match="--ensemble_loss=fair_crps needs the dataset"):
        loop.train_and_evaluate(config, str(workdir))
    assert not workdir.exists()  # no data generated, no .lock


def _run_train(*args, cwd=REPO):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "predrnn_tf.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_quickstart_runs_end_to_end_at_tiny_size(tmp_path):
    workdir = str(tmp_path / "run")
    result = _run_train("--flagfile=configs/quickstart.flags", f"--workdir={workdir}",
                        "--img_width=16", "--num_hidden=4,4", "--max_iterations=2",
                        "--batch_size=2", "--num_test_batches=1", "--log_every=1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SYNTHETIC" in result.stderr
    assert glob.glob(os.path.join(workdir, "checkpoints", "ckpt-2.index"))
    assert WorkDir(workdir).has_config() and WorkDir(workdir).data_card["synthetic"]
    events = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        tags.update(value.tag for value in event.summary.value)
    assert "train/loss" in tags
    assert "test/truth_over_prediction" in tags


@pytest.mark.parametrize("args,flag", [
    (["--input_length=10", "--total_length=10"], "--input_length"),
    (["--img_width=66"], "--img_width=66"),
    (["--num_hidden=32,16"], "--num_hidden"),
    (["--dataset_name=mnist", "--data_dir=/nonexistent/path"], "--data_dir=/nonexistent/path"),
])
def test_bad_flags_exit_with_one_line_naming_the_flag(tmp_path, args, flag):
    result = _run_train("--flagfile=configs/quickstart.flags", f"--workdir={tmp_path}", *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert flag in lines[0] and "Traceback" not in result.stderr


def test_adding_deterministic_on_resume_restores_without_the_input_position(data_dir, tmp_path):
    """A checkpoint without an iterator (non-deterministic or imported run) still resumes."""
    config = TINY.replace(data_dir=data_dir, max_iterations=2, test_interval=100,
                          display_interval=100)
    loop.train_and_evaluate(config, str(tmp_path))
    result = loop.train_and_evaluate(config.replace(deterministic=True, max_iterations=3),
                                          str(tmp_path))
    assert result["step"] == 3
    again = loop.train_and_evaluate(config.replace(deterministic=True, max_iterations=4),
                                         str(tmp_path))
    assert again["step"] == 4  # the new checkpoint holds the iterator and resumes with it


def test_resume_input_seed_keeps_a_new_run_and_reshuffles_a_resume():
    assert resume_input_seed(7, 0) == 7
    seeds = {resume_input_seed(7, step) for step in (1, 2, 900)}
    assert len(seeds) == 3 and 7 not in seeds
    assert resume_input_seed(7, 900) == resume_input_seed(7, 900)
    assert resume_input_seed(8, 900) != resume_input_seed(7, 900)
    assert all(0 <= seed < 2**31 for seed in seeds)


def test_a_non_deterministic_resume_reads_a_fresh_order(data_dir, tmp_path, monkeypatch):
    """Not the seeded order from its start again: that would re-read the first steps' data."""
    seeds = []
    original = reader.make_dataset

    def record_seed(*args, **kwargs):
        if args[2] == "train":
            seeds.append(kwargs["seed"])
        return original(*args, **kwargs)

    monkeypatch.setattr(reader, "make_dataset", record_seed)
    config = TINY.replace(data_dir=data_dir, max_iterations=2, test_interval=100,
                          display_interval=100)
    loop.train_and_evaluate(config, str(tmp_path))
    loop.train_and_evaluate(config.replace(max_iterations=3), str(tmp_path))
    assert seeds[0] == config.seed
    assert seeds[-1] == resume_input_seed(config.seed, 2) != config.seed


@pytest.fixture(scope="module")
def uneven_data_dir(tmp_path_factory):
    """A test split of 10 sequences: not a multiple of TINY.batch_size (4)."""
    path = str(tmp_path_factory.mktemp("uneven"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=32, num_test=10)
    return path


def test_training_test_pass_matches_evaluate_on_the_same_checkpoint(uneven_data_dir, tmp_path):
    from predrnn_tf.data import reader
    from predrnn_tf.evaluation import evaluator
    from predrnn_tf.workdir import WorkDir

    config = TINY.replace(data_dir=uneven_data_dir, max_iterations=2, num_test_batches=0)
    workdir = str(tmp_path / "run")
    trained = loop.train_and_evaluate(config, workdir)
    model, saved = WorkDir(workdir).restore_model()
    dataset = reader.make_dataset(uneven_data_dir, saved.dataset_name, "test", saved.batch_size,
                                  saved.total_length, shuffle=False, repeat=False,
                                  deterministic=True, drop_remainder=False)
    options = evaluator.EvaluationOptions(input_length=saved.input_length,
                                          output_length=saved.output_length, num_strips=1)
    evaluated = evaluator.evaluate(model, dataset, str(tmp_path / "eval"), options)
    assert trained["num_sequences"] == evaluated["num_sequences"] == 10
    # Same sequences, same sums; only float32 rounding of the two compiled forecasts differs
    # (the dropped remainder batch used to shift the mean by ~1e-3).
    assert trained["mse"] == pytest.approx(evaluated["metrics"]["mse"], rel=1e-9)
    # One definition of the baseline too: the log's persistence_mse is evaluate's.
    assert trained["persistence_mse"] == pytest.approx(
        evaluated["baselines"]["persistence"]["metrics"]["mse"], rel=1e-9)
    np.testing.assert_allclose(trained["per_frame"]["mse"], evaluated["per_frame"]["mse"],
                               rtol=1e-9)
    assert "mse" not in trained["train"] and "frame_loss_per_pixel" in trained["train"]


def _failing_step(error):
    def make_train_step(self):
        def step(*args):
            raise error
        return step
    return make_train_step


@pytest.mark.parametrize("error,scans", [
    (tf.errors.InvalidArgumentError(None, None, "Input to reshape is a tensor with 6 values, "
                                    "but the requested shape has 7 [[{{node Reshape}}]]"), False),
    (tf.errors.InvalidArgumentError(None, None, "Could not parse example input [[{{node "
                                    "ParseExampleV2}}]] [[IteratorGetNext]]"), True),
    (tf.errors.DataLossError(None, None, "corrupted record at 12"), True),
])
def test_only_record_errors_scan_the_shards(data_dir, tmp_path, monkeypatch, error, scans):
    from predrnn_tf.data import reader

    calls = []
    monkeypatch.setattr(reader, "find_corrupt_shard", lambda *args: calls.append(args))
    monkeypatch.setattr(loop.Trainer, "make_train_step", _failing_step(error))
    with pytest.raises((type(error), DataError)) as raised:
        loop.train_and_evaluate(TINY.replace(data_dir=data_dir, max_iterations=1),
                                     str(tmp_path))
    assert bool(calls) == scans
    if scans:  # no corrupt shard found: one line naming the flags, the record error as cause
        assert isinstance(raised.value, DataError) and raised.value.__cause__ is error
        assert f"--data_dir={data_dir}" in str(raised.value) and "--img_width=" in str(raised.value)
    else:  # not a record error: re-raised untouched
        assert raised.value is error


# --- issue 13: nothing lost, nothing silently wrong ------------------------------------------

def _small_run(data_dir, **changes):
    values = dict(data_dir=data_dir, max_iterations=2, test_interval=100, display_interval=100)
    values.update(changes)
    return TINY.replace(**values)


def test_a_negative_num_test_batches_is_refused_before_anything_is_written(data_dir, tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(loop.ConfigError, match="--num_test_batches"):
        loop.train_and_evaluate(_small_run(data_dir, num_test_batches=-1), str(workdir))
    assert not workdir.exists()


def test_the_checkpoint_is_written_before_the_test_pass(data_dir, tmp_path, monkeypatch):
    """A test pass that fails never costs the work of its step."""
    def failing_test_pass(*args, **kwargs):
        raise RuntimeError("test pass failed")

    monkeypatch.setattr(loop, "run_test_pass", failing_test_pass)
    config = _small_run(data_dir, test_interval=2, snapshot_interval=2)
    with pytest.raises(RuntimeError, match="test pass failed"):
        loop.train_and_evaluate(config, str(tmp_path))
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


def _foreign_dataset(data_dir, target, name="mnist"):
    """A copy of the synthetic dataset under another name (as a converter would write it)."""
    from predrnn_tf.data import schema
    os.makedirs(target)
    for split in schema.SPLITS:
        paths = schema.shard_paths(data_dir, synthetic_radar.NAME, split)
        for index, path in enumerate(paths):
            target_path = os.path.join(target, schema.shard_filename(name, split, index,
                                                                     len(paths)))
            with open(path, "rb") as source, open(target_path, "wb") as copy:
                copy.write(source.read())
    schema.write_metadata(target, name, schema.read_metadata(data_dir, synthetic_radar.NAME))
    return target


def test_a_data_dir_of_another_dataset_is_never_written_into(data_dir, tmp_path):
    """Forgetting --dataset_name: one error listing what is there, no generated shards."""
    foreign = _foreign_dataset(data_dir, str(tmp_path / "mnist_data"))
    before = sorted(os.listdir(foreign))
    with pytest.raises(loop.ConfigError, match=r"holds the dataset\(s\) mnist.*"
                                                    r"--dataset_name=mnist"):
        loop.train_and_evaluate(_small_run(foreign), str(tmp_path / "run"))
    assert sorted(os.listdir(foreign)) == before and not (tmp_path / "run").exists()
    with pytest.raises(loop.DataError, match="has no radar-metadata.json.*holds mnist"):
        loop.train_and_evaluate(_small_run(foreign, dataset_name="radar"),
                                     str(tmp_path / "run"))


def test_empty_train_shards_are_an_error_not_a_hang(data_dir, tmp_path):
    from predrnn_tf.data import schema
    foreign = _foreign_dataset(data_dir, str(tmp_path / "empty"))
    for path in schema.shard_paths(foreign, "mnist", "train"):
        open(path, "wb").close()  # the metadata still counts the records
    with pytest.raises(loop.DataError, match="hold no record although its metadata counts"):
        loop.train_and_evaluate(_small_run(foreign, dataset_name="mnist"),
                                     str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_test_split_smaller_than_the_batch_runs(tmp_path):
    small = str(tmp_path / "small")
    synthetic_radar.ensure_synthetic_dataset(small, 16, 6, num_train=16, num_test=2)
    result = loop.train_and_evaluate(
        _small_run(small, batch_size=4, num_test_batches=0, test_interval=2), str(tmp_path / "r"))
    assert result["step"] == 2 and result["num_sequences"] == 2


def test_a_failed_data_dir_leaves_no_workdir_and_no_lock(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(loop.ConfigError, match="--data_dir=.*does not exist"):
        loop.train_and_evaluate(
            TINY.replace(dataset_name="mnist", data_dir=str(tmp_path / "missing")), str(workdir))
    assert not workdir.exists()


def test_train_prints_the_absolute_workdir_and_new_or_resumed(data_dir, tmp_path):
    args = [f"--data_dir={data_dir}", "--num_hidden=8,8", "--filter_size=3", "--patch_size=2",
            "--img_width=16", "--input_length=3", "--total_length=6", "--batch_size=4",
            "--max_iterations=1", "--test_interval=100", "--display_interval=100",
            "--snapshot_interval=1", "--num_test_batches=1", "--shuffle_buffer=4",
            "--workdir=relative_run"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "predrnn_tf.train", *args]
    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    where = os.path.join(str(tmp_path), "relative_run")
    assert f"Work directory {where}: starting a new run." in first.stderr
    second = subprocess.run([*command, "--max_iterations=2"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert f"Work directory {where}: resuming from step 1 (ckpt-1)." in second.stderr
    for noise in ("cuda", "oneDNN", "absl::InitializeLog"):
        assert noise not in first.stderr + second.stderr
