"""The registry of recurrent cells that :class:`~predrnn_tf.models.predrnn.PredRNN` stacks.

Each entry is a :class:`CellKind`: how to make one cell of :mod:`predrnn_tf.layers`, how to
build its weights, and how one step of the unroll drives it on the common state (hidden state
H, cell state C and spatiotemporal memory M of one layer). The unroll calls the kind's
functions and never asks which cell it holds; a new cell is one new entry here.

Every kind steps through ``cell(...)`` (Keras' ``__call__``: input autocasting, name scopes
and the analysis probes that replace ``call`` all see it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from predrnn_tf.layers import ConvLSTMCell, SpatioTemporalLSTMCell, ZigzagMemoryCell


@dataclasses.dataclass(frozen=True)
class CellOptions:
    """The model arguments a cell may read when it is made.

    Attributes:
      filter_size: kernel size of the cell's convolutions.
      layer_norm: layer normalisation inside the cell (ST-LSTM only).
      peephole: peephole connections (ConvLSTM only).
    """

    filter_size: int
    layer_norm: bool = False
    peephole: bool = False


# (cell, inputs, hidden, cell_state, memory, kernels)
#   -> (hidden, cell_state, memory, (delta_c, delta_m) or None)
StepFunction = Callable[..., tuple[Any, Any, Any, tuple[Any, Any] | None]]


@dataclasses.dataclass(frozen=True)
class CellKind:
    """How the unroll makes, builds and advances one kind of recurrent cell.

    Attributes:
      name: the registry key.
      make: ``(size, options, name) -> cell layer``.
      state_inputs: how many state tensors the cell's ``build`` takes after the inputs.
      step: advances the cell one step (see :data:`StepFunction`); a state the cell does
        not use is passed through unchanged.
      uses_memory: the cell reads and writes the zigzag memory M (so M passes between
        layers and every layer needs the same hidden size).
      casts_kernels: the cell has ``cast_kernels(dtype)``: its kernels may be cast once per
        unroll instead of once per step (a mixed-precision forecast).
      returns_increments: the step returns the memory increments of the decoupling loss.
    """

    name: str
    make: Callable[[int, CellOptions, str], keras.layers.Layer]
    state_inputs: int
    step: StepFunction
    uses_memory: bool
    casts_kernels: bool = False
    returns_increments: bool = False

    def build(self, cell: keras.layers.Layer, inputs_shape, state_shape) -> None:
        """Creates the cell's weights for ``inputs_shape`` and ``state_shape`` (no compute)."""
        cell.build(inputs_shape, *[state_shape] * self.state_inputs)


def _st_lstm_step(cell, inputs, hidden, cell_state, memory, kernels):
    hidden, cell_state, memory, delta_c, delta_m = cell(inputs, hidden, cell_state, memory,
                                                        kernels=kernels)
    return hidden, cell_state, memory, (delta_c, delta_m)


def _zigzag_memory_step(cell, inputs, hidden, cell_state, memory, kernels):
    del hidden, kernels  # the M-only cell keeps no H or C of its own
    hidden, memory = cell(inputs, memory)
    return hidden, cell_state, memory, None


def _conv_lstm_step(cell, inputs, hidden, cell_state, memory, kernels):
    del kernels
    hidden, cell_state = cell(inputs, hidden, cell_state)
    return hidden, cell_state, memory, None


CELL_KINDS: dict[str, CellKind] = {
    "st_lstm": CellKind(
        name="st_lstm",
        make=lambda size, options, name: SpatioTemporalLSTMCell(
            size, options.filter_size, options.layer_norm, name=name),
        state_inputs=3, step=_st_lstm_step, uses_memory=True, casts_kernels=True,
        returns_increments=True),
    "zigzag_memory": CellKind(
        name="zigzag_memory",
        make=lambda size, options, name: ZigzagMemoryCell(size, options.filter_size, name=name),
        state_inputs=1, step=_zigzag_memory_step, uses_memory=True),
    "conv_lstm": CellKind(
        name="conv_lstm",
        make=lambda size, options, name: ConvLSTMCell(
            size, options.filter_size, options.peephole, name=name),
        state_inputs=1, step=_conv_lstm_step, uses_memory=False),
}


def get_cell_kind(name: str) -> CellKind:
    """The registered :class:`CellKind` called ``name``.

    Raises:
      ValueError: one line naming the received name and the known ones.
    """
    if name not in CELL_KINDS:
        raise ValueError(f"unknown cell kind {name!r}; known: {', '.join(sorted(CELL_KINDS))}")
    return CELL_KINDS[name]
