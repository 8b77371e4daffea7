"""Checkpoint layout of a work directory, and restoring a trained model from it.

``WORKDIR/config.json`` holds the resolved configuration; ``WORKDIR/checkpoints/`` is a
``tf.train.CheckpointManager`` directory whose checkpoints hold ``model``, ``optimizer``,
``step`` (int64) and ``generator`` (the mask ``tf.random.Generator``), plus the input
iterator position when training is deterministic.
"""

from __future__ import annotations

import os

import tensorflow as tf

from predrnn_tf.config import Config, ConfigError, load_config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN

CHECKPOINT_SUBDIR = "checkpoints"
MAX_TO_KEEP = 5


def checkpoint_dir(workdir: str) -> str:
    """``WORKDIR/checkpoints``."""
    return os.path.join(workdir, CHECKPOINT_SUBDIR)


def make_manager(checkpoint: tf.train.Checkpoint, workdir: str,
                 max_to_keep: int = MAX_TO_KEEP) -> tf.train.CheckpointManager:
    """The CheckpointManager of a work directory."""
    return tf.train.CheckpointManager(checkpoint, checkpoint_dir(workdir), max_to_keep=max_to_keep,
                                      checkpoint_name="ckpt")


def latest_checkpoint(workdir: str) -> str | None:
    """Path prefix of the newest complete checkpoint in ``workdir``, or None."""
    return tf.train.latest_checkpoint(checkpoint_dir(workdir))


def restore_weights(model: PredRNN, path: str) -> None:
    """Restores only the model weights from a training checkpoint at ``path``."""
    checkpoint = tf.train.Checkpoint(model=model)
    status = checkpoint.restore(path)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        unmatched = str(error).count("\n") or 1
        raise ConfigError(f"checkpoint {path} does not hold this model's weights "
                          f"({unmatched} variables unmatched): wrong --workdir/--checkpoint, "
                          f"or a checkpoint written by another model or an older version") from None


def restore(workdir: str, checkpoint: str | None = None,
            precision: str | None = None) -> tuple[PredRNN, Config]:
    """Rebuilds the model of a work directory and loads its weights.

    Args:
      workdir: a training work directory (with ``config.json`` and ``checkpoints/``).
      checkpoint: a checkpoint path prefix; default the newest in the work directory.
      precision: compute precision override (default: the one trained with).

    Returns:
      ``(model, config)``.
    """
    config = load_config(workdir)
    path = checkpoint or latest_checkpoint(workdir)
    if path is None:
        raise ConfigError(f"--workdir={workdir} has no checkpoint in {checkpoint_dir(workdir)}")
    if not tf.io.gfile.exists(path + ".index"):
        raise ConfigError(f"--checkpoint={path} does not exist (no {path}.index)")
    model = build_model(config, precision=precision)
    restore_weights(model, path)
    return model, config
