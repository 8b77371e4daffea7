"""Naming the shard behind an input error during training (issue 31: sizes, deletions)."""

import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.errors import DataError
from predrnn_tf.training import data_checks

MODEL = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=8, input_length=3,
               total_length=6)


def input_error(kind, text):
    return kind(None, None, f"{text} [Op:IteratorGetNext]")


def test_shards_of_another_frame_size_are_named_as_such_not_corrupt(tmp_path):
    synthetic_radar.ensure_synthetic_dataset(str(tmp_path), 16, 6, num_train=4, num_test=2)
    error = input_error(tf.errors.InvalidArgumentError, "Input to reshape is a tensor with "
                                                        "1536 values")
    named = data_checks.name_corrupt_shard(error, str(tmp_path), MODEL)
    assert isinstance(named, DataError)
    message = str(named)
    assert "holds frames of 16x16x1" in message and "not the model's 8x8x1" in message
    assert "corrupt" not in message and "--skip_corrupt" not in message


def test_a_deleted_shard_is_named(tmp_path):
    path = str(tmp_path / "x-train-00000-of-00001.tfrecord")
    error = input_error(tf.errors.NotFoundError, f"{path}; No such file or directory")
    named = data_checks.name_corrupt_shard(error, str(tmp_path), MODEL)
    assert isinstance(named, DataError) and f"shard {path} disappeared" in str(named)


def test_other_errors_pass_through(tmp_path):
    error = tf.errors.NotFoundError(None, None, "a kernel was not found")
    assert data_checks.name_corrupt_shard(error, str(tmp_path), MODEL) is error
