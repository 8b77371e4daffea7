"""The ConvLSTM cell of Shi et al. (2015), paper eq. (2): the ConvLSTM baseline. One step."""

from __future__ import annotations

import keras
from keras import ops

from predrnn_tf.layers.st_lstm_cell import make_conv


class ConvLSTMCell(keras.layers.Layer):
    """One step of a convolutional LSTM, with optional Hadamard peepholes::

        [i_x, f_x, g_x, o_x] = conv_x(x)          # 4 * num_hidden channels, with bias
        [i_h, f_h, g_h, o_h] = conv_h(h)          # 4 * num_hidden, bias-free
        i = sigmoid(i_x + i_h + w_ci * c)
        f = sigmoid(f_x + f_h + w_cf * c + forget_bias)
        c_new = f * c + i * tanh(g_x + g_h)
        o = sigmoid(o_x + o_h + w_co * c_new)
        h_new = o * tanh(c_new)

    Args:
      num_hidden: channels of h and c.
      filter_size: spatial kernel size (odd).
      peephole: if True, learn the element-wise peephole weights w_ci, w_cf, w_co of shape
        ``(H, W, num_hidden)`` (created in ``build`` from the input size).
      forget_bias: added to the forget gate.
      **kwargs: standard Keras layer arguments.

    Call arguments:
      inputs: ``[B, H, W, C_in]``; hidden, cell: ``[B, H, W, num_hidden]``.

    Returns:
      ``(hidden, cell)``.
    """

    def __init__(self, num_hidden: int, filter_size: int = 5, peephole: bool = False,
                 forget_bias: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if num_hidden <= 0:
            raise ValueError(f"num_hidden must be positive, received num_hidden={num_hidden}")
        if filter_size <= 0 or filter_size % 2 == 0:
            raise ValueError(f"filter_size must be a positive odd number, "
                             f"received filter_size={filter_size}")
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.peephole = peephole
        self.forget_bias = forget_bias
        self.conv_x = make_conv(4 * num_hidden, filter_size, "conv_x", use_bias=True)
        self.conv_h = make_conv(4 * num_hidden, filter_size, "conv_h")

    def build(self, inputs_shape, hidden_shape=None, cell_shape=None):
        batch, height, width, _ = inputs_shape
        self.conv_x.build(inputs_shape)
        self.conv_h.build((batch, height, width, self.num_hidden))
        if self.peephole:
            shape = (height, width, self.num_hidden)
            self.peephole_input = self.add_weight(shape=shape, initializer="zeros",
                                                  name="peephole_input")
            self.peephole_forget = self.add_weight(shape=shape, initializer="zeros",
                                                   name="peephole_forget")
            self.peephole_output = self.add_weight(shape=shape, initializer="zeros",
                                                   name="peephole_output")

    def call(self, inputs, hidden, cell):
        i_x, f_x, g_x, o_x = ops.split(self.conv_x(inputs), 4, axis=-1)
        i_h, f_h, g_h, o_h = ops.split(self.conv_h(hidden), 4, axis=-1)
        input_gate = i_x + i_h
        forget_gate = f_x + f_h + self.forget_bias
        if self.peephole:
            input_gate = input_gate + self.peephole_input * cell
            forget_gate = forget_gate + self.peephole_forget * cell
        cell_new = ops.sigmoid(forget_gate) * cell + ops.sigmoid(input_gate) * ops.tanh(g_x + g_h)
        output_gate = o_x + o_h
        if self.peephole:
            output_gate = output_gate + self.peephole_output * cell_new
        hidden_new = ops.sigmoid(output_gate) * ops.tanh(cell_new)
        return hidden_new, cell_new

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_hidden": self.num_hidden,
            "filter_size": self.filter_size,
            "peephole": self.peephole,
            "forget_bias": self.forget_bias,
        })
        return config
