"""The checkpoint layout of a work directory, and loading a model's weights from it.

``WORKDIR/checkpoints/`` is a ``tf.train.CheckpointManager`` directory whose checkpoints
hold the objects named by :func:`make_training_checkpoint`: ``model``, ``optimizer``,
``step`` (int64) and ``generator`` (the mask ``tf.random.Generator``), plus ``iterator``
(the input position) when training is deterministic. Training, the PyTorch importer and
:mod:`predrnn_tf.workdir` (the one door to a work directory: its config, checkpoints and
data card) all go through this module, so the layout has one owner. Problems raise
:class:`predrnn_tf.errors.CheckpointError` with a one-line message.
"""

from __future__ import annotations

import collections
import glob
import logging
import os
import re
from typing import Any

import keras
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import trackable_object_graph_pb2

from predrnn_tf.config import Config, load_config
from predrnn_tf.errors import CheckpointError
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.predrnn import PredRNN

CHECKPOINT_SUBDIR = "checkpoints"
MAX_TO_KEEP = 5
ITERATOR_KEY = "iterator"
CHECKPOINT_NAME = "ckpt"
STATE_FILENAME = "checkpoint"  # the CheckpointManager's list of registered checkpoints
_NUMBERED_FILE = re.compile(rf"^{CHECKPOINT_NAME}-(?P<number>\d+)\.(index|data-\d+-of-\d+)$")
_log = logging.getLogger(__name__)


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
                                      checkpoint_name=CHECKPOINT_NAME)


def checkpoint_problem(path: str) -> str | None:
    """None if the checkpoint at ``path`` is complete and readable, else why it is not.

    Reads the index and every stored tensor (the bundle reader checks each tensor's CRC), so
    a missing, truncated or damaged ``.index`` or ``.data`` shard is found here, before any
    restore could half-apply it.
    """
    if not tf.io.gfile.exists(path + ".index"):
        return f"{os.path.basename(path)}.index is missing"
    try:
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype == tf.variant:  # e.g. the input iterator's state: no numpy dtype
                tf.raw_ops.RestoreV2(prefix=path, tensor_names=[name], shape_and_slices=[""],
                                     dtypes=[tf.variant])
            else:
                reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as error:
        return error_line(error, limit=160)
    return None


def _numbered_checkpoints(directory: str) -> list[str]:
    """Prefixes ``DIR/ckpt-N`` with any file on disk, newest (highest N) first."""
    numbers = set()
    for path in glob.glob(os.path.join(glob.escape(directory), f"{CHECKPOINT_NAME}-*")):
        match = _NUMBERED_FILE.match(os.path.basename(path))
        if match:
            numbers.add(int(match.group("number")))
    return [os.path.join(directory, f"{CHECKPOINT_NAME}-{number}")
            for number in sorted(numbers, reverse=True)]


def _registered_checkpoint(directory: str) -> str | None:
    """The newest checkpoint named by the state file, or None (missing or unreadable file)."""
    try:
        state = tf.train.get_checkpoint_state(directory)
    except (tf.errors.OpError, ValueError):
        return None
    if state is None or not state.model_checkpoint_path:
        return None
    # TensorFlow already joins a relative entry onto ``directory`` (relative or not).
    return state.model_checkpoint_path


def find_restorable_checkpoint(workdir: str) -> tuple[str | None, list[tuple[str, str]]]:
    """The checkpoint to resume from, found from the files themselves.

    The state file's newest checkpoint comes first when it is intact; otherwise (state file
    missing, or its checkpoint damaged or deleted) the highest-numbered intact
    ``ckpt-N`` is taken. Nothing is ever deleted here.

    Returns:
      ``(path or None, [(path, problem)] of the newer checkpoints that were passed over)``.
    """
    directory = checkpoint_dir(workdir)
    registered = _registered_checkpoint(directory)
    candidates = ([registered] if registered else []) + [
        path for path in _numbered_checkpoints(directory) if path != registered]
    passed_over = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, passed_over
        passed_over.append((path, problem))
    return None, passed_over


