"""Input problems during training: naming a corrupt, missing or other-sized shard.

Only errors that come from reading or parsing records (``DataLossError``, or an
``InvalidArgumentError`` / ``NotFoundError`` raised by the input iterator) trigger the
checks here: a shard deleted meanwhile, a shard whose frames are of another size than the
model's, then the shard scan of :func:`predrnn_tf.data.reader.find_corrupt_shard`; any
other error (e.g. a shape error inside the train step) is re-raised untouched, without
reading every shard first. Counting skipped records lives here too.
"""

from __future__ import annotations

import re

import tensorflow as tf
from absl import logging

from predrnn_tf.config import Config
from predrnn_tf.data import reader, schema
from predrnn_tf.errors import DataError

# Every error raised while getting a batch from tf.data names this op (also for
# MultiDeviceIteratorGetNextFromShard and the eager [Op:IteratorGetNext]).
_INPUT_OP = "IteratorGetNext"
_MISSING_FILE = re.compile(r"(\S+\.tfrecord); No such file or directory")


def is_record_error(error: BaseException) -> bool:
    """True if ``error`` is about reading or parsing records (corruption, truncation, a
    shard that vanished)."""
    if isinstance(error, tf.errors.DataLossError):
        return True
    return isinstance(error, (tf.errors.InvalidArgumentError, tf.errors.NotFoundError)) and (
        _INPUT_OP in (getattr(error, "message", None) or str(error)))


def _all_shards(data_dir: str, config: Config) -> list[str]:
    paths = []
    for split in schema.SPLITS:
        paths += schema.shard_paths(data_dir, config.dataset_name, split)
    return paths


def missing_shard(error: tf.errors.OpError) -> str | None:
    """The file a NotFoundError of the input names (``PATH; No such file or directory``)."""
    if not isinstance(error, tf.errors.NotFoundError):
        return None
    match = _MISSING_FILE.search(getattr(error, "message", None) or str(error))
    return match.group(1) if match else None


def other_size_shard(paths: list[str], frame_shape: tuple[int, int, int]
                     ) -> tuple[str, tuple[int, ...]] | None:
    """The first shard whose first record's frames are not ``frame_shape``, and its shape."""
    for path in paths:
        try:
            record = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
            if record is None:
                continue
            example = tf.train.Example.FromString(record.numpy())
        except (tf.errors.OpError, ValueError):
            continue  # unreadable: the corruption scan names it
        shape = tuple(example.features.feature["shape"].int64_list.value)
        if len(shape) == 4 and shape[1:] != tuple(frame_shape):
            return path, shape
    return None


def _last_sentence(error: tf.errors.OpError) -> str:
    """The informative tail of a tf.data error (after the iterator description)."""
    text = (getattr(error, "message", None) or str(error)).strip().splitlines()[0]
    return " ".join(text.rsplit(": ", 1)[-1].split())[:300]


def name_corrupt_shard(error: tf.errors.OpError, data_dir: str, config: Config) -> Exception:
    """A DataError naming the shard behind a record ``error``, or ``error`` itself."""
    if not is_record_error(error):
        return error
    gone = missing_shard(error)
    if gone is not None:
        return DataError(f"shard {gone} disappeared during training (No such file or "
                         f"directory): restore it, or re-run the converter into "
                         f"--data_dir={data_dir}")
    frame_shape = (config.img_width, config.img_width, config.img_channel)
    paths = _all_shards(data_dir, config)
    other = other_size_shard(paths, frame_shape)
    if other is not None:
        path, shape = other
        return DataError(f"{path} holds frames of {shape[1]}x{shape[2]}x{shape[3]} (H x W x C), "
                         f"not the model's {'x'.join(map(str, frame_shape))} (--img_width="
                         f"{config.img_width}, --img_channel={config.img_channel}): convert the "
                         f"data at the model's size, or train with --img_width={shape[2]}")
    found = reader.find_corrupt_shard(paths, config.total_length, frame_shape)
    if found is None:
        return DataError(f"reading the records of --dataset_name={config.dataset_name} in "
                         f"--data_dir={data_dir} failed: {_last_sentence(error)} (do the records "
                         f"match the metadata and --img_width={config.img_width}, "
                         f"--img_channel={config.img_channel}?)")
    path, message = found
    return DataError(f"corrupt or truncated record in {path}: {message} (repair or remove the "
                     f"file, or pass --skip_corrupt to skip such records)")


def count_skipped_records(config: Config, data_dir: str, writer, step: int) -> None:
    """With ``skip_corrupt``: logs and summarises the records each pass will skip."""
    scan = reader.scan_split(data_dir, config.dataset_name, "train", config.total_length)
    if scan["readable"] < config.batch_size:
        raise DataError(
            f"only {scan['readable']} readable train records in {data_dir} (corrupt shards: "
            f"{', '.join(scan['corrupt_shards']) or 'none'}) for --batch_size={config.batch_size}")
    if scan["skipped"]:
        logging.warning("--skip_corrupt: %d train record(s) per pass are unreadable and skipped "
                        "(corrupt shards: %s).", scan["skipped"],
                        ", ".join(scan["corrupt_shards"]))
    else:
        logging.info("--skip_corrupt: all %d train records are readable.", scan["readable"])
    with writer.as_default(step=step):
        tf.summary.scalar("data/skipped_train_records_per_pass", scan["skipped"])
