"""converters/radar_shards.py + resumable.py: parallel, resumable radar conversion.

The sharded conversion writes the same records as the one-process converter
(``radar_conversion.convert_radar``), the same files for 1 and 2 workers, resumes after an
error or a kill -9 keeping every finished shard, and records each record's wet fraction.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from predrnn_tf.data import schema, wetness
from predrnn_tf.data.converters import radar_conversion, radar_shards, resumable
from predrnn_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATTERN = "radar_%Y%m%d%H%M"


def write_archive(folder: str, frames: int, seed: int = 0, size: int = 24) -> str:
    """``frames`` dBZ fields every 5 minutes (every third one dry, one gap); returns the glob."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2020, 1, 1)
    for index in range(frames):
        minutes = 5 * index + (60 if index >= frames // 2 else 0)  # a gap in the middle
        stamp = start + datetime.timedelta(minutes=minutes)
        field = rng.uniform(0.0, 45.0, (size, size)).astype(np.float32)
        if index % 3 == 0:
            field[:] = -20.0  # dry
        field[:2] = np.nan  # no data
        np.save(os.path.join(folder, f"{stamp:{PATTERN}}.npy"), field)
    return os.path.join(folder, "*.npy")


def options(input_glob: str, output_dir: str, **overrides) -> radar_conversion.RadarOptions:
    values = dict(input_glob=input_glob, output_dir=output_dir, filename_pattern=PATTERN,
                  importer="npy", image_size=12, total_length=4, stride=1,
                  sequences_per_shard=3, test_fraction=0.3)
    values.update(overrides)
    return radar_conversion.RadarOptions(**values)


def records(folder: str) -> dict[str, list[tuple[bytes, str]]]:
    return {split: [(frames.tobytes(), sequence_id)
                    for frames, sequence_id in schema.read_split(folder, "radar", split)]
            for split in schema.SPLITS}


def checksums(folder: str) -> dict[str, str]:
    return {os.path.basename(path): hashlib.sha256(open(path, "rb").read()).hexdigest()
            for path in sorted(glob.glob(os.path.join(folder, "radar-*")))}


@pytest.mark.parametrize("storage", ["hko7_dbz", "rain_rate"])
def test_the_same_records_as_the_one_process_converter(tmp_path, storage):
    pattern = write_archive(str(tmp_path / "archive"), 24)
    extra = {"pixel_km": 1.0, "source_pixel_km": 1.0} if storage == "rain_rate" else {}
    old = radar_conversion.convert_radar(options(pattern, str(tmp_path / "old"),
                                                 storage=storage, **extra))
    new = radar_shards.convert(options(pattern, str(tmp_path / "new"), storage=storage, **extra))
    assert records(str(tmp_path / "old")) == records(str(tmp_path / "new"))
    for key in ("num_train", "num_test", "no_data_pixels", "value_mapping", "details"):
        assert new[key] == old[key], key
    assert new["wet_sampling"]["train"]["records"] == new["num_train"]
    assert new["wet_sampling"]["train"]["dry_records"] < new["num_train"]


def test_two_workers_write_byte_identical_files(tmp_path):
    pattern = write_archive(str(tmp_path / "archive"), 24)
    radar_shards.convert(options(pattern, str(tmp_path / "one")), num_workers=1)
    radar_shards.convert(options(pattern, str(tmp_path / "two")), num_workers=2)
    assert checksums(str(tmp_path / "one")) == checksums(str(tmp_path / "two"))
    assert not os.path.exists(resumable.staging_folder(str(tmp_path / "two"), "radar"))


def test_wet_fraction_is_stored_per_record(tmp_path):
    pattern = write_archive(str(tmp_path / "archive"), 12)
    radar_shards.convert(options(pattern, str(tmp_path / "out"), stride=4))
    path = schema.shard_paths(str(tmp_path / "out"), "radar", "train")[0]
    import tensorflow as tf

    serialized = next(iter(tf.data.TFRecordDataset(path)))
    fraction = float(schema.parse_wet_fraction(serialized))
    frames, _ = schema.parse_sequence_numpy(serialized.numpy())
    rate = 10 ** ((70.0 * frames.astype(np.float64) / 255.0 - 10.0 - 10 * np.log10(200.0))
                  / 16.0)
    assert fraction == pytest.approx(wetness.wet_fraction(rate), abs=1e-6)


def test_resume_after_an_error_keeps_finished_shards(tmp_path):
    pattern = write_archive(str(tmp_path / "archive"), 24)
    radar_shards.convert(options(pattern, str(tmp_path / "reference")))
    files = sorted(glob.glob(pattern))
    broken = files[8]
    content = open(broken, "rb").read()
    with open(broken, "wb") as handle:
        handle.write(b"not an array")
    target = str(tmp_path / "out")
    with pytest.raises(Exception, match=re.escape(os.path.basename(broken))):
        radar_shards.convert(options(pattern, target))  # the error names the broken file
    folder = resumable.staging_folder(target, "radar")
    finished = glob.glob(os.path.join(folder, "radar-*.json"))
    assert finished  # the shards before the broken file are kept
    assert not glob.glob(os.path.join(folder, "*.tmp*"))
    with open(broken, "wb") as handle:  # the same bytes again: the plan is unchanged
        handle.write(content)
    radar_shards.convert(options(pattern, target))
    assert checksums(target) == checksums(str(tmp_path / "reference"))
    assert not os.path.exists(folder)


def test_changed_flags_start_the_staging_over(tmp_path):
    target = str(tmp_path / "out")
    first = resumable.open_staging(target, "radar", "a")
    open(os.path.join(first, "radar-train-00000.json"), "w").write("{}")
    assert len(resumable.open_staging(target, "radar", "a") and os.listdir(first)) == 2
    second = resumable.open_staging(target, "radar", "b")
    assert os.listdir(second) == [resumable.PLAN_FILE]


def test_bad_num_workers_is_refused_before_any_file(tmp_path):
    pattern = write_archive(str(tmp_path / "archive"), 12)
    with pytest.raises(ConfigError, match="--num_workers"):
        radar_shards.convert(options(pattern, str(tmp_path / "out")), num_workers=-3)
    assert not os.path.exists(str(tmp_path / "out" / ".radar.resumable"))


def _command(pattern: str, output_dir: str) -> list[str]:
    return [sys.executable, os.path.join(REPO, "tools", "make_radar.py"),
            f"--input_glob={pattern}", f"--output_dir={output_dir}", "--importer=npy",
            f"--filename_pattern={PATTERN}", "--image_size=12", "--total_length=4",
            "--sequences_per_shard=2", "--test_fraction=0.3", "--num_workers=1"]


def test_kill_9_then_the_same_command_repeats_at_most_one_shard(tmp_path):
    pattern = write_archive(str(tmp_path / "archive"), 160, size=48)
    reference = str(tmp_path / "reference")
    target = str(tmp_path / "out")
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(_command(pattern, reference), check=True, capture_output=True,
                   env=environment)
    process = subprocess.Popen(_command(pattern, target), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=environment)
    folder = resumable.staging_folder(target, "radar")
    deadline = time.monotonic() + 120
    while len(glob.glob(os.path.join(folder, "radar-*.json"))) < 3:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(glob.glob(os.path.join(folder, "radar-*.json")))
    result = subprocess.run(_command(pattern, target) + ["--verbosity=0"], check=True,
                            capture_output=True, text=True, env=environment)
    assert f"Resuming: {finished} of" in result.stderr  # every finished shard kept
    assert checksums(target) == checksums(reference)
    assert not os.path.exists(folder)


def test_options_dataclass_is_picklable_for_workers():
    import pickle

    writer = radar_shards.RadarShardWriter(options("x", "y"))
    assert pickle.loads(pickle.dumps(writer)) == writer
    assert dataclasses.is_dataclass(writer)
