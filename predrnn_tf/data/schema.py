"""The one TFRecord schema for every dataset, its sharded writer and its metadata.

A dataset NAME in a folder is:

- ``NAME-train-XXXXX-of-YYYYY.tfrecord`` and ``NAME-test-XXXXX-of-YYYYY.tfrecord`` shards,
  each record a ``tf.train.Example`` holding ONE sequence:

  ==============  ==========  ==========================================================
  feature         type        meaning
  ==============  ==========  ==========================================================
  ``frames``      bytes       raw uint8 pixels, C-order ``[T, H, W, C]``
  ``shape``       int64 x 4   ``[T, H, W, C]``
  ``sequence_id`` bytes       free text naming the source (file, time stamp), may be empty
  ``wet_fraction`` float      optional (radar): share of valid pixels >= 0.1 mm/h, for
                              wet-sequence sampling (:mod:`predrnn_tf.data.wetness`);
                              absent = unknown (read as -1, weight 1)
  ==============  ==========  ==========================================================

- ``NAME-metadata.json``: ``schema_version``, ``name``, ``image_height``, ``image_width``,
  ``channels``, ``sequence_length`` (frames per record; train and test may differ, see
  ``test_sequence_length``), ``num_train``, ``num_test``, ``train_shards``, ``test_shards``,
  ``value_mapping`` (``null`` or ``{"units": "dBZ", "scale": a, "offset": b}`` meaning
  ``units = a * pixel + b`` for uint8 ``pixel``), ``no_data_pixels``, ``source``, ``synthetic``,
  ``converter`` and ``converter_version``.

Pixels become float32 in [0, 1] as ``pixel / 255`` in the reader; :mod:`predrnn_tf.units`
maps them to physical units. Every file is written under a temporary name and put in place
by :mod:`predrnn_tf.files` when complete, so an interrupted conversion never leaves a shard
or a metadata file that looks finished.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf import files
from predrnn_tf.errors import DataError

# Re-exported for the callers that map pixels through the schema module; units.py owns them.
from predrnn_tf.units import pixels_to_units, units_to_pixels  # noqa: F401

SCHEMA_VERSION = 1
SPLITS = ("train", "test")

_FEATURES = {
    "frames": tf.io.FixedLenFeature([], tf.string),
    "shape": tf.io.FixedLenFeature([4], tf.int64),
    "sequence_id": tf.io.FixedLenFeature([], tf.string, default_value=b""),
}
UNKNOWN_WET_FRACTION = -1.0
_WET_FEATURES = {
    "wet_fraction": tf.io.FixedLenFeature([], tf.float32, default_value=UNKNOWN_WET_FRACTION),
}


def serialize_sequence(frames: np.ndarray, sequence_id: str = "",
                       wet_fraction: float | None = None) -> bytes:
    """Encodes one uint8 sequence ``[T, H, W, C]`` as a serialized ``tf.train.Example``.

    ``wet_fraction`` (optional) is stored as a float feature; without it the record holds
    exactly the three original features.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError(
            f"frames must be uint8 [T, H, W, C], got dtype={frames.dtype} shape={frames.shape}")
    feature = {
        "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=[frames.tobytes()])),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(frames.shape))),
        "sequence_id": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[sequence_id.encode("utf-8")])),
    }
    if wet_fraction is not None:
        feature["wet_fraction"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=[float(wet_fraction)]))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic: the feature map in key order, so the bytes never depend on the process
    # (a map's order follows the per-process string hash seed otherwise).
    return example.SerializeToString(deterministic=True)


def parse_sequence(serialized: tf.Tensor) -> tf.Tensor:
    """Decodes one serialized record to a uint8 tensor ``[T, H, W, C]`` (graph-safe)."""
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    pixels = tf.io.decode_raw(parsed["frames"], tf.uint8)
    return tf.reshape(pixels, parsed["shape"])


def parse_wet_fraction(serialized: tf.Tensor) -> tf.Tensor:
    """The record's float32 ``wet_fraction`` (-1 when it has none), without the pixels."""
    return tf.io.parse_single_example(serialized, _WET_FEATURES)["wet_fraction"]


def parse_sequence_numpy(serialized: bytes) -> tuple[np.ndarray, str]:
    """Decodes one record eagerly: returns (uint8 frames [T, H, W, C], sequence_id)."""
    example = tf.train.Example.FromString(serialized)
    features = example.features.feature
    shape = list(features["shape"].int64_list.value)
    frames = np.frombuffer(features["frames"].bytes_list.value[0], np.uint8).reshape(shape)
    sequence_id = features["sequence_id"].bytes_list.value[0].decode("utf-8")
    return frames, sequence_id


def shard_filename(name: str, split: str, index: int, count: int) -> str:
    """``NAME-SPLIT-XXXXX-of-YYYYY.tfrecord``."""
    return f"{name}-{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_paths(data_dir: str, name: str, split: str) -> list[str]:
    """The sorted finished shards of one split (temporary files never match)."""
    pattern = os.path.join(data_dir, f"{name}-{split}-?????-of-?????.tfrecord")
    if is_url(data_dir):
        return sorted(tf.io.gfile.glob(pattern))
    return sorted(glob.glob(pattern))


