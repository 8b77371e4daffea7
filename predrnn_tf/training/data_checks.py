"""Input problems during training: naming a corrupt shard, counting skipped records.

Only errors that come from reading or parsing records (``DataLossError``, or an
``InvalidArgumentError`` raised by the input iterator) trigger the shard scan of
:func:`predrnn_tf.data.reader.find_corrupt_shard`; any other error (e.g. a shape error
inside the train step) is re-raised untouched, without reading every shard first.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

from predrnn_tf.config import Config
from predrnn_tf.data import reader, schema
from predrnn_tf.errors import DataError

# Every error raised while getting a batch from tf.data names this op (also for
# MultiDeviceIteratorGetNextFromShard and the eager [Op:IteratorGetNext]).
_INPUT_OP = "IteratorGetNext"


def is_record_error(error: BaseException) -> bool:
    """True if ``error`` is about reading or parsing records (corruption, truncation)."""
    if isinstance(error, tf.errors.DataLossError):
        return True
    return isinstance(error, tf.errors.InvalidArgumentError) and _INPUT_OP in (
        getattr(error, "message", None) or str(error))


def _last_sentence(error: tf.errors.OpError) -> str:
    """The informative tail of a tf.data error (after the iterator description)."""
    text = (getattr(error, "message", None) or str(error)).strip().splitlines()[0]
    return text.rsplit(": ", 1)[-1][:300]


def name_corrupt_shard(error: tf.errors.OpError, data_dir: str, config: Config) -> Exception:
    """A DataError naming the corrupt shard behind a record ``error``, or ``error`` itself."""
    if not is_record_error(error):
        return error
    frame_shape = (config.img_width, config.img_width, config.img_channel)
    paths = []
    for split in schema.SPLITS:
        paths += schema.shard_paths(data_dir, config.dataset_name, split)
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
