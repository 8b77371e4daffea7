"""The ``Work directory /abs/path: ...`` line of evaluate and export (issue 13)."""

import logging
import os

import tensorflow as tf

from predrnn_tf.cli import flag_parsing


def test_log_workdir_names_the_absolute_path(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        line = flag_parsing.log_workdir("runs/a", "evaluating checkpoint ckpt-3 (step 3)")
    assert line == (f"Work directory {os.path.join(str(tmp_path), 'runs', 'a')}: evaluating "
                    f"checkpoint ckpt-3 (step 3).")
    assert line in caplog.text


def test_describe_checkpoint_reads_the_stored_step(tmp_path):
    checkpoint = tf.train.Checkpoint(step=tf.Variable(7, dtype=tf.int64))
    path = checkpoint.write(str(tmp_path / "ckpt-9"))
    assert flag_parsing.describe_checkpoint(path) == "checkpoint ckpt-9 (step 7)"


def test_describe_checkpoint_without_a_step_uses_the_suffix(tmp_path):
    path = tf.train.Checkpoint(other=tf.Variable(1.0)).write(str(tmp_path / "ckpt-4"))
    assert flag_parsing.describe_checkpoint(path) == "checkpoint ckpt-4 (step 4)"
