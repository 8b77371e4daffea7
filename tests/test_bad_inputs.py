"""A table of bad inputs to ``python -m predrnn_tf.train``.

Each case must end with one ``error:`` line on stderr naming the culprit, exit non-zero,
print no traceback, and leave every file that existed before untouched. The cases run as
subprocesses, a few at a time, in one module fixture.
"""

import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from predrnn_tf.config import Config
from predrnn_tf.data import schema, synthetic_radar
from predrnn_tf.training import loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "tiny"  # not the synthetic name, so that training never regenerates the data
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=4, lr=3e-3, max_iterations=30, reverse_input=False,
              display_interval=100, test_interval=100, snapshot_interval=100, log_every=10,
              num_test_batches=1, r_sampling_step_1=2, r_sampling_step_2=10, r_exp_alpha=2.0,
              shuffle_buffer=4)
FLAG_NAMES = ("num_hidden", "filter_size", "patch_size", "img_width", "input_length",
              "total_length", "batch_size", "max_iterations", "reverse_input", "log_every",
              "num_test_batches", "shuffle_buffer", "snapshot_interval", "test_interval",
              "display_interval")


def _tiny_flags(config=TINY):
    values = config.to_dict()
    return [f"--{name}={','.join(map(str, values[name])) if name == 'num_hidden' else values[name]}"
            for name in FLAG_NAMES]


def _copy_dataset(source, target, edit=None):
    shutil.copytree(source, target)
    if edit:
        edit(str(target))
    return str(target)


def _edit_metadata(**changes):
    def edit(data_dir):
        metadata = schema.read_metadata(data_dir, NAME)
        metadata.update(changes)
        schema.write_metadata(data_dir, NAME, metadata)
    return edit


