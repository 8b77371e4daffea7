"""The cells of MIM (Memory In Memory, Wang et al., CVPR 2019): one time step each.

As OpenSTL's ``openstl/modules/mim_modules.py`` (itself a port of the authors' code):

* :class:`NonStationaryCell` is MIM-N (OpenSTL ``MIMN``): a peephole ConvLSTM that reads
  the difference of hidden states of the layer below and learns the non-stationary part.
* :class:`StationaryCell` is MIM-S (OpenSTL ``MIMBlock.MIMS``): the same peephole ConvLSTM
  computation with its own weights; it reads MIM-N's output and the previous cell memory C
  and replaces the forget gate of C.
* :class:`MIMBlockCell` is the MIM block (OpenSTL ``MIMBlock``): an ST-LSTM whose cell
  memory update ``f * C`` is replaced by the MIM-S output.

Convolutions are bias-free, the forget gates get a constant ``+1.0`` and the peephole
weights are element-wise ``(H, W, C)`` tensors initialised to zero, as in OpenSTL, so the
spatial size must be known when the cells are built.
"""

from __future__ import annotations

import keras
from keras import ops

from predrnn_tf.layers.st_lstm_cell import make_conv, make_layer_norm


def _check_sizes(num_hidden: int, filter_size: int) -> None:
    if num_hidden <= 0:
        raise ValueError(f"num_hidden must be positive, received num_hidden={num_hidden}")
    if filter_size <= 0 or filter_size % 2 == 0:
        raise ValueError(f"filter_size must be a positive odd number, "
                         f"received filter_size={filter_size}")


def _spatial_size(shape, layer_name: str) -> tuple[int, int]:
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError(f"{layer_name} has element-wise (H, W, C) peephole weights and needs a "
                         f"static spatial size, received shape {tuple(shape)}")
    return int(height), int(width)


class NonStationaryCell(keras.layers.Layer):
    """MIM-N: one step of OpenSTL's ``MIMN``, a ConvLSTM with element-wise peepholes.

    With ``*`` a bias-free k x k convolution and ``o`` the element-wise product::

        [i_h, g_h, f_h, o_h] = conv_h(h)                    # 4 * num_hidden channels
        [i_x, g_x, f_x, o_x] = conv_x(x)                    # 4 * num_hidden
        [i_c, f_c] = [c, c] o input_forget_peephole          # (H, W, 2 * num_hidden)
        c_new = sigmoid(f_h + f_c + f_x + 1) * c + sigmoid(i_h + i_c + i_x) * tanh(g_h + g_x)
        h_new = sigmoid(o_h + o_x + c_new o output_peephole) * tanh(c_new)

    Args:
      num_hidden: channels of h and c (and of the inputs, as OpenSTL needs).
      filter_size: spatial kernel size k (odd).
      layer_norm: layer-normalise the outputs of conv_h and conv_x over (H, W, C).
      forget_bias: added to the forget gate (1.0 in OpenSTL).
      **kwargs: standard Keras layer arguments.

    Call arguments:
      inputs: ``[B, H, W, C_in]``.
      hidden, cell: ``[B, H, W, num_hidden]`` each.

    Returns:
      ``(hidden, cell)``, each ``[B, H, W, num_hidden]``.
    """

    def __init__(self, num_hidden: int, filter_size: int = 5, layer_norm: bool = False,
                 forget_bias: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        _check_sizes(num_hidden, filter_size)
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.conv_h = make_conv(4 * num_hidden, filter_size, "conv_h")
        self.conv_x = make_conv(4 * num_hidden, filter_size, "conv_x")
        if layer_norm:
            self.norm_h = make_layer_norm("norm_h")
            self.norm_x = make_layer_norm("norm_x")

    def build(self, inputs_shape, hidden_shape=None, cell_shape=None):
        batch, _, _, _ = inputs_shape
        height, width = _spatial_size(inputs_shape, self.name)
        state_shape = (batch, height, width, self.num_hidden)
        self.conv_h.build(state_shape)
        self.conv_x.build(tuple(inputs_shape))
        if self.layer_norm:
            self.norm_h.build((batch, height, width, 4 * self.num_hidden))
            self.norm_x.build((batch, height, width, 4 * self.num_hidden))
        self.input_forget_peephole = self.add_weight(
            shape=(height, width, 2 * self.num_hidden), initializer="zeros",
            name="input_forget_peephole")
        self.output_peephole = self.add_weight(
            shape=(height, width, self.num_hidden), initializer="zeros", name="output_peephole")

    def _maybe_norm(self, name: str, values):
        return getattr(self, name)(values) if self.layer_norm else values

    def call(self, inputs, hidden, cell):
        h_concat = self._maybe_norm("norm_h", self.conv_h(hidden))
        i_h, g_h, f_h, o_h = ops.split(h_concat, 4, axis=-1)
        both_cells = ops.concatenate([cell, cell], axis=-1)  # [B, H, W, 2*nh]
        i_c, f_c = ops.split(both_cells * self.input_forget_peephole, 2, axis=-1)
        x_concat = self._maybe_norm("norm_x", self.conv_x(inputs))
        i_x, g_x, f_x, o_x = ops.split(x_concat, 4, axis=-1)

        input_gate = ops.sigmoid(i_h + i_c + i_x)
        forget_gate = ops.sigmoid(f_h + f_c + f_x + self.forget_bias)
        cell_new = forget_gate * cell + input_gate * ops.tanh(g_h + g_x)
        output_gate = ops.sigmoid(o_h + o_x + cell_new * self.output_peephole)
        hidden_new = output_gate * ops.tanh(cell_new)
        return hidden_new, cell_new

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_hidden": self.num_hidden,
            "filter_size": self.filter_size,
            "layer_norm": self.layer_norm,
            "forget_bias": self.forget_bias,
        })
        return config


