"""Fault tolerance: lock, signals, kill -9 and exact resume, non-finite losses, full disks."""

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import schema, synthetic_radar
from predrnn_tf.errors import DataError, WorkdirError
from predrnn_tf.training import fault_tolerance, loop
from predrnn_tf.training.fault_tolerance import LossLog, WorkdirLock, read_loss_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=4, lr=3e-3, max_iterations=6, reverse_input=False,
              display_interval=100, test_interval=100, snapshot_interval=2, log_every=1,
              num_test_batches=1, r_sampling_step_1=2, r_sampling_step_2=10, r_exp_alpha=2.0,
              shuffle_buffer=16, deterministic=True)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("synthetic"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=64, num_test=8)
    return path


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """Losses of an uninterrupted deterministic 6-step run."""
    workdir = str(tmp_path_factory.mktemp("reference"))
    loop.train_and_evaluate(TINY.replace(data_dir=data_dir), workdir)
    return read_loss_log(os.path.join(workdir, "losses.jsonl"))


def _losses(workdir):
    return {step: values["loss"] for step, values in
            read_loss_log(os.path.join(workdir, "losses.jsonl")).items()}


def _wait_for_steps(workdir, count, timeout=300):
    deadline = time.monotonic() + timeout
    while len(read_loss_log(os.path.join(workdir, "losses.jsonl"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {count} logged steps in {workdir}")
        time.sleep(0.05)


# --- lock --------------------------------------------------------------------------------

def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with WorkdirLock(str(tmp_path)):
        with pytest.raises(WorkdirError, match=f"in use by process {os.getpid()} "):
            WorkdirLock(str(tmp_path)).acquire()
    WorkdirLock(str(tmp_path)).acquire().release()  # free again after release


def test_lock_of_a_killed_process_is_free(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]);"
            "from predrnn_tf.training.fault_tolerance import WorkdirLock;"
            "lock = WorkdirLock(sys.argv[1]).acquire(); print('locked', flush=True);"
            "time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), REPO],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirError, match=f"process {holder.pid} "):
            WorkdirLock(str(tmp_path)).acquire()
    finally:
        holder.kill()
        holder.wait()
    WorkdirLock(str(tmp_path)).acquire().release()


# --- files ---------------------------------------------------------------------------------

def test_loss_log_truncates_to_the_resumed_step_and_skips_a_torn_line(tmp_path):
    log = LossLog(str(tmp_path))
    for step in (1, 2, 3):
        log.append(step, {"loss": 0.1 * step})
    with open(log.path, "a") as handle:
        handle.write('{"step": 4, "lo')  # a kill in the middle of a write
    assert sorted(read_loss_log(log.path)) == [1, 2, 3]
    assert read_loss_log(log.path)[3]["loss"] == 0.1 * 3  # full precision
    log.truncate_after(2)
    assert sorted(read_loss_log(log.path)) == [1, 2]
    with open(log.path) as handle:
        assert handle.read().count("\n") == 2


def test_remove_stray_files_never_deletes_a_numbered_checkpoint(tmp_path):
    """Temporary leftovers go; ckpt-N files stay even when no state file lists them."""
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    keep = ["ckpt-2.index", "ckpt-2.data-00000-of-00001", "ckpt-4.index",
            "ckpt-4.data-00000-of-00001"]  # no "checkpoint" state file at all
    stray = ["checkpoint.tmp1234abcd"]
    for name in keep + stray:
        (directory / name).write_text("x")
    (directory / "ckpt-6_temp").mkdir()
    (tmp_path / "config.json.tmp").write_text("{")
    removed = fault_tolerance.remove_stray_files(str(tmp_path), "checkpoints")
    assert sorted(os.path.basename(path) for path in removed) == sorted(
        stray + ["ckpt-6_temp", "config.json.tmp"])
    assert sorted(os.listdir(directory)) == sorted(keep)


def test_cluster_task_finds_the_chief():
    workers = {"worker": ["localhost:1", "localhost:2"]}
    config = json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})
    assert fault_tolerance.cluster_task(config) == ("worker", 1, False)
    config = json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert fault_tolerance.cluster_task(config)[2]
    config = json.dumps({"cluster": dict(workers, chief=["localhost:3"]),
                         "task": {"type": "worker", "index": 0}})
    assert not fault_tolerance.cluster_task(config)[2]
    assert fault_tolerance.cluster_task("") == ("worker", 0, True)


# --- signals and kills -----------------------------------------------------------------------

def test_sigterm_finishes_the_step_checkpoints_and_resumes_exactly(data_dir, reference,
                                                                    tmp_path):
    config = TINY.replace(data_dir=data_dir, snapshot_interval=100)
    workdir = str(tmp_path)

    def send_sigterm():
        _wait_for_steps(workdir, 1)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_sigterm, daemon=True)
    sender.start()
    result = loop.train_and_evaluate(config, workdir)
    sender.join()
    stopped = result["step"]
    assert result["interrupted"] == "SIGTERM"
    assert 1 <= stopped < config.max_iterations
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith(
        f"ckpt-{stopped}")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed = loop.train_and_evaluate(config, workdir)
    assert resumed["step"] == config.max_iterations
    assert _losses(workdir) == {step: values["loss"] for step, values in reference.items()}


