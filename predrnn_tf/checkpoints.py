"""Checkpoint layout of a work directory, and restoring a trained model from it.

``WORKDIR/config.json`` holds the resolved configuration; ``WORKDIR/checkpoints/`` is a
``tf.train.CheckpointManager`` directory whose checkpoints hold the objects named by
:func:`make_training_checkpoint`: ``model``, ``optimizer``, ``step`` (int64) and
``generator`` (the mask ``tf.random.Generator``), plus ``iterator`` (the input position)
when training is deterministic. Training, the PyTorch importer and :func:`restore` all go
through this module, so the layout has one owner. Problems raise
:class:`predrnn_tf.errors.CheckpointError` with a one-line message.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

import tensorflow as tf

from predrnn_tf.config import Config, load_config
from predrnn_tf.errors import CheckpointError
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN

CHECKPOINT_SUBDIR = "checkpoints"
MAX_TO_KEEP = 5
ITERATOR_KEY = "iterator"
# Probe checkpoints live in TensorFlow's in-memory file system: nothing touches the disk.
_PROBE_ROOT = "ram://predrnn-checkpoint-probe"
_probe_numbers = itertools.count()


def checkpoint_dir(workdir: str) -> str:
    """``WORKDIR/checkpoints``."""
    return os.path.join(workdir, CHECKPOINT_SUBDIR)


def make_training_checkpoint(model: Any, optimizer: Any, step: tf.Variable,
                             generator: tf.random.Generator,
                             iterator: Any = None) -> tf.train.Checkpoint:
    """The checkpoint of a training run: the one definition of its objects.

    Args:
      model: the Keras model.
      optimizer: its (built) optimizer.
      step: the int64 step variable.
      generator: the ``tf.random.Generator`` of the sampling masks.
      iterator: the input iterator (deterministic single-replica runs), or None.
    """
    objects = {"model": model, "optimizer": optimizer, "step": step, "generator": generator}
    if iterator is not None:
        objects[ITERATOR_KEY] = iterator
    return tf.train.Checkpoint(**objects)


def make_manager(checkpoint: tf.train.Checkpoint, workdir: str,
                 max_to_keep: int = MAX_TO_KEEP) -> tf.train.CheckpointManager:
    """The CheckpointManager of a work directory."""
    return tf.train.CheckpointManager(checkpoint, checkpoint_dir(workdir), max_to_keep=max_to_keep,
                                      checkpoint_name="ckpt")


def latest_checkpoint(workdir: str) -> str | None:
    """Path prefix of the newest complete checkpoint in ``workdir``, or None."""
    return tf.train.latest_checkpoint(checkpoint_dir(workdir))


def error_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error message without TensorFlow's ``{{function_node ...}}``."""
    message = (getattr(error, "message", None) or str(error) or type(error).__name__).strip()
    message = message.splitlines()[0] if message else type(error).__name__
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    return message[:limit]


def stored_variables(path: str) -> dict[str, list[int]]:
    """``{variable name: shape}`` of the checkpoint at ``path`` (CheckpointError if unreadable)."""
    try:
        return {name: list(shape) for name, shape in tf.train.list_variables(path)}
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error_line(error)}); "
                              f"use a new --workdir") from error


def has_iterator(path: str) -> bool:
    """True if the checkpoint at ``path`` holds an input-iterator position."""
    return any(name.startswith(f"{ITERATOR_KEY}/") for name in stored_variables(path))


def expected_variables(checkpoint: tf.train.Checkpoint) -> dict[str, list[int]]:
    """``{variable name: shape}`` that ``checkpoint`` would write, from an in-memory probe.

    A variable is named by its first path in the object graph, so the names come from
    writing the same objects (to TensorFlow's ``ram://`` file system, never to disk).
    """
    folder = f"{_PROBE_ROOT}-{os.getpid()}-{next(_probe_numbers)}"
    try:
        tf.train.CheckpointManager(checkpoint, folder, max_to_keep=1).save()
        return {name: list(shape) for name, shape in tf.train.list_variables(folder)}
    finally:
        if tf.io.gfile.exists(folder):
            tf.io.gfile.rmtree(folder)


def check_variables_match(path: str, checkpoint: tf.train.Checkpoint) -> None:
    """Refuses a checkpoint whose model or optimizer variables differ from ``checkpoint``'s.

    Names and shapes are compared before any restore, so a checkpoint of another model is
    named before a restore could half-apply it.

    Raises:
      CheckpointError: naming the first missing variable or differing shape.
    """
    stored = stored_variables(path)
    for name, shape in sorted(expected_variables(checkpoint).items()):
        if not name.startswith(("model/", "optimizer/")) or not name.endswith("VARIABLE_VALUE"):
            continue
        if name not in stored:
            raise CheckpointError(f"checkpoint {path} holds another model: it has no variable "
                                  f"{name}; use a new --workdir")
        if stored[name] != shape:
            raise CheckpointError(f"checkpoint {path} holds another model: variable {name} has "
                                  f"shape {stored[name]} there but {shape} with these flags; "
                                  f"use a new --workdir")


def restore_weights(model: PredRNN, path: str) -> None:
    """Restores only the model weights from a training checkpoint at ``path``."""
    checkpoint = tf.train.Checkpoint(model=model)
    status = checkpoint.restore(path)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        unmatched = str(error).count("\n") or 1
        raise CheckpointError(f"checkpoint {path} does not hold this model's weights "
                              f"({unmatched} variables unmatched): wrong --workdir/--checkpoint, "
                              f"or a checkpoint written by another model or an older version"
                              ) from None


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
        raise CheckpointError(f"--workdir={workdir} has no checkpoint in "
                              f"{checkpoint_dir(workdir)}")
    if not tf.io.gfile.exists(path + ".index"):
        raise CheckpointError(f"--checkpoint={path} does not exist (no {path}.index)")
    model = build_model(config, precision=precision)
    restore_weights(model, path)
    return model, config