class StationaryCell(NonStationaryCell):
    """MIM-S: OpenSTL's ``MIMBlock.MIMS``, the same computation as :class:`NonStationaryCell`.

    Inside a :class:`MIMBlockCell` it is called as ``(D_t, C_{t-1}, S_{t-1})``: the MIM-N
    output of this layer as ``inputs``, the block's previous cell memory C as ``hidden``
    and its own memory S as ``cell``; its ``hidden`` output T_t replaces ``f * C_{t-1}``.
    """


class MIMBlockCell(keras.layers.Layer):
    """One step of OpenSTL's ``MIMBlock``: ST-LSTM with MIM-S in place of the C forget gate.

    With ``x`` the input, ``d`` MIM-N's output, ``h, c, m`` the previous hidden state, cell
    memory and the incoming spatiotemporal memory, and ``s`` the MIM-S memory::

        [i_t, g_t, o_t] = conv_t(h)                         # 3 * num_hidden channels
        [i_s, g_s, f_s, o_s] = conv_s(m)                    # 4 * num_hidden
        [i_x, g_x, f_x, o_x] = conv_x(x)                    # 4 * num_hidden
        delta_m = sigmoid(i_x + i_s) * tanh(g_x + g_s)
        m_new = sigmoid(f_x + f_s + 1) * m + delta_m
        stationary, s_new = MIM-S(d, c, s)
        delta_c = sigmoid(i_x + i_t) * tanh(g_x + g_t)
        c_new = stationary + delta_c
        h_new = sigmoid(o_x + o_t + o_s) * tanh(conv_last([c_new, m_new]))   # 1 x 1

    Args:
      num_hidden: channels of every state (and of the inputs, as OpenSTL needs).
      filter_size: spatial kernel size k (odd).
      layer_norm: layer-normalise the outputs of conv_t, conv_s, conv_x and of MIM-S's
        convolutions over (H, W, C).
      forget_bias: added to the forget gates (1.0 in OpenSTL).
      **kwargs: standard Keras layer arguments.

    Call arguments:
      inputs: ``[B, H, W, C_in]``, the hidden state of the layer below.
      difference: ``[B, H, W, num_hidden]``, MIM-N's output (zeros at the first step).
      hidden, cell, memory, stationary_cell: ``[B, H, W, num_hidden]`` each.

    Returns:
      ``(hidden, cell, memory, stationary_cell, delta_c, delta_m)``, each
      ``[B, H, W, num_hidden]``.
    """

    def __init__(self, num_hidden: int, filter_size: int = 5, layer_norm: bool = False,
                 forget_bias: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        _check_sizes(num_hidden, filter_size)
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.conv_t = make_conv(3 * num_hidden, filter_size, "conv_t")
        self.conv_s = make_conv(4 * num_hidden, filter_size, "conv_s")
        self.conv_x = make_conv(4 * num_hidden, filter_size, "conv_x")
        self.conv_last = make_conv(num_hidden, 1, "conv_last")
        if layer_norm:
            self.norm_t = make_layer_norm("norm_t")
            self.norm_s = make_layer_norm("norm_s")
            self.norm_x = make_layer_norm("norm_x")
        self.stationary = StationaryCell(num_hidden, filter_size, layer_norm, forget_bias,
                                         name="stationary")

    def build(self, inputs_shape, difference_shape=None, hidden_shape=None, cell_shape=None,
              memory_shape=None, stationary_cell_shape=None):
        batch, _, _, _ = inputs_shape
        height, width = _spatial_size(inputs_shape, self.name)
        state_shape = (batch, height, width, self.num_hidden)
        self.conv_t.build(state_shape)
        self.conv_s.build(state_shape)
        self.conv_x.build(tuple(inputs_shape))
        self.conv_last.build((batch, height, width, 2 * self.num_hidden))
        if self.layer_norm:
            self.norm_t.build((batch, height, width, 3 * self.num_hidden))
            self.norm_s.build((batch, height, width, 4 * self.num_hidden))
            self.norm_x.build((batch, height, width, 4 * self.num_hidden))
        self.stationary.build(state_shape, state_shape, state_shape)

    def _maybe_norm(self, name: str, values):
        return getattr(self, name)(values) if self.layer_norm else values

    def call(self, inputs, difference, hidden, cell, memory, stationary_cell):
        t_concat = self._maybe_norm("norm_t", self.conv_t(hidden))
        s_concat = self._maybe_norm("norm_s", self.conv_s(memory))
        x_concat = self._maybe_norm("norm_x", self.conv_x(inputs))
        i_t, g_t, o_t = ops.split(t_concat, 3, axis=-1)
        i_s, g_s, f_s, o_s = ops.split(s_concat, 4, axis=-1)
        i_x, g_x, f_x, o_x = ops.split(x_concat, 4, axis=-1)

        delta_m = ops.sigmoid(i_x + i_s) * ops.tanh(g_x + g_s)
        memory_new = ops.sigmoid(f_x + f_s + self.forget_bias) * memory + delta_m
        stationary, stationary_cell_new = self.stationary(difference, cell, stationary_cell)
        delta_c = ops.sigmoid(i_x + i_t) * ops.tanh(g_x + g_t)
        cell_new = stationary + delta_c

        both_memories = ops.concatenate([cell_new, memory_new], axis=-1)  # [B, H, W, 2*nh]
        output_gate = ops.sigmoid(o_x + o_t + o_s)
        hidden_new = output_gate * ops.tanh(self.conv_last(both_memories))
        return hidden_new, cell_new, memory_new, stationary_cell_new, delta_c, delta_m

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_hidden": self.num_hidden,
            "filter_size": self.filter_size,
            "layer_norm": self.layer_norm,
            "forget_bias": self.forget_bias,
        })
        return config