def latest_checkpoint(workdir: str) -> str | None:
    """Path prefix of the newest intact checkpoint in ``workdir``, or None if there is none.

    Damaged or missing newer checkpoints are passed over with one warning line; when every
    checkpoint on disk is damaged, CheckpointError lists them (they are kept, never removed).
    """
    path, passed_over = find_restorable_checkpoint(workdir)
    if passed_over and path is None:
        listed = "; ".join(f"{name}: {problem}" for name, problem in passed_over[:3])
        raise CheckpointError(
            f"no intact checkpoint in {checkpoint_dir(workdir)} ({listed}); they are kept: "
            f"restore them from a backup, or move them aside to train from step 0")
    if passed_over:
        _log.warning("Checkpoint %s is damaged or incomplete (%s): using the newest intact "
                     "one, %s.", passed_over[0][0], passed_over[0][1], path)
    return path


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
        raise CheckpointError(f"checkpoint {path} cannot be read ({error_line(error)})"
                              ) from error


def checkpoint_step(path: str) -> int:
    """The training step of the checkpoint at ``path``.

    Its ``step`` variable, else the ``-N`` suffix of its name (a checkpoint written without
    a step, e.g. a bare ``tf.train.Checkpoint(model=...)``).

    Raises:
      CheckpointError: when the checkpoint holds no step and its name has no ``-N`` suffix.
    """
    try:
        return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.OpError, ValueError) as error:
        match = re.search(r"-(\d+)$", path)
        if match is None:
            raise CheckpointError(f"checkpoint {path} holds no training step and its name has "
                                  f"no -N suffix ({error_line(error)}): name the step "
                                  f"yourself (e.g. --version)") from error
        return int(match.group(1))


def has_iterator(path: str) -> bool:
    """True if the checkpoint at ``path`` holds an input-iterator position."""
    return any(name.startswith(f"{ITERATOR_KEY}/") for name in stored_variables(path))


def _escape_local_name(name: str) -> str:
    """A child name as checkpoint keys spell it ("." doubled, "/" as ".S")."""
    return name.replace(".", "..").replace("/", ".S")


def expected_variables(checkpoint: tf.train.Checkpoint) -> dict[str, list[int]]:
    """``{variable name: shape}`` that ``checkpoint`` would write, without writing anything.

    A checkpoint names each variable by its first path in a breadth-first walk of the object
    graph (``model/layer_with_weights-0/.../.ATTRIBUTES/VARIABLE_VALUE``); the same walk over
    ``tf.train.TrackableView`` gives the names here, so no probe checkpoint is written.
    """
    view = tf.train.TrackableView(checkpoint)
    seen = {id(checkpoint)}
    queue = collections.deque([(checkpoint, ())])
    variables = {}
    while queue:
        parent, path = queue.popleft()
        for name, child in view.children(parent).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = path + (_escape_local_name(name),)
            if isinstance(child, (tf.Variable, keras.Variable)):
                variables["/".join(child_path) + "/.ATTRIBUTES/VARIABLE_VALUE"] = list(child.shape)
            queue.append((child, child_path))
    return variables


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
                                  f"{name}; use the flags it was trained with, or another "
                                  f"--workdir for this model")
        if stored[name] != shape:
            raise CheckpointError(f"checkpoint {path} holds another model: variable {name} has "
                                  f"shape {stored[name]} there but {shape} with these flags; "
                                  f"use the flags it was trained with, or another --workdir "
                                  f"for this model")


