"""Resumable conversion in whole shards: plan, write shard by shard, publish when all are done.

A conversion is planned as :class:`ShardTask` s (one output shard each: a split, an index
and the recipe's description of the windows it holds). A *shard writer* (a picklable
``write(task, path) -> stats``) writes one task's records to one TFRecord file. This module
runs the tasks (in this process or in an :func:`parallel.ordered_map` pool, or as a Beam
``DoFn``: :mod:`.beam_pipeline`), each into the staging folder ``OUTPUT/.NAME.resumable``:

- ``NAME-SPLIT-XXXXX.tfrecord``, put in place atomically (:func:`predrnn_tf.files.atomic_path`);
- then ``NAME-SPLIT-XXXXX.json``, the shard's manifest (records, bytes, SHA-256, the
  writer's statistics), also atomic. A shard is finished exactly when its manifest exists
  and names the file's size.

``plan.json`` holds a fingerprint of the flags and inputs; running the same command again
skips the finished shards (a kill -9 loses at most the shards in progress: one per worker),
and a changed command starts the staging over. :func:`publish` hard-links the finished
shards to their final ``NAME-SPLIT-XXXXX-of-YYYYY.tfrecord`` names (empty shards are left
out), writes the metadata last and only then removes the staging folder, so a kill during
publishing is resumed by publishing again. Every shard's bytes depend only on its task, so
any number of workers, and any engine, gives the same files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from absl import logging

from predrnn_tf import files
from predrnn_tf.data import schema
from predrnn_tf.data.converters import parallel, publishing

PLAN_FILE = "plan.json"


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """One output shard: its split, its index in the split, and the windows it holds.

    Attributes:
      split: ``train`` or ``test``.
      index: position of the shard in its split.
      windows: the shard writer's description of each window (picklable, JSON-able).
      inputs: what the windows read (e.g. the file paths they span), so a task is
        self-contained and a worker needs nothing else.
      owned: the leading ``inputs`` whose per-input statistics this shard counts (inputs
        shared with the next shard are counted there); -1 = all.
    """

    split: str
    index: int
    windows: tuple[Any, ...]
    inputs: tuple[Any, ...] = ()
    owned: int = -1


ShardWriter = Callable[[ShardTask, str], dict[str, Any]]


def plan_shards(windows_by_split: dict[str, Sequence[Any]], windows_per_shard: int
                ) -> list[ShardTask]:
    """Cuts each split's windows into tasks of ``windows_per_shard`` consecutive windows."""
    if windows_per_shard < 1:
        raise ValueError(f"windows_per_shard must be positive, got {windows_per_shard}")
    tasks = []
    for split, split_windows in windows_by_split.items():
        for index, start in enumerate(range(0, len(split_windows), windows_per_shard)):
            chunk = tuple(split_windows[start:start + windows_per_shard])
            tasks.append(ShardTask(split, index, chunk))
    return tasks


def fingerprint(values: Any) -> str:
    """SHA-256 of ``values`` as canonical JSON: identifies a conversion's flags and inputs."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def staging_folder(output_dir: str, name: str) -> str:
    """The staging folder of dataset ``name``: ``OUTPUT/.NAME.resumable``."""
    return os.path.join(output_dir, f".{name}.resumable")


def shard_stem(name: str, task: ShardTask) -> str:
    """``NAME-SPLIT-XXXXX``: the staged shard's and its manifest's name without extension."""
    return f"{name}-{task.split}-{task.index:05d}"


def open_staging(output_dir: str, name: str, plan_fingerprint: str) -> str:
    """Creates (or keeps, when the fingerprint matches) the staging folder; returns it."""
    folder = staging_folder(output_dir, name)
    plan_path = os.path.join(folder, PLAN_FILE)
    if os.path.isdir(folder):
        try:
            with open(plan_path) as handle:
                previous = json.load(handle).get("fingerprint")
        except (OSError, ValueError):
            previous = None
        if previous == plan_fingerprint:
            for leftover in os.listdir(folder):  # a killed writer's temporary file
                if leftover.startswith(".tmp-"):
                    os.remove(os.path.join(folder, leftover))
            return folder
        logging.warning("%s holds a conversion of other flags or inputs: starting over.", folder)
        shutil.rmtree(folder)
    os.makedirs(folder)
    files.write_json(plan_path, {"fingerprint": plan_fingerprint})
    return folder


def finished_manifest(folder: str, name: str, task: ShardTask) -> dict[str, Any] | None:
    """The manifest of a finished shard, or None if the shard must be (re)written."""
    stem = os.path.join(folder, shard_stem(name, task))
    try:
        with open(stem + ".json") as handle:
            manifest = json.load(handle)
        if os.path.getsize(stem + ".tfrecord") == manifest["bytes"]:
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def sha256_of(path: str) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_shard(write: ShardWriter, folder: str, name: str, task: ShardTask) -> dict[str, Any]:
    """Writes one task's shard and then its manifest, both atomically; returns the manifest."""
    stem = os.path.join(folder, shard_stem(name, task))
    with files.atomic_path(stem + ".tfrecord") as temporary:
        stats = write(task, temporary)
    manifest = {"split": task.split, "index": task.index, "windows": len(task.windows),
                "records": int(stats.pop("records")), "bytes": os.path.getsize(stem + ".tfrecord"),
                "sha256": sha256_of(stem + ".tfrecord"), "stats": stats}
    files.write_json(stem + ".json", manifest, sort_keys=True)
    return manifest


