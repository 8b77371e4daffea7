"""Shared machinery of the dataset converters: staging, publishing, metadata, progress.

Every converter writes its shards into a hidden staging folder inside ``output_dir``
(``.NAME.staging-PID``) through :class:`predrnn_tf.data.schema.ShardedWriter`. Only when all
requested splits are complete does :meth:`DatasetStaging.commit` publish them: it removes
the old ``NAME-metadata.json``, moves the new shards into place (replacing the old shards of
the same splits; :func:`predrnn_tf.data.schema.publish_file`) and writes the metadata last
(:func:`predrnn_tf.files.write_json`). An interrupted conversion therefore never
leaves a shard or a metadata file that looks finished, and a dataset without metadata is
refused by the reader.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any, TextIO

from predrnn_tf.data import schema
from predrnn_tf.errors import DataError

CONVERTER_VERSION = "1.0"

# Fields that must agree between the two calls that write the two splits of one dataset.
_SHARED_FIELDS = ("image_height", "image_width", "channels", "value_mapping", "synthetic")


class DatasetStaging:
    """Collects the splits of one dataset and publishes them atomically.

    Use as a context manager; leaving it with an exception removes the staging folder.

    Args:
      output_dir: folder of the finished dataset.
      name: dataset name (file prefix).
      sequences_per_shard: records per TFRecord shard.
    """

    def __init__(self, output_dir: str, name: str, sequences_per_shard: int = 1000):
        if not name or os.sep in name:
            raise ValueError(f"--name must be a non-empty file prefix, got {name!r}")
        if sequences_per_shard < 1:
            raise ValueError(
                f"--sequences_per_shard must be positive, got {sequences_per_shard}")
        self.output_dir = output_dir
        self.name = name
        self.sequences_per_shard = sequences_per_shard
        os.makedirs(output_dir, exist_ok=True)
        self.staging_dir = os.path.join(output_dir, f".{name}.staging-{os.getpid()}")
        os.makedirs(self.staging_dir, exist_ok=True)
        self.writers: dict[str, schema.ShardedWriter] = {}

    def writer(self, split: str) -> schema.ShardedWriter:
        """The staging writer of ``split`` (created on first use)."""
        if split not in self.writers:
            self.writers[split] = schema.ShardedWriter(
                self.staging_dir, self.name, split, self.sequences_per_shard)
        return self.writers[split]

    def count(self, split: str) -> int:
        """Sequences written so far to ``split``."""
        return self.writers[split].count if split in self.writers else 0

    def commit(self, metadata: dict[str, Any], sequence_lengths: dict[str, int]) -> dict[str, Any]:
        """Publishes the written splits and the merged metadata; returns the metadata.

        Splits not written by this run keep their shards and metadata from an earlier run
        (the importers write one split per call); the shared fields must then agree with
        the earlier run, or DataError names both values.

        Args:
          metadata: the dataset-wide fields (image size, value mapping, source, ...).
          sequence_lengths: frames per record of each written split.
        """
        previous = self._previous_metadata()
        split_fields: dict[str, Any] = {}
        shards: dict[str, list[str]] = {}
        for split, writer in self.writers.items():
            shards[split] = writer.close()
            split_fields[f"num_{split}"] = writer.count
            split_fields[f"{split}_shards"] = len(shards[split])
        merged = merge_metadata(previous, metadata, split_fields, sequence_lengths)
        merged["name"] = self.name
        metadata_path = schema.metadata_path(self.output_dir, self.name)
        if os.path.exists(metadata_path):
            os.remove(metadata_path)
        for split, paths in shards.items():
            schema.remove_split(self.output_dir, self.name, split)
            for path in paths:
                schema.publish_file(path, os.path.join(self.output_dir, os.path.basename(path)))
        schema.write_metadata(self.output_dir, self.name, merged)
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        return schema.read_metadata(self.output_dir, self.name)

    def abort(self) -> None:
        """Drops everything written so far."""
        for writer in self.writers.values():
            writer.abort()
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _previous_metadata(self) -> dict[str, Any] | None:
        unwritten = [split for split in schema.SPLITS if split not in self.writers]
        path = schema.metadata_path(self.output_dir, self.name)
        if not unwritten or not os.path.exists(path):
            return None
        return schema.read_metadata(self.output_dir, self.name)

    def __enter__(self) -> DatasetStaging:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is not None:
            self.abort()


def common_metadata(height: int, width: int, channels: int, source: str, synthetic: bool,
                    converter: str) -> dict[str, Any]:
    """The dataset-wide metadata fields every converter writes.

    Args:
      height: frame height in pixels.
      width: frame width in pixels.
      channels: channels per frame.
      source: free text naming where the frames came from.
      synthetic: whether the frames were generated rather than recorded.
      converter: the tool that wrote the dataset (``make_moving_mnist``, ...).

    Returns:
      The fields, with no value mapping and no no-data pixels yet.
    """
    return {"image_height": int(height), "image_width": int(width),
            "channels": int(channels), "value_mapping": None, "no_data_pixels": 0,
            "source": source, "synthetic": synthetic, "converter": converter}


def merge_metadata(
    previous: dict[str, Any] | None,
    metadata: dict[str, Any],
    split_fields: dict[str, Any],
    sequence_lengths: dict[str, int],
) -> dict[str, Any]:
    """Combines this run's metadata with an earlier run's that wrote the other split.

    Args:
      previous: the published metadata of an earlier run, or None.
      metadata: this run's dataset-wide fields.
      split_fields: ``num_SPLIT`` and ``SPLIT_shards`` of the splits written now.
      sequence_lengths: frames per record of the splits written now.

    Returns:
      The full metadata dict (without ``schema_version`` and ``name``, added on writing).
    """
    merged: dict[str, Any] = {
        "num_train": 0, "num_test": 0, "train_shards": 0, "test_shards": 0,
        "no_data_pixels": 0, "synthetic": False, "value_mapping": None,
    }
    sources: dict[str, str] = {}
    if previous is not None:
        check_shared_fields(previous, metadata)
        merged.update(previous)
        merged.pop("schema_version", None)
        sources.update(previous.get("sources", {}))
        merged["no_data_pixels"] = previous.get("no_data_pixels", 0)
    merged.update({key: value for key, value in metadata.items() if key != "no_data_pixels"})
    merged["no_data_pixels"] += int(metadata.get("no_data_pixels", 0))
    merged.update(split_fields)
    for split in sequence_lengths:
        sources[split] = str(metadata.get("source", ""))
    merged["sources"] = sources
    merged["source"] = "; ".join(f"{split}: {text}" for split, text in sorted(sources.items()))
    merged.update(_merge_sequence_lengths(merged, previous is not None, sequence_lengths))
    merged["converter_version"] = CONVERTER_VERSION
    return merged


def check_shared_fields(previous: dict[str, Any], metadata: dict[str, Any]) -> None:
    """DataError naming both values if a field both splits must share differs."""
    for field in _SHARED_FIELDS:
        if field in previous and field in metadata and previous[field] != metadata[field]:
            raise DataError(
                f"the existing dataset has {field}={previous[field]!r} but this "
                f"conversion gives {field}={metadata[field]!r}; use another --name or "
                f"--output_dir")


def _merge_sequence_lengths(merged: dict[str, Any], has_previous: bool,
                            sequence_lengths: dict[str, int]) -> dict[str, Any]:
    """The three length fields: a split not written now keeps its earlier length."""
    train_length = sequence_lengths.get("train")
    test_length = sequence_lengths.get("test")
    if train_length is None:
        train_length = merged.get("sequence_length") if has_previous else test_length
    if test_length is None:
        test_length = merged.get("test_sequence_length") if has_previous else train_length
    return {"sequence_length": train_length, "train_sequence_length": train_length,
            "test_sequence_length": test_length}


class ProgressBar:
    """A dependency-free progress bar on stderr with rate and ETA.

    On a terminal it redraws one line; otherwise (logs, CI) it prints a line every 10%.

    Args:
      total: expected number of steps (0 if unknown).
      description: text in front of the bar.
      stream: where to draw (default ``sys.stderr``).
    """

    def __init__(self, total: int, description: str, stream: TextIO | None = None):
        self.total = max(int(total), 0)
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.count = 0
        self.start_time = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, steps: int = 1) -> None:
        """Advances by ``steps`` and redraws when due."""
        self.count += steps
        now = time.monotonic()
        if self._interactive:
            if now - self._last_draw >= 0.1 or self.count >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
            return
        decile = (10 * self.count // self.total) if self.total else -1
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draws the final state and ends the line."""
        now = time.monotonic()
        if self._interactive:
            self.stream.write("\r" + self._line(now) + "\n")
        elif self.total == 0 or 10 * self.count // self.total <= self._last_decile:
            pass
        else:
            self.stream.write(self._line(now) + "\n")
        self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.start_time, 1e-9)
        rate = self.count / elapsed
        if not self.total:
            return f"{self.description}: {self.count} ({rate:.1f}/s, {elapsed:.0f} s)"
        fraction = min(self.count / self.total, 1.0)
        filled = int(30 * fraction)
        remaining = (self.total - self.count) / rate if rate > 0 else 0.0
        bar = "#" * filled + "." * (30 - filled)
        return (f"{self.description}: [{bar}] {self.count}/{self.total} "
                f"{100 * fraction:3.0f}% {rate:.1f}/s ETA {remaining:.0f} s")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None:
            self.close()
        elif self._interactive:
            self.stream.write("\n")


def format_summary(metadata: dict[str, Any], output_dir: str, seconds: float) -> str:
    """The one-line summary every converter prints at the end."""
    return (
        f"wrote {metadata['name']}: {metadata['num_train']} train sequences of "
        f"{metadata['sequence_length']} frames ({metadata['train_shards']} shards), "
        f"{metadata['num_test']} test sequences of {metadata['test_sequence_length']} frames "
        f"({metadata['test_shards']} shards), {metadata['image_height']}x"
        f"{metadata['image_width']}x{metadata['channels']}, no-data pixels "
        f"{metadata.get('no_data_pixels', 0)}, to {output_dir} in {seconds:.1f} s")
