"""Reading (and perturbing) a recurrent cell's outputs during an unroll, without editing it.

The models own their unroll (:mod:`predrnn_tf.models`); the analyses need values inside it:
the first layer's hidden state at each step (Fig. 8) and the memory increments of every
layer at each step (Fig. 3). :func:`transform_cell_outputs` wraps one cell's ``call`` for the
duration of a ``with`` block, so an eager unroll passes every step's outputs through a
function that may record them or add a perturbation. Every cell of the PredRNN family and of
MIM returns its new hidden state first; ST-LSTM and MIM-block cells return their two memory
increments ``(delta_c, delta_m)`` last.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import keras

from predrnn_tf.config import Config
from predrnn_tf.workdir import WorkDir


@contextlib.contextmanager
def transform_cell_outputs(cell: keras.layers.Layer,
                           transform: Callable[[tuple], tuple]) -> Iterator[None]:
    """Within the block, every call of ``cell`` returns ``transform(outputs)``.

    Args:
      cell: a built recurrent cell (a Keras layer whose ``call`` returns a tuple).
      transform: maps the tuple of outputs of one call to the tuple to return instead.
    """
    original = cell.call

    def call(*args, **kwargs):
        return tuple(transform(tuple(original(*args, **kwargs))))

    cell.call = call
    try:
        yield
    finally:
        del cell.call  # the class's call again


def first_layer_cell(model: keras.Model) -> keras.layers.Layer:
    """The cell of layer 0 (its first output is ``H_t^1`` of the paper)."""
    cells = getattr(model, "cells", None)
    if not cells:
        raise ValueError(f"model {model.name!r} has no recurrent cells to probe")
    return cells[0]


def increment_cells(model: keras.Model) -> list[keras.layers.Layer]:
    """The cells that return memory increments ``(delta_c, delta_m)`` last, bottom first."""
    cells = [cell for cell in getattr(model, "cells", [])
             if type(cell).__name__ in ("SpatioTemporalLSTMCell", "MIMBlockCell")]
    if not cells:
        raise ValueError(f"--model_name={model.name} has no ST-LSTM or MIM cells: it has no "
                         f"memory increments delta C / delta M to analyse")
    return cells


def restore_for_analysis(workdir: str, checkpoint: str | None = None
                         ) -> tuple[keras.Model, Config, str]:
    """The model of a work directory, with its newest (or the given) checkpoint's weights.

    The model is rebuilt in float32 and without recomputation in the backward pass, so that
    gradients with respect to values inside the unroll are available.

    Returns:
      ``(model, config, checkpoint path)``.
    """
    work = WorkDir(workdir)
    changes: dict[str, Any] = {"precision": "float32"}
    if "remat" in {field.name for field in dataclasses.fields(Config)}:
        changes["remat"] = False
    if not work.has_config():  # a folder without config.json is no work directory
        _ = work.config  # raises the one-line ConfigError naming config.json
    path = work.checkpoint(checkpoint)
    model, config = work.restore_model(path, **changes)
    return model, config, path


def load_test_batches(config: Config, workdir: str, batch_size: int = 8):
    """The work directory's test split as float32 ``[B, T, H, W, C]`` batches, in order."""
    from predrnn_tf.data import reader, sources

    data_dir = sources.resolve_data_dir(config, workdir)
    return reader.make_dataset(data_dir, config.dataset_name, "test", batch_size,
                               config.total_length, shuffle=False, repeat=False,
                               drop_remainder=False)
