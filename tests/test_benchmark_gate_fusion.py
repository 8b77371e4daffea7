"""tools/benchmark_gate_fusion.py: both arms compute the same gradients."""
import numpy as np
import tensorflow as tf

from tests.tool_loading import load_tool


def test_plain_and_fused_gate_math_give_the_same_gradients():
    tool = load_tool("benchmark_gate_fusion")
    rng = np.random.default_rng(1)
    hidden, channels = 4, 4
    shapes = [(3, 3, channels, 7 * hidden), (3, 3, hidden, 4 * hidden),
              (3, 3, hidden, 3 * hidden), (3, 3, 2 * hidden, hidden), (1, 1, 2 * hidden, hidden)]
    kernels = [tf.Variable(rng.normal(0, 0.3, shape).astype(np.float32)) for shape in shapes]
    frames = tf.constant(rng.uniform(0, 1, (3, 2, 5, 5, channels)).astype(np.float32))
    plain = tool.make_update(kernels, frames, tf.float32, tool.compute_gates,
                             tool.compute_output)()
    fused = tool.make_update(kernels, frames, tf.float32,
                             tf.function(tool.compute_gates, jit_compile=True),
                             tf.function(tool.compute_output, jit_compile=True))()
    for a, b in zip(plain, fused, strict=True):
        assert float(tf.reduce_max(tf.abs(a))) > 0
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_the_tool_computes_the_st_lstm_cell():
    from predrnn_tf.layers.st_lstm_cell import SpatioTemporalLSTMCell
    tool = load_tool("benchmark_gate_fusion")
    rng = np.random.default_rng(2)
    cell = SpatioTemporalLSTMCell(num_hidden=4, filter_size=3)
    inputs, state = (tf.constant(rng.uniform(-1, 1, (2, 5, 5, 4)).astype(np.float32))
                     for _ in range(2))
    hidden, cell_state, memory = (state, state * 0.5, state * -0.3)
    expected = cell(inputs, hidden, cell_state, memory)
    convs = [cell.conv_x, cell.conv_h, cell.conv_m, cell.conv_o, cell.conv_last]

    def conv(values, layer):
        return tf.nn.conv2d(values, layer.kernel, 1, "SAME")

    new_cell, new_memory, output_sum = tool.compute_gates(
        conv(inputs, convs[0]), conv(hidden, convs[1]), conv(memory, convs[2]),
        cell_state, memory)
    both = tf.concat([new_cell, new_memory], axis=-1)
    new_hidden = tool.compute_output(output_sum, conv(both, convs[3]), conv(both, convs[4]))
    for got, want in zip((new_hidden, new_cell, new_memory), expected[:3], strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