def is_url(path: str) -> bool:
    """Whether ``path`` names object storage (``gs://``, ``s3://``, ``ram://``, ...).

    Such folders are read through ``tf.io.gfile`` (TensorFlow reads ``gs://`` itself; other
    schemes need their file-system plugin, e.g. tensorflow-io for ``s3://``).
    """
    return "://" in path


def metadata_path(data_dir: str, name: str) -> str:
    """Path of ``NAME-metadata.json``."""
    return os.path.join(data_dir, f"{name}-metadata.json")


def write_metadata(data_dir: str, name: str, metadata: dict[str, Any]) -> str:
    """Writes ``NAME-metadata.json`` atomically (adds ``schema_version`` and ``name``)."""
    values = dict(metadata)
    values.setdefault("schema_version", SCHEMA_VERSION)
    values["name"] = name
    path = metadata_path(data_dir, name)
    files.write_json(path, values, sort_keys=True)
    return path


def read_metadata(data_dir: str, name: str) -> dict[str, Any]:
    """Reads ``NAME-metadata.json``; DataError naming the file if absent or invalid."""
    path = metadata_path(data_dir, name)
    if not (tf.io.gfile.exists(path) if is_url(path) else os.path.exists(path)):
        raise DataError(f"no dataset metadata {path} (check --data_dir and --dataset_name)")
    try:
        with (tf.io.gfile.GFile(path) if is_url(path) else open(path)) as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error


def publish_file(staged: str, path: str) -> str:
    """Puts the finished file ``staged`` in place as ``path`` through :func:`files.atomic_path`.

    The content reaches the temporary name of ``path`` as a hard link (a copy where the file
    system has no links); ``files`` fsyncs it and renames it over ``path``; then ``staged``
    is removed. Returns ``path``.
    """
    with files.atomic_path(path) as temporary:
        try:
            os.link(staged, temporary)
        except OSError:
            shutil.copyfile(staged, temporary)
    os.remove(staged)
    return path


class ShardedWriter:
    """Writes sequences of one split into ``sequences_per_shard``-sized shards.

    Shards are written as ``.NAME-SPLIT-XXXXX.tfrecord.tmp`` and published under their final
    ``-of-YYYYY`` names by :meth:`close` (:func:`publish_file`), when the shard count is
    known. Use as a context manager: on an exception the temporary files are removed and
    nothing is published.
    """

    def __init__(self, data_dir: str, name: str, split: str, sequences_per_shard: int = 256):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if sequences_per_shard < 1:
            raise ValueError(f"sequences_per_shard must be positive, got {sequences_per_shard}")
        self.data_dir = data_dir
        self.name = name
        self.split = split
        self.sequences_per_shard = sequences_per_shard
        self.count = 0
        self.frame_shape: tuple[int, ...] | None = None
        self._temporary_paths: list[str] = []
        self._writer: tf.io.TFRecordWriter | None = None
        os.makedirs(data_dir, exist_ok=True)

    def _temporary_path(self, index: int) -> str:
        return os.path.join(self.data_dir, f".{self.name}-{self.split}-{index:05d}.tfrecord.tmp")

    def write(self, frames: np.ndarray, sequence_id: str = "",
              wet_fraction: float | None = None) -> None:
        """Appends one uint8 sequence ``[T, H, W, C]`` (and its optional wet fraction)."""
        if self.count % self.sequences_per_shard == 0:
            if self._writer is not None:
                self._writer.close()
            path = self._temporary_path(len(self._temporary_paths))
            self._temporary_paths.append(path)
            self._writer = tf.io.TFRecordWriter(path)
        if self.frame_shape is None:
            self.frame_shape = tuple(frames.shape[1:])
        self._writer.write(serialize_sequence(frames, sequence_id, wet_fraction))
        self.count += 1

    def close(self) -> list[str]:
        """Finishes the shards and renames them to their final names; returns the paths."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        total = len(self._temporary_paths)
        remove_split(self.data_dir, self.name, self.split)
        final_paths = []
        for index, temporary in enumerate(self._temporary_paths):
            final = os.path.join(self.data_dir, shard_filename(self.name, self.split, index, total))
            final_paths.append(publish_file(temporary, final))
        self._temporary_paths = []
        return final_paths

    def abort(self) -> None:
        """Removes the temporary shards written so far."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for temporary in self._temporary_paths:
            if os.path.exists(temporary):
                os.remove(temporary)
        self._temporary_paths = []

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def remove_split(data_dir: str, name: str, split: str) -> None:
    """Deletes the finished shards of one split (before rewriting it)."""
    for path in shard_paths(data_dir, name, split):
        os.remove(path)


def read_split(data_dir: str, name: str, split: str) -> list[tuple[np.ndarray, str]]:
    """Reads every record of one split eagerly: a list of (uint8 frames, sequence_id)."""
    records = []
    for path in shard_paths(data_dir, name, split):
        for serialized in tf.data.TFRecordDataset(path):
            records.append(parse_sequence_numpy(serialized.numpy()))
    return records