def stored_model_weights(path: str) -> set[str]:
    """Paths (``model/cell_0/conv_x/_kernel``) of the model weights stored at ``path``.

    Read from the checkpoint's object graph, walked breadth-first from its ``model`` child,
    so a weight first reached through the optimizer (``optimizer/_trainable_variables/N``
    keys) is still named by its place in the model.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except (tf.errors.OpError, ValueError, DecodeError) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error_line(error)})"
                              ) from error
    roots = [child.node_id for child in graph.nodes[0].children if child.local_name == "model"]
    seen, weights = set(roots), set()
    queue = collections.deque((root, ("model",)) for root in roots)
    while queue:
        node, node_path = queue.popleft()
        if any(attribute.name == "VARIABLE_VALUE" for attribute in graph.nodes[node].attributes):
            weights.add("/".join(node_path))
        for child in graph.nodes[node].children:
            if child.node_id not in seen:
                seen.add(child.node_id)
                queue.append((child.node_id, node_path + (_escape_local_name(child.local_name),)))
    return weights


def model_weights(model: PredRNN) -> set[str]:
    """Paths (``model/cell_0/conv_x/_kernel``) of the weights of a built ``model``."""
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {name[:-len(suffix)] for name in expected_variables(tf.train.Checkpoint(model=model))}


def check_same_weights(path: str, model: PredRNN, source: str | None = None) -> None:
    """Refuses a checkpoint holding model weights this model lacks, or lacking some it has.

    A config with fewer layers than its checkpoint would otherwise load the first layers
    silently (``expect_partial``) and forecast wrong (issue 31, bug 1).

    Args:
      path: the checkpoint path prefix.
      model: the built model.
      source: what to name as the config's origin (e.g. ``--workdir=W``), default ``path``.

    Raises:
      CheckpointError: one line naming the checkpoint and the first differing variables.
    """
    stored, expected = stored_model_weights(path), model_weights(model)
    unused, lacking = sorted(stored - expected), sorted(expected - stored)
    if not unused and not lacking:
        return
    parts = []
    if unused:
        parts.append(f"{len(unused)} variables the model does not use (first: {unused[0]})")
    if lacking:
        parts.append(f"lacks {len(lacking)} the model needs (first: {lacking[0]})")
    raise CheckpointError(
        f"{source or 'the config'} does not match checkpoint {path}: it holds "
        f"{' and '.join(parts)}; restore the config.json it was trained with (num_hidden, "
        f"model_name, memory flow), or pass another --workdir")


def restore_weights(model: PredRNN, path: str, source: str | None = None) -> None:
    """Restores only the model weights from a training checkpoint at ``path``.

    Raises:
      CheckpointError: when the checkpoint's model variables are not exactly the model's.
    """
    check_same_weights(path, model, source)
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


def restore_model(config: Config, path: str, precision: str | None = None,
                  source: str | None = None) -> PredRNN:
    """Builds the model of ``config`` and loads the weights of the checkpoint at ``path``.

    Args:
      config: the configuration the checkpoint was trained with.
      path: a checkpoint path prefix (``.../ckpt-N``).
      precision: compute precision override (default: ``config.precision``).
      source: where ``config`` came from, for error lines (e.g. ``--workdir=W``).

    Raises:
      CheckpointError: a missing checkpoint, or one whose weights are not the model's.
    """
    if not tf.io.gfile.exists(path + ".index"):
        raise CheckpointError(f"--checkpoint={path} does not exist (no {path}.index)")
    model = build_model(config, precision=precision)
    restore_weights(model, path, source)
    return model


def restore(workdir: str, checkpoint: str | None = None,
            precision: str | None = None) -> tuple[PredRNN, Config]:
    """Transitional: use :func:`predrnn_tf.workdir.restore` (the one door to a work directory).

    Kept only while ``predrnn_tf/__init__.py``, ``cli/evaluate.py``, ``tools/fidelity.py``
    and some tests still call it (issue 28); it reads the same files the same way.
    """
    config = load_config(workdir)
    path = checkpoint or latest_checkpoint(workdir)
    if path is None:
        raise CheckpointError(f"--workdir={workdir} has no checkpoint in "
                              f"{checkpoint_dir(workdir)}")
    return restore_model(config, path, precision), config