def _damage_shard(split, how):
    def edit(data_dir):
        path = schema.shard_paths(data_dir, NAME, split)[0]
        data = bytearray(open(path, "rb").read())
        if how == "flip":
            data[200] ^= 0xFF  # inside the first record's frames: its CRC fails
        else:
            data = data[:len(data) // 2 - 7]  # records are equal-sized: cut inside one
        open(path, "wb").write(bytes(data))
    return edit


def _other_size_train_shard(data_dir):
    """The train shard replaced by one of 8x8 frames; the metadata still says 16x16."""
    source = data_dir + "-small"
    synthetic_radar.ensure_synthetic_dataset(source, 8, 6, num_train=8, num_test=2)
    small = schema.shard_paths(source, synthetic_radar.NAME, "train")[0]
    shutil.copy(small, schema.shard_paths(data_dir, NAME, "train")[0])
    shutil.rmtree(source)


def _remove_split(split):
    def edit(data_dir):
        schema.remove_split(data_dir, NAME, split)
    return edit


def _remove_metadata(data_dir):
    os.remove(schema.metadata_path(data_dir, NAME))


def _break_metadata_json(data_dir):
    _write(schema.metadata_path(data_dir, NAME), "{")


def _make_dataset(data_dir):
    """A small dataset named NAME: synthetic sequences under another name."""
    source = data_dir + "-synthetic"
    synthetic_radar.ensure_synthetic_dataset(source, 16, 6, num_train=32, num_test=8)
    os.makedirs(data_dir)
    for split in schema.SPLITS:
        for index, path in enumerate(schema.shard_paths(source, synthetic_radar.NAME, split)):
            count = len(schema.shard_paths(source, synthetic_radar.NAME, split))
            shutil.copy(path, os.path.join(data_dir,
                                           schema.shard_filename(NAME, split, index, count)))
    schema.write_metadata(data_dir, NAME, schema.read_metadata(source, synthetic_radar.NAME))
    shutil.rmtree(source)


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _snapshot(*roots):
    """{path: sha1} of every file under ``roots`` (the lock file excluded)."""
    digests = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                if name == ".lock":
                    continue
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    digests[path] = hashlib.sha1(handle.read()).hexdigest()
    return digests


def _build_cases(root, data_dir, trained):
    """(id, args, culprit, roots that must not change) for every case."""
    good = [f"--data_dir={data_dir}", f"--dataset_name={NAME}", *_tiny_flags()]

    def workdir(name):
        return os.path.join(root, "work", name)

    def dataset(name, edit):
        return _copy_dataset(data_dir, os.path.join(root, "data", name), edit)

    def trained_copy(name, edit=None):
        path = workdir(name)
        shutil.copytree(trained, path)
        if edit:
            edit(path)
        return path

    other_model = trained_copy("other_model", lambda path: os.remove(f"{path}/config.json"))
    changed_shape = trained_copy("changed_shape")
    bad_config = trained_copy("bad_config", lambda path: _write(f"{path}/config.json", "{oops"))
    locked = trained_copy("locked")
    short = dataset("short", _edit_metadata(sequence_length=4))
    regular_file = os.path.join(root, "a_file")
    _write(regular_file, "not a folder\n")
    cases = [
        ("input_length", ["--input_length=6"], "--input_length", []),
        ("img_width_patch", ["--img_width=18"], "--img_width=18", []),
        ("unequal_hidden", ["--num_hidden=4,8"], "--num_hidden", []),
        ("hidden_not_int", ["--num_hidden=4,x"], "--num_hidden", []),
        ("model_name", ["--model_name=transformer"], "--model_name", []),
        ("precision", ["--precision=float8"], "--precision", []),
        ("strategy", ["--distribution_strategy=tpu"], "--distribution_strategy", []),
        ("nan_policy", ["--nan_policy=ignore"], "--nan_policy", []),
        ("batch_size", ["--batch_size=0"], "--batch_size", []),
        ("filter_size", ["--filter_size=4"], "--filter_size", []),
        ("lr", ["--lr=0"], "--lr", []),
        ("unknown_flag", ["--no_such_flag=1"], "no_such_flag", []),
        ("flag_type", ["--batch_size=four"], "batch_size", []),
        ("num_devices", ["--distribution_strategy=mirrored", "--num_devices=5"],
         "--num_devices=5", []),
        ("no_data_dir", ["--dataset_name=mnist", "--data_dir=/nonexistent/data"],
         "--data_dir=/nonexistent/data", []),
        ("no_metadata", [f"--data_dir={dataset('no_meta', _remove_metadata)}"],
         f"{NAME}-metadata.json", [os.path.join(root, "data", "no_meta")]),
        ("bad_metadata_json", [f"--data_dir={dataset('bad_json', _break_metadata_json)}"],
         f"{NAME}-metadata.json", [os.path.join(root, "data", "bad_json")]),
        ("metadata_size",
         [f"--data_dir={dataset('size', _edit_metadata(image_height=32, image_width=32))}"],
         "--img_width=16", [os.path.join(root, "data", "size")]),
        ("metadata_channels", [f"--data_dir={dataset('channels', _edit_metadata(channels=3))}"],
         "--img_channel=1", [os.path.join(root, "data", "channels")]),
        ("metadata_length", [f"--data_dir={short}"], "--total_length=6", [short]),
        ("train_shard_of_another_size",
         [f"--data_dir={dataset('other_size', _other_size_train_shard)}"],
         "not the model's 16x16x1", [os.path.join(root, "data", "other_size")]),
        ("missing_train_shards", [f"--data_dir={dataset('no_train', _remove_split('train'))}"],
         "no train shards", [os.path.join(root, "data", "no_train")]),
        ("corrupt_train_shard",
         [f"--data_dir={dataset('corrupt', _damage_shard('train', 'flip'))}"],
         f"{NAME}-train-00000-of-00001.tfrecord", [os.path.join(root, "data", "corrupt")]),
        ("truncated_train_shard",
         [f"--data_dir={dataset('truncated', _damage_shard('train', 'cut'))}"],
         f"{NAME}-train-00000-of-00001.tfrecord", [os.path.join(root, "data", "truncated")]),
        ("truncated_test_shard",  # found while reading the first test batch
         [f"--data_dir={dataset('truncated_test', _damage_shard('test', 'cut'))}"],
         f"{NAME}-test-00000-of-00001.tfrecord", [os.path.join(root, "data", "truncated_test")]),
        ("workdir_under_a_file", [f"--workdir={regular_file}/run"],
         f"--workdir={regular_file}/run", [regular_file]),
        ("workdir_in_proc", ["--workdir=/proc/predrnn_run"], "--workdir=/proc/predrnn_run", []),
        ("locked_workdir", [f"--workdir={locked}"], f"in use by process {os.getpid()}", [locked]),
        ("checkpoint_of_another_model", [f"--workdir={other_model}", "--num_hidden=8,8"],
         "holds another model", [other_model]),
        ("changed_model_shape", [f"--workdir={changed_shape}", "--patch_size=4"],
         "--patch_size=4", [changed_shape]),
        ("corrupt_config_json", [f"--workdir={bad_config}"], "config.json", [bad_config]),
    ]
    result = []
    for case_id, args, culprit, roots in cases:
        if not any(arg.startswith("--workdir") for arg in args):
            args = [f"--workdir={workdir(case_id)}", *args]
        result.append((case_id, [*good, *args], culprit, roots))
    return result, locked


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "predrnn_tf.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bad_inputs"))
    data_dir = os.path.join(root, "data", "good")
    _make_dataset(data_dir)
    trained = os.path.join(root, "trained")
    loop.train_and_evaluate(
        TINY.replace(data_dir=data_dir, dataset_name=NAME, max_iterations=1), trained)
    cases, locked = _build_cases(root, data_dir, trained)
    before = {case_id: _snapshot(*roots) for case_id, _, _, roots in cases}
    lock_handle = open(os.path.join(locked, ".lock"), "a+")  # held by this test process
    fcntl.flock(lock_handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock_handle.seek(0)
    lock_handle.truncate()
    lock_handle.write(json.dumps({"pid": os.getpid(), "host": "test", "command": "pytest"}))
    lock_handle.flush()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            runs = dict(zip([case[0] for case in cases],
                            pool.map(_run, [case[1] for case in cases])))
    finally:
        lock_handle.close()
    return {case_id: (runs[case_id], culprit, before[case_id], _snapshot(*roots))
            for case_id, _, culprit, roots in cases}


CASE_IDS = ["input_length", "img_width_patch", "unequal_hidden", "hidden_not_int", "model_name",
            "precision", "strategy", "nan_policy", "batch_size", "filter_size", "lr",
            "unknown_flag", "flag_type", "num_devices", "no_data_dir", "no_metadata",
            "bad_metadata_json", "metadata_size", "metadata_channels", "metadata_length",
            "train_shard_of_another_size", "missing_train_shards", "corrupt_train_shard",
            "truncated_train_shard",
            "truncated_test_shard", "workdir_under_a_file", "workdir_in_proc", "locked_workdir",
            "checkpoint_of_another_model", "changed_model_shape", "corrupt_config_json"]


def test_the_table_has_at_least_twenty_cases(outcomes):
    assert sorted(outcomes) == sorted(CASE_IDS) and len(CASE_IDS) >= 20


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_fails_with_one_line_naming_the_culprit(outcomes, case_id):
    result, culprit, before, after = outcomes[case_id]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-2000:]
    assert culprit in errors[0], errors[0]
    assert after == before  # no file overwritten, removed or added in the watched folders
