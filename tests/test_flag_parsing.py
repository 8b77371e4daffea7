"""The ``Work directory /abs/path: ...`` line of evaluate and export (issue 13)."""

import os

import tensorflow as tf

from predrnn_tf.cli import flag_parsing


def test_log_workdir_names_the_absolute_path(tmp_path, monkeypatch):
    from absl import logging as absl_logging

    logged = []
    # absl's handler may stop propagation to pytest's caplog once an absl app has run in the
    # same process, so the call to absl's logger is recorded directly.
    monkeypatch.setattr(absl_logging, "info", lambda text, *args: logged.append(text % args))
    monkeypatch.chdir(tmp_path)
    line = flag_parsing.log_workdir("runs/a", "evaluating checkpoint ckpt-3 (step 3)")
    assert line == (f"Work directory {os.path.join(str(tmp_path), 'runs', 'a')}: evaluating "
                    f"checkpoint ckpt-3 (step 3).")
    assert logged == [line]


def test_describe_checkpoint_reads_the_stored_step(tmp_path):
    checkpoint = tf.train.Checkpoint(step=tf.Variable(7, dtype=tf.int64))
    path = checkpoint.write(str(tmp_path / "ckpt-9"))
    assert flag_parsing.describe_checkpoint(path) == "checkpoint ckpt-9 (step 7)"


def test_describe_checkpoint_without_a_step_uses_the_suffix(tmp_path):
    path = tf.train.Checkpoint(other=tf.Variable(1.0)).write(str(tmp_path / "ckpt-4"))
    assert flag_parsing.describe_checkpoint(path) == "checkpoint ckpt-4 (step 4)"
