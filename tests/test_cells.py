"""The cell registry (predrnn_tf/models/cells.py): how the unroll makes and steps each cell."""

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.layers import ConvLSTMCell, SpatioTemporalLSTMCell, ZigzagMemoryCell
from predrnn_tf.models.cells import CELL_KINDS, CellOptions, get_cell_kind

SHAPE = (2, 4, 4, 3)  # [B, H, W, C]


def test_an_unknown_cell_kind_is_one_line_listing_the_known_ones():
    with pytest.raises(ValueError, match="'gru'; known: conv_lstm, st_lstm, zigzag_memory$"):
        get_cell_kind("gru")


@pytest.mark.parametrize("name,cell_class", [("st_lstm", SpatioTemporalLSTMCell),
                                             ("zigzag_memory", ZigzagMemoryCell),
                                             ("conv_lstm", ConvLSTMCell)])
def test_each_kind_makes_builds_and_steps_its_layer(name, cell_class):
    kind = get_cell_kind(name)
    cell = kind.make(5, CellOptions(filter_size=3, layer_norm=False, peephole=True), "c")
    assert type(cell) is cell_class and cell.name == "c"
    kind.build(cell, SHAPE, SHAPE[:3] + (5,))
    assert cell.built and cell.weights
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.random(SHAPE), tf.float32)
    hidden, cell_state, memory = (tf.constant(rng.random(SHAPE[:3] + (5,)), tf.float32)
                                  for _ in range(3))
    new_hidden, new_cell, new_memory, increments = kind.step(
        cell, inputs, hidden, cell_state, memory, None)
    assert tuple(new_hidden.shape) == SHAPE[:3] + (5,)
    assert (new_memory is not memory) == kind.uses_memory  # an unused state passes through
    assert (new_cell is cell_state) == (name == "zigzag_memory")
    assert (increments is not None) == kind.returns_increments
    assert kind.casts_kernels == hasattr(cell, "cast_kernels")


def test_the_options_reach_the_cells():
    options = CellOptions(filter_size=5, layer_norm=True, peephole=True)
    assert CELL_KINDS["st_lstm"].make(4, options, "a").get_config()["layer_norm"] is True
    assert CELL_KINDS["conv_lstm"].make(4, options, "b").get_config()["peephole"] is True
    assert CELL_KINDS["zigzag_memory"].make(4, options, "c").get_config()["filter_size"] == 5