def test_kill_9_then_the_same_command_resumes_with_identical_losses(data_dir, reference,
                                                                     tmp_path):
    workdir = str(tmp_path / "run")
    args = [f"--{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in TINY.replace(data_dir=data_dir).to_dict().items()]
    command = [sys.executable, "-m", "predrnn_tf.train", *args, f"--workdir={workdir}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_steps(workdir, 3)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = max(read_loss_log(os.path.join(workdir, "losses.jsonl")))
    assert killed_at < TINY.max_iterations, "the run finished before the kill: test is moot"
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resumed from" in result.stderr
    assert _losses(workdir) == {step: values["loss"] for step, values in reference.items()}
    leftovers = glob.glob(os.path.join(workdir, "**", "*_temp"), recursive=True)
    assert not leftovers and not glob.glob(os.path.join(workdir, "*.tmp"))


# --- non-finite losses ------------------------------------------------------------------------

def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, lr=1e30, snapshot_interval=1, max_iterations=5)
    with pytest.raises(loop.NonFiniteLossError, match=r"at step (\d)") as raised:
        loop.train_and_evaluate(config, str(tmp_path))
    step = int(raised.value.args[0].split("at step ")[1].split(";")[0])
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith(f"ckpt-{step - 1}")
    reader = tf.train.load_checkpoint(latest)
    floats = [name for name, dtype in reader.get_variable_to_dtype_map().items()
              if dtype.is_floating]
    assert floats
    for name in floats:
        assert tf.reduce_all(tf.math.is_finite(reader.get_tensor(name))), name


def test_skip_step_policy_keeps_training(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, lr=1e30, nan_policy="skip_step", max_iterations=4,
                          deterministic=False)
    result = loop.train_and_evaluate(config, str(tmp_path))
    assert result["step"] == 4
    assert result["train"]["finite"] == 0.0  # the last steps were skipped


# --- disks --------------------------------------------------------------------------------------

def test_a_failed_checkpoint_write_names_the_workdir_and_keeps_the_previous(data_dir, tmp_path):
    config = TINY.replace(data_dir=data_dir, max_iterations=4)
    loop.train_and_evaluate(config.replace(max_iterations=2), str(tmp_path))
    # TensorFlow writes ckpt-4 through the folder ckpt-4_temp: a file there breaks the write.
    # (Start-up removes such leftovers, so the file is put there just before the save.)
    original = loop.Trainer.save

    def blocked_save(trainer):
        (tmp_path / "checkpoints" / "ckpt-4_temp").write_text("in the way")
        return original(trainer)

    pattern = r"checkpoint of step 4 failed \(.*Not a directory.*ckpt-2\) is intact"
    with pytest.raises(WorkdirError, match=pattern):
        loop.Trainer.save = blocked_save
        try:
            loop.train_and_evaluate(config, str(tmp_path))
        finally:
            loop.Trainer.save = original
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], capture_output=True)


def test_a_full_disk_is_refused_before_writing(data_dir, small_disk):
    config = TINY.replace(data_dir=data_dir, max_iterations=2)
    workdir = str(small_disk / "run")
    loop.train_and_evaluate(config, workdir)
    before = {path: os.path.getmtime(path) for path in glob.glob(f"{workdir}/**", recursive=True)
              if os.path.isfile(path)}
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(small_disk / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - 8192, 0))
    with pytest.raises(WorkdirError, match=r"MB free but the checkpoints need"):
        loop.train_and_evaluate(config.replace(max_iterations=4), workdir)
    after = {path: os.path.getmtime(path) for path in glob.glob(f"{workdir}/**", recursive=True)
             if os.path.isfile(path)}
    changed = {path for path in before if after.get(path) != before[path]}
    assert changed <= {os.path.join(workdir, ".lock")}


def test_corrupt_shard_with_skip_corrupt_is_counted_in_tensorboard(data_dir, tmp_path):
    copy = tmp_path / "data"
    copy.mkdir()
    for path in glob.glob(os.path.join(data_dir, "*")):
        (copy / os.path.basename(path)).write_bytes(open(path, "rb").read())
    shard = schema.shard_paths(str(copy), "synthetic_radar", "train")[0]
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    config = TINY.replace(data_dir=str(copy), skip_corrupt=True, max_iterations=2,
                          deterministic=False)
    workdir = tmp_path / "run"
    result = loop.train_and_evaluate(config, str(workdir))
    assert result["step"] == 2
    skipped = None
    for events in glob.glob(str(workdir / "tensorboard" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                if value.tag == "data/skipped_train_records_per_pass":
                    skipped = float(tf.make_ndarray(value.tensor))
    total = schema.read_metadata(str(copy), "synthetic_radar")["num_train"]
    assert skipped is not None and 1 <= skipped < total


def test_train_shards_deleted_during_training_checkpoint_then_one_line(tmp_path, monkeypatch):
    data = str(tmp_path / "data")
    synthetic_radar.ensure_synthetic_dataset(data, 16, 6, num_train=8, num_test=4)
    shards = schema.shard_paths(data, "synthetic_radar", "train")
    original_log = loop.reporting.ProgressLogger.log

    def log_then_delete(self, step, *args, **kwargs):  # the data vanish after step 3
        original_log(self, step, *args, **kwargs)
        if step == 3:
            for path in shards:
                os.remove(path)
    monkeypatch.setattr(loop.reporting.ProgressLogger, "log", log_then_delete)
    workdir = str(tmp_path / "run")
    config = TINY.replace(data_dir=data, max_iterations=40, snapshot_interval=100,
                          deterministic=False, shuffle_buffer=2)
    with pytest.raises(DataError) as raised:
        loop.train_and_evaluate(config, workdir)
    message = str(raised.value)
    assert "\n" not in message and "disappeared" in message and shards[0] in message
    saved = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    assert saved is not None and int(saved.rsplit("-", 1)[1]) >= 3 and saved in message
