"""The one tf.data reader for every dataset: TFRecord shards -> float32 [B, T, H, W, C]."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from predrnn_tf.data import schema
from predrnn_tf.errors import DataError


def check_metadata(metadata: dict[str, Any], config, split: str,
                   sequence_length: int | None = None) -> None:
    """Checks a dataset's metadata against the configuration; DataError names both values.

    Args:
      metadata: the dataset's ``NAME-metadata.json`` contents.
      config: a :class:`predrnn_tf.config.Config`.
      split: ``train`` or ``test``.
      sequence_length: frames needed per sequence (default ``config.total_length``).
    """
    name = metadata.get("name", config.dataset_name)
    needed = sequence_length or config.total_length
    height, width = metadata.get("image_height"), metadata.get("image_width")
    if (height, width) != (config.img_width, config.img_width):
        raise DataError(f"dataset {name!r} has {height}x{width} frames but "
                        f"--img_width={config.img_width}")
    if metadata.get("channels") != config.img_channel:
        raise DataError(f"dataset {name!r} has {metadata.get('channels')} channel(s) but "
                        f"--img_channel={config.img_channel}")
    stored = metadata.get(f"{split}_sequence_length", metadata.get("sequence_length"))
    if stored is None or stored < needed:
        raise DataError(f"dataset {name!r} has {split} sequences of {stored} frames but "
                        f"{needed} are needed (--total_length={config.total_length})")


def _decoder(sequence_length: int, height: int, width: int, channels: int):
    def decode(serialized):
        frames = schema.parse_sequence(serialized)
        frames = frames[:sequence_length]
        return tf.ensure_shape(frames, [sequence_length, height, width, channels])
    return decode


def _to_unit_float(frames_uint8):
    return tf.cast(frames_uint8, tf.float32) * (1.0 / 255.0)


def make_dataset(data_dir: str, name: str, split: str, batch_size: int, sequence_length: int, *,
                 shuffle: bool = True, repeat: bool = True, seed: int = 0,
                 deterministic: bool = False, skip_corrupt: bool = False,
                 shuffle_buffer: int = 256, drop_remainder: bool = True,
                 input_context: tf.distribute.InputContext | None = None,
                 skip_records: int = 0) -> tf.data.Dataset:
    """Streams one split as float32 batches ``[B, T, H, W, C]`` in [0, 1].

    File-level interleave, parallel decode, a shuffle buffer of serialized records (memory is
    bounded by ``shuffle_buffer`` records), repeat, batch, prefetch.

    Args:
      data_dir: folder with the shards and ``NAME-metadata.json``.
      name: dataset name.
      split: ``train`` or ``test``.
      batch_size: sequences per batch (per input pipeline when ``input_context`` is given).
      sequence_length: frames taken from the start of each stored sequence.
      shuffle: shuffle shard order and records.
      repeat: repeat forever.
      seed: seed of the shuffles.
      deterministic: keep a reproducible order despite parallelism.
      skip_corrupt: drop records that fail to read or decode instead of failing.
      shuffle_buffer: records in the shuffle buffer.
      drop_remainder: drop the last partial batch (keeps shapes static).
      input_context: from ``distribute_datasets_from_function``: shards the input per worker,
        by file when there are at least as many files as pipelines, else by record.
      skip_records: records of this pipeline's (shuffled) stream dropped before decoding:
        replays a deterministic stream up to a resumed step.

    Returns:
      A ``tf.data.Dataset``.
    """
    if split not in schema.SPLITS:
        raise ValueError(f"split must be one of {schema.SPLITS}, received {split!r}")
    metadata = schema.read_metadata(data_dir, name)
    paths = schema.shard_paths(data_dir, name, split)
    if not paths:
        raise DataError(f"no {split} shards {name}-{split}-*-of-*.tfrecord in {data_dir}")
    records = _read_records(paths, shuffle=shuffle, repeat=repeat, seed=seed,
                            deterministic=deterministic, input_context=input_context)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if skip_records:
        records = records.skip(skip_records)
    frame_shape = (metadata["image_height"], metadata["image_width"], metadata["channels"])
    sequences = records.map(_decoder(sequence_length, *frame_shape),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if skip_corrupt:
        sequences = sequences.ignore_errors(log_warning=True)
    return _batch_sequences(sequences, batch_size, drop_remainder, deterministic)


def _read_records(paths: list[str], *, shuffle: bool, repeat: bool, seed: int,
                  deterministic: bool,
                  input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """Serialized records of ``paths``, interleaved by file and sharded per input pipeline.

    Shards by file when there are at least as many files as pipelines, else by record.
    """
    files = tf.data.Dataset.from_tensor_slices(paths)
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    shard_records = pipelines > 1 and len(paths) < pipelines
    if pipelines > 1 and not shard_records:
        files = files.shard(pipelines, input_context.input_pipeline_id)
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    records = files.interleave(
        tf.data.TFRecordDataset, cycle_length=min(4, len(paths)), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if shard_records:
        records = records.shard(pipelines, input_context.input_pipeline_id)
    return records


def _batch_sequences(sequences: tf.data.Dataset, batch_size: int, drop_remainder: bool,
                     deterministic: bool) -> tf.data.Dataset:
    """Batches uint8 sequences into float32 ``[B, T, H, W, C]`` in [0, 1], prefetched."""
    batches = sequences.batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def _first_line(error: tf.errors.OpError) -> str:
    message = (error.message or "").strip()
    message = message.splitlines()[0] if message else type(error).__name__
    return message.split("}} ")[-1]  # drop TensorFlow's "{{function_node ...}}" prefix


def _shard_decoder(sequence_length: int | None, frame_shape: tuple[int, int, int] | None):
    if sequence_length is None or frame_shape is None:
        return schema.parse_sequence
    return _decoder(sequence_length, *frame_shape)


def find_corrupt_shard(paths: list[str], sequence_length: int | None = None,
                       frame_shape: tuple[int, int, int] | None = None) -> tuple[str, str] | None:
    """Reads every shard to find the first that fails; returns (path, error) or None.

    Args:
      paths: shard paths, checked in order.
      sequence_length: if given with ``frame_shape``, records must hold at least this many
        frames of ``frame_shape`` (as the training reader requires).
      frame_shape: ``(H, W, C)`` of every frame.
    """
    decode = _shard_decoder(sequence_length, frame_shape)
    for path in paths:
        try:
            tf.data.TFRecordDataset(path).map(decode).reduce(0, lambda count, _: count + 1)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            return path, _first_line(error)
    return None


def count_readable_records(path: str, sequence_length: int | None = None,
                           frame_shape: tuple[int, int, int] | None = None) -> tuple[int, bool]:
    """``(readable records, whether any read failed)`` for one shard.

    A record that fails to decode is not counted; a corrupt or truncated record stops the
    reading of its shard (the records after it cannot be framed), as in training with
    ``skip_corrupt``.
    """
    decode = _shard_decoder(sequence_length, frame_shape)
    records = tf.data.TFRecordDataset(path).map(decode)
    try:
        return int(records.reduce(0, lambda count, _: count + 1)), False
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
        readable = records.ignore_errors().reduce(0, lambda count, _: count + 1)
        return int(readable), True


def scan_split(data_dir: str, name: str, split: str, sequence_length: int) -> dict[str, Any]:
    """Counts the records of one split that training with ``skip_corrupt`` will skip.

    Returns:
      ``{"readable": n, "expected": metadata count or None, "skipped": n,
      "corrupt_shards": [paths]}``; ``skipped`` is ``expected - readable`` when the metadata
      holds the count, else the number of corrupt shards (a lower bound).
    """
    metadata = schema.read_metadata(data_dir, name)
    frame_shape = (metadata["image_height"], metadata["image_width"], metadata["channels"])
    readable, corrupt = 0, []
    for path in schema.shard_paths(data_dir, name, split):
        count, failed = count_readable_records(path, sequence_length, frame_shape)
        readable += count
        if failed:
            corrupt.append(path)
    expected = metadata.get(f"num_{split}")
    skipped = max(expected - readable, len(corrupt)) if expected is not None else len(corrupt)
    return {"readable": readable, "expected": expected, "skipped": skipped,
            "corrupt_shards": corrupt}
