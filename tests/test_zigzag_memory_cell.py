"""layers/zigzag_memory_cell.py: the ZigzagMemoryCell step against NumPy, and its config."""

import numpy as np

from predrnn_tf.layers import ZigzagMemoryCell
from tests.numpy_reference import conv2d_same, sigmoid


def test_zigzag_memory_cell_matches_equations():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 5, 3)).astype(np.float32)
    m = rng.normal(size=(2, 5, 5, 4)).astype(np.float32)
    cell = ZigzagMemoryCell(4, filter_size=3)
    cell(x, m)
    cell.conv_x.bias.assign(rng.normal(size=cell.conv_x.bias.shape))
    got_h, got_m = (v.numpy() for v in cell(x, m))
    g_x, i_x, f_x, o_x = np.split(conv2d_same(x, cell.conv_x.kernel.numpy(),
                                              cell.conv_x.bias.numpy()), 4, axis=-1)
    g_m, i_m, f_m = np.split(conv2d_same(m, cell.conv_m.kernel.numpy()), 3, axis=-1)
    m_new = sigmoid(f_x + f_m + 1.0) * m + sigmoid(i_x + i_m) * np.tanh(g_x + g_m)
    o = sigmoid(o_x + conv2d_same(m_new, cell.conv_o.kernel.numpy()))
    np.testing.assert_allclose(got_m, m_new, atol=1e-5)
    np.testing.assert_allclose(got_h, o * np.tanh(m_new), atol=1e-5)


def test_config_round_trips():
    cell = ZigzagMemoryCell(8, 3)
    clone = ZigzagMemoryCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
