"""The one tf.data reader for every dataset: TFRecord shards -> float32 [B, T, H, W, C]."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from predrnn_tf.data import augmentation, mixing, scale_out, schema, wetness
from predrnn_tf.errors import DataError


def frame_shape(metadata: dict[str, Any], split: str) -> tuple[int, int, int]:
    """``(height, width, channels)`` of one split's frames (whole test composites: their own)."""
    if split == "test" and metadata.get("test_image_height"):
        return metadata["test_image_height"], metadata["test_image_width"], metadata["channels"]
    return metadata["image_height"], metadata["image_width"], metadata["channels"]


def check_metadata(metadata: dict[str, Any], config, split: str,
                   sequence_length: int | None = None) -> None:
    """Checks a dataset's metadata against the configuration; DataError names both values.

    Args:
      metadata: the dataset's ``NAME-metadata.json`` contents.
      config: a :class:`predrnn_tf.config.Config`.
      split: ``train`` or ``test``.
      sequence_length: frames needed per sequence (default ``config.total_length``).
    """
    if not isinstance(metadata, dict):
        raise DataError(f"the metadata of dataset {config.dataset_name!r} must be a JSON "
                        f"object, found {type(metadata).__name__}")
    name = metadata.get("name", config.dataset_name)
    for key in ("image_height", "image_width", "test_image_height", "test_image_width",
                "channels", f"{split}_sequence_length",
                "sequence_length", f"num_{split}"):
        value = metadata.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise DataError(f"dataset {name!r}: metadata {key} must be a non-negative "
                            f"integer, found {value!r}")
    needed = sequence_length or config.total_length
    height, width = metadata.get("image_height"), metadata.get("image_width")
    if split == "test" and metadata.get("test_image_height"):  # whole composites
        height, width = metadata["test_image_height"], metadata.get("test_image_width")
        if height % config.patch_size or width % config.patch_size:
            raise DataError(f"dataset {name!r} has {height}x{width} whole test frames, not "
                            f"multiples of --patch_size={config.patch_size}")
    # Larger frames are cropped to --img_width by the reader (centred; random with --augment).
    elif not (isinstance(height, int) and isinstance(width, int)
            and min(height, width) >= config.img_width
            and ((height, width) == (config.img_width, config.img_width) or height == width)):
        raise DataError(f"dataset {name!r} has {height}x{width} frames but "
                        f"--img_width={config.img_width}")
    if metadata.get("channels") != config.img_channel:
        raise DataError(f"dataset {name!r} has {metadata.get('channels')} channel(s) but "
                        f"--img_channel={config.img_channel}")
    stored = metadata.get(f"{split}_sequence_length", metadata.get("sequence_length"))
    if stored is None or stored < needed:
        raise DataError(f"dataset {name!r} has {split} sequences of {stored} frames but "
                        f"{needed} are needed (--total_length={config.total_length})")


def first_record_shard(paths: list[str]) -> str | None:
    """The first of ``paths`` that is not empty, without starting TensorFlow's runtime.

    A TFRecord file of non-zero size either holds a record or is damaged (then the reader's
    own error names it later), so its size decides. Reading a record here would initialise
    the eager context before a multi-worker strategy can configure collective ops.
    """
    for path in paths:
        try:
            if (tf.io.gfile.stat(path).length if schema.is_url(path) else os.path.getsize(path)):
                return path
        except (OSError, tf.errors.OpError):
            return path  # an unreadable shard is named by the reader's own error later
    return None


def check_split_has_records(data_dir: str, name: str, split: str,
                            metadata: dict[str, Any] | None = None) -> list[str]:
    """The shards of one split; DataError if there are none or none holds a record.

    A repeated stream of empty shards would spin forever, so this is checked before one is
    built (the metadata's count is not trusted: it is reported beside what was found).
    """
    paths = schema.shard_paths(data_dir, name, split)
    if not paths:
        raise DataError(f"no {split} shards {name}-{split}-*-of-*.tfrecord in {data_dir}")
    if first_record_shard(paths) is None:
        counted = (metadata or {}).get(f"num_{split}")
        claim = f" although its metadata counts {counted}" if counted else ""
        raise DataError(f"the {len(paths)} {split} shard(s) {name}-{split}-*.tfrecord in "
                        f"{data_dir} hold no record{claim}: convert the dataset again")
    return paths


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
                 skip_records: int = 0, augment: bool = False,
                 frame_size: int | None = None,
                 augment_time_reversal: bool = False,
                 scale: scale_out.ScaleOptions = scale_out.NO_SCALING) -> tf.data.Dataset:
    """Streams one split as float32 batches ``[B, T, H, W, C]`` in [0, 1].

    ``name`` may be a mixture ``a,b:2`` (:mod:`predrnn_tf.data.mixing`); frames larger than
    ``frame_size`` are cropped (centred, or at random with ``augment``, which also rotates
    and flips: :mod:`predrnn_tf.data.augmentation`).

    File-level interleave, parallel decode, a shuffle buffer of serialized records (memory is
    bounded by ``shuffle_buffer`` records), repeat, batch, prefetch.

    Args:
      data_dir: folder with the shards and ``NAME-metadata.json``.
      name: dataset name.
      split: ``train``, ``test`` or ``validation``.
      batch_size: sequences per batch (per input pipeline when ``input_context`` is given).
      sequence_length: frames taken from the start of each stored sequence.
      shuffle: shuffle shard order and records.
      repeat: repeat forever.
      seed: seed of the shuffles.
      deterministic: keep a reproducible order despite parallelism.
      skip_corrupt: drop records that fail to read or decode instead of failing.
      shuffle_buffer: records in the shuffle buffer.
      drop_remainder: drop the last partial batch (keeps shapes static).
      input_context: from ``distribute_datasets_from_function``: shards per worker (below).
      skip_records: records dropped before decoding (replays a stream up to a resumed step).
      augment_time_reversal: play each sequence backwards with probability 0.5 (training).
      scale: wet sampling, validation split, tf.data service (:class:`scale_out.ScaleOptions`).

    Returns:
      A ``tf.data.Dataset``.
    """
    scale_out.check_split(split)
    options = dict(shuffle=shuffle, repeat=repeat, seed=seed, deterministic=deterministic,
                   skip_corrupt=skip_corrupt, shuffle_buffer=shuffle_buffer,
                   input_context=input_context, skip_records=skip_records, augment=augment,
                   frame_size=frame_size, augment_time_reversal=augment_time_reversal,
                   wet_sampling=scale.wet_sampling, validation_fraction=scale.validation_fraction)
    sequences = (_mixed_sequences(data_dir, name, split, sequence_length, options)
                 if mixing.is_mixture(name) else
                 _sequences(data_dir, name, split, sequence_length, **options))
    batches = _batch_sequences(sequences, batch_size, drop_remainder, deterministic)
    return scale_out.use_data_service(batches, scale.data_service, scale.data_service_job)


