"""layers/conv_lstm_cell.py: the ConvLSTMCell step against NumPy equations, and its config."""

import numpy as np

from predrnn_tf.layers import ConvLSTMCell
from tests.numpy_reference import conv2d_same, sigmoid


def test_conv_lstm_cell_matches_equations_with_peepholes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 5, 3)).astype(np.float32)
    h, c = (rng.normal(size=(2, 5, 5, 4)).astype(np.float32) for _ in range(2))
    cell = ConvLSTMCell(4, filter_size=3, peephole=True)
    cell(x, h, c)
    for weight in (cell.peephole_input, cell.peephole_forget, cell.peephole_output,
                   cell.conv_x.bias):
        weight.assign(rng.normal(size=weight.shape))
    got_h, got_c = (v.numpy() for v in cell(x, h, c))
    xs = np.split(conv2d_same(x.astype(np.float64), cell.conv_x.kernel.numpy(),
                              cell.conv_x.bias.numpy()), 4, axis=-1)
    hs = np.split(conv2d_same(h.astype(np.float64), cell.conv_h.kernel.numpy()), 4, axis=-1)
    i = sigmoid(xs[0] + hs[0] + cell.peephole_input.numpy() * c)
    f = sigmoid(xs[1] + hs[1] + cell.peephole_forget.numpy() * c + 1.0)
    c_new = f * c + i * np.tanh(xs[2] + hs[2])
    o = sigmoid(xs[3] + hs[3] + cell.peephole_output.numpy() * c_new)
    np.testing.assert_allclose(got_c, c_new, atol=1e-5)
    np.testing.assert_allclose(got_h, o * np.tanh(c_new), atol=1e-5)


def test_config_round_trips():
    cell = ConvLSTMCell(8, 5, peephole=True, forget_bias=0.0)
    clone = ConvLSTMCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
