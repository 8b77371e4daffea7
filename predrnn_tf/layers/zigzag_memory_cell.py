"""The PredRNN-M-only cell, paper eq. (3): a ConvLSTM whose only memory is the zigzag M."""

from __future__ import annotations

import keras
from keras import ops

from predrnn_tf.layers.st_lstm_cell import make_conv


class ZigzagMemoryCell(keras.layers.Layer):
    """One step of the ConvLSTM with the spatiotemporal (zigzag) memory only::

        [g_x, i_x, f_x, o_x] = conv_x(x)           # x = frame (layer 0) or H of layer l-1
        [g_m, i_m, f_m] = conv_m(m)                 # m = M of the layer below (zigzag)
        m_new = sigmoid(f_x + f_m + forget_bias) * m + sigmoid(i_x + i_m) * tanh(g_x + g_m)
        o = sigmoid(o_x + conv_o(m_new))
        h_new = o * tanh(m_new)

    There is no temporal cell state C and no recurrent H: all memory travels through M.
    ``conv_x`` carries the biases b_g, b_i, b_f, b_o of eq. (3).

    Args:
      num_hidden: channels of h and m.
      filter_size: spatial kernel size (odd).
      forget_bias: added to the forget gate.
      **kwargs: standard Keras layer arguments.

    Returns:
      ``(hidden, memory)``.
    """

    def __init__(self, num_hidden: int, filter_size: int = 5, forget_bias: float = 1.0,
                 **kwargs):
        super().__init__(**kwargs)
        if num_hidden <= 0:
            raise ValueError(f"num_hidden must be positive, received num_hidden={num_hidden}")
        if filter_size <= 0 or filter_size % 2 == 0:
            raise ValueError(f"filter_size must be a positive odd number, "
                             f"received filter_size={filter_size}")
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.forget_bias = forget_bias
        self.conv_x = make_conv(4 * num_hidden, filter_size, "conv_x", use_bias=True)
        self.conv_m = make_conv(3 * num_hidden, filter_size, "conv_m")
        self.conv_o = make_conv(num_hidden, filter_size, "conv_o")

    def build(self, inputs_shape, memory_shape=None):
        batch, height, width, _ = inputs_shape
        state_shape = (batch, height, width, self.num_hidden)
        self.conv_x.build(inputs_shape)
        self.conv_m.build(state_shape)
        self.conv_o.build(state_shape)

    def call(self, inputs, memory):
        g_x, i_x, f_x, o_x = ops.split(self.conv_x(inputs), 4, axis=-1)
        g_m, i_m, f_m = ops.split(self.conv_m(memory), 3, axis=-1)
        forget_gate = ops.sigmoid(f_x + f_m + self.forget_bias)
        memory_new = forget_gate * memory + ops.sigmoid(i_x + i_m) * ops.tanh(g_x + g_m)
        output_gate = ops.sigmoid(o_x + self.conv_o(memory_new))
        hidden_new = output_gate * ops.tanh(memory_new)
        return hidden_new, memory_new

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_hidden": self.num_hidden,
            "filter_size": self.filter_size,
            "forget_bias": self.forget_bias,
        })
        return config