def _mixed_sequences(data_dir: str, name: str, split: str, sequence_length: int,
                     options: dict[str, Any]) -> tf.data.Dataset:
    """A mixture's sequences: weighted draws (repeated train), else the splits in turn."""
    mixing.read_metadata(data_dir, name)  # the sources must agree
    sources = mixing.parse_sources(name)
    streams = [_sequences(data_dir, source, split, sequence_length, **options)
               for source, _ in sources]
    if split == "train" and options["repeat"]:
        return mixing.mix(streams, [weight for _, weight in sources], options["seed"],
                          options["deterministic"])
    sequences = streams[0]
    for stream in streams[1:]:
        sequences = sequences.concatenate(stream)
    return sequences


def _sequences(data_dir: str, name: str, split: str, sequence_length: int, *, shuffle: bool,
               repeat: bool, seed: int, deterministic: bool, skip_corrupt: bool,
               shuffle_buffer: int, input_context: tf.distribute.InputContext | None,
               skip_records: int, augment: bool, frame_size: int | None,
               augment_time_reversal: bool, wet_sampling: wetness.WetSampling | None,
               validation_fraction: float) -> tf.data.Dataset:
    """The decoded (cropped, augmented) uint8 sequences of one source's split."""
    metadata = schema.read_metadata(data_dir, name)
    paths = scale_out.split_shards(data_dir, name, split, validation_fraction)
    if repeat and first_record_shard(paths) is None:  # would spin forever
        check_split_has_records(data_dir, name, "train" if split == scale_out.VALIDATION else split,
                                metadata)
        raise DataError(f"the {split} shards of {name!r} in {data_dir} hold no record")
    records = _read_records(paths, shuffle=shuffle, repeat=repeat, seed=seed,
                            deterministic=deterministic, input_context=input_context)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if wet_sampling is not None:
        records = scale_out.sample_wet(records, wet_sampling, seed)
    if skip_records:
        records = records.skip(skip_records)
    shape = frame_shape(metadata, "train" if split == scale_out.VALIDATION else split)
    sequences = records.map(_decoder(sequence_length, *shape),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if skip_corrupt:
        sequences = sequences.ignore_errors(log_warning=True)
    if frame_size is None and not augment:  # as stored: whole composites need not be square
        transform = augmentation.reverse_time_at_random if augment_time_reversal else None
    else:
        transform = augmentation.make_frame_transform(shape, frame_size, augment,
                                                      augment_time_reversal)
    if transform is not None:
        sequences = sequences.map(transform, num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=deterministic)
    return sequences


def _read_records(paths: list[str], *, shuffle: bool, repeat: bool, seed: int,
                  deterministic: bool,
                  input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """Serialized records of ``paths``, interleaved by file and sharded per input pipeline.

    Shards by file when there are at least as many files as pipelines, else by record
    (each file's every n-th record, so that the pipelines' records stay disjoint whatever
    order the parallel interleave produces).
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
    def read(path):
        records = tf.data.TFRecordDataset(path)
        if shard_records:  # every n-th record of each file: disjoint in any interleave order
            records = records.shard(pipelines, input_context.input_pipeline_id)
        return records

    return files.interleave(read, cycle_length=min(4, len(paths)), block_length=1,
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


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
    readable, corrupt = 0, []
    for path in schema.shard_paths(data_dir, name, split):
        count, failed = count_readable_records(path, sequence_length,
                                               frame_shape(metadata, split))
        readable += count
        if failed:
            corrupt.append(path)
    expected = metadata.get(f"num_{split}")
    skipped = max(expected - readable, len(corrupt)) if expected is not None else len(corrupt)
    return {"readable": readable, "expected": expected, "skipped": skipped,
            "corrupt_shards": corrupt}