def run_shards(write: ShardWriter, folder: str, name: str, tasks: Sequence[ShardTask],
               num_workers: int = 1, description: str = "") -> list[dict[str, Any]]:
    """Writes every unfinished task's shard; returns all manifests in task order.

    Progress (windows done, over all tasks) goes to stderr; finished shards count at once.
    """
    manifests = {(task.split, task.index): finished_manifest(folder, name, task)
                 for task in tasks}
    pending = [task for task in tasks if manifests[(task.split, task.index)] is None]
    total = sum(len(task.windows) for task in tasks)
    with publishing.ProgressBar(total, description or f"{name} windows") as progress:
        progress.update(total - sum(len(task.windows) for task in pending))
        if len(pending) < len(tasks):
            logging.info("Resuming: %d of %d shards already written.",
                         len(tasks) - len(pending), len(tasks))
        worker = functools.partial(write_shard, write, folder, name)
        for task, manifest in zip(pending, _mapped(worker, pending, num_workers), strict=True):
            manifests[(task.split, task.index)] = manifest
            progress.update(len(task.windows))
    return [manifests[(task.split, task.index)] for task in tasks]


def _mapped(worker: Callable[[ShardTask], dict[str, Any]], tasks: list[ShardTask],
            num_workers: int) -> Iterator[dict[str, Any]]:
    """``worker`` over ``tasks`` in order: in this process, or in a pool of processes."""
    workers = min(parallel.check_num_workers(num_workers), max(len(tasks), 1))
    return parallel.ordered_map(worker, tasks, workers, max_in_flight=workers)


def publish(folder: str, output_dir: str, name: str, manifests: Sequence[dict[str, Any]],
            metadata: dict[str, Any], sequence_lengths: dict[str, int]) -> dict[str, Any]:
    """Publishes the staged shards of every split in ``sequence_lengths``; returns the metadata.

    Empty shards are left out; the rest are numbered in task order. The old metadata goes
    first and the new one is written last; the staging folder is removed at the very end.
    """
    kept = {split: [m for m in manifests if m["split"] == split and m["records"]]
            for split in sequence_lengths}
    split_fields: dict[str, Any] = {}
    for split, split_manifests in kept.items():
        split_fields[f"num_{split}"] = sum(m["records"] for m in split_manifests)
        split_fields[f"{split}_shards"] = len(split_manifests)
    merged = publishing.merge_metadata(None, metadata, split_fields, sequence_lengths)
    metadata_path = schema.metadata_path(output_dir, name)
    if os.path.exists(metadata_path):
        os.remove(metadata_path)
    for split, split_manifests in kept.items():
        schema.remove_split(output_dir, name, split)
        for position, manifest in enumerate(split_manifests):
            staged = os.path.join(folder, f"{name}-{split}-{manifest['index']:05d}.tfrecord")
            final = schema.shard_filename(name, split, position, len(split_manifests))
            _link(staged, os.path.join(output_dir, final))
    schema.write_metadata(output_dir, name, merged)
    shutil.rmtree(folder, ignore_errors=True)
    return schema.read_metadata(output_dir, name)


def _link(staged: str, path: str) -> None:
    """Puts a copy of ``staged`` at ``path`` atomically (a hard link where possible)."""
    with files.atomic_path(path) as temporary:
        try:
            os.link(staged, temporary)
        except OSError:
            shutil.copyfile(staged, temporary)


def summed_stats(manifests: Sequence[dict[str, Any]], key: str) -> Any:
    """The sum of the writer statistic ``key`` over all manifests (numbers only)."""
    return sum(manifest["stats"].get(key, 0) for manifest in manifests)
