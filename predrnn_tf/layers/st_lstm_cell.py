"""The Spatiotemporal LSTM cell (ST-LSTM) of PredRNN and PredRNN-V2: one time step."""

from __future__ import annotations

import keras
from keras import ops


def torch_conv_initializer() -> keras.initializers.Initializer:
    """PyTorch's default ``nn.Conv2d`` weight init: uniform within +-1/sqrt(fan_in).

    ``kaiming_uniform_(a=sqrt(5))`` has bound ``sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)``,
    which is ``VarianceScaling(scale=1/3, mode="fan_in", distribution="uniform")``.
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in",
                                              distribution="uniform")


def make_conv(filters: int, kernel_size: int, name: str,
              use_bias: bool = False) -> keras.layers.Conv2D:
    """A stride-1, 'same'-padded NHWC convolution (bias-free by default, as the official code).

    Weights start as PyTorch's default (see :func:`torch_conv_initializer`), so training from
    scratch starts from the same distribution as the official code; biases start at zero.
    """
    return keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias, name=name,
                               kernel_initializer=torch_conv_initializer())


def make_layer_norm(name: str) -> keras.layers.LayerNormalization:
    """Normalises each sample over all of (H, W, C) with an element-wise (H, W, C) affine.

    This is PyTorch's ``nn.LayerNorm([C, H, W])`` (epsilon 1e-5) in NHWC layout.
    """
    return keras.layers.LayerNormalization(axis=(-3, -2, -1), epsilon=1e-5, name=name)


def apply_conv(conv: keras.layers.Conv2D, values, kernels=None):
    """``conv(values)``, or with ``kernels[conv.name]``, its kernel already cast once per unroll.

    A bias-free convolution only (the ST-LSTM's). The same arithmetic as ``conv(values)``:
    the pre-cast kernel holds the values Keras' autocast would give it at every step.
    """
    if kernels is None:
        return conv(values)
    return conv.convolution_op(values, kernels[conv.name])


class SpatioTemporalLSTMCell(keras.layers.Layer):
    """One step of the ST-LSTM cell, exactly as the official PredRNN-V2 PyTorch code.

    Gates (``*`` is a bias-free k x k convolution, ``+1.0`` the forget bias)::

        [i_x, f_x, g_x, i'_x, f'_x, g'_x, o_x] = conv_x(x)     # 7 * num_hidden channels
        [i_h, f_h, g_h, o_h] = conv_h(h)                         # 4 * num_hidden
        [i_m, f_m, g_m] = conv_m(m)                              # 3 * num_hidden
        delta_c = sigmoid(i_x + i_h) * tanh(g_x + g_h)
        c_new = sigmoid(f_x + f_h + 1) * c + delta_c
        delta_m = sigmoid(i'_x + i_m) * tanh(g'_x + g_m)
        m_new = sigmoid(f'_x + f_m + 1) * m + delta_m
        o = sigmoid(o_x + o_h + conv_o([c_new, m_new]))
        h_new = o * tanh(conv_last([c_new, m_new]))              # conv_last is 1 x 1

    Args:
      num_hidden: channels of h, c and m.
      filter_size: spatial kernel size k (odd).
      layer_norm: if True, layer-normalise the outputs of conv_x, conv_h, conv_m and conv_o
        over (H, W, C) per sample (the official ``--layer_norm=1``).
      forget_bias: added to both forget gates (1.0 in the official code).
      **kwargs: standard Keras layer arguments.

    Call arguments:
      inputs: ``[B, H, W, C_in]``.
      hidden, cell, memory: ``[B, H, W, num_hidden]`` each.
      kernels: optional :meth:`cast_kernels` result: the kernels already cast to the compute
        dtype (the model casts them once per forecast instead of once per step).

    Returns:
      ``(hidden, cell, memory, delta_c, delta_m)``, each ``[B, H, W, num_hidden]``.
    """

    def __init__(self, num_hidden: int, filter_size: int = 5, layer_norm: bool = False,
                 forget_bias: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if num_hidden <= 0:
            raise ValueError(f"num_hidden must be positive, received num_hidden={num_hidden}")
        if filter_size <= 0 or filter_size % 2 == 0:
            raise ValueError(f"filter_size must be a positive odd number, "
                             f"received filter_size={filter_size}")
        self.num_hidden = num_hidden
        self.filter_size = filter_size
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.conv_x = make_conv(7 * num_hidden, filter_size, "conv_x")
        self.conv_h = make_conv(4 * num_hidden, filter_size, "conv_h")
        self.conv_m = make_conv(3 * num_hidden, filter_size, "conv_m")
        self.conv_o = make_conv(num_hidden, filter_size, "conv_o")
        self.conv_last = make_conv(num_hidden, 1, "conv_last")
        if layer_norm:
            self.norm_x = make_layer_norm("norm_x")
            self.norm_h = make_layer_norm("norm_h")
            self.norm_m = make_layer_norm("norm_m")
            self.norm_o = make_layer_norm("norm_o")

    def build(self, inputs_shape, hidden_shape=None, cell_shape=None, memory_shape=None):
        batch, height, width, _ = inputs_shape
        state_shape = (batch, height, width, self.num_hidden)
        memory_pair_shape = (batch, height, width, 2 * self.num_hidden)
        self.conv_x.build(inputs_shape)
        self.conv_h.build(state_shape)
        self.conv_m.build(state_shape)
        self.conv_o.build(memory_pair_shape)
        self.conv_last.build(memory_pair_shape)
        if self.layer_norm:
            self.norm_x.build((batch, height, width, 7 * self.num_hidden))
            self.norm_h.build((batch, height, width, 4 * self.num_hidden))
            self.norm_m.build((batch, height, width, 3 * self.num_hidden))
            self.norm_o.build(state_shape)

    def _maybe_norm(self, name: str, values):
        return getattr(self, name)(values) if self.layer_norm else values

    def cast_kernels(self, dtype) -> dict:
        """Every convolution kernel cast to ``dtype``, by convolution name."""
        return {conv.name: ops.cast(conv.kernel, dtype) for conv in
                (self.conv_x, self.conv_h, self.conv_m, self.conv_o, self.conv_last)}

    def call(self, inputs, hidden, cell, memory, kernels=None):
        x_concat = self._maybe_norm("norm_x", apply_conv(self.conv_x, inputs, kernels))
        h_concat = self._maybe_norm("norm_h", apply_conv(self.conv_h, hidden, kernels))
        m_concat = self._maybe_norm("norm_m", apply_conv(self.conv_m, memory, kernels))
        i_x, f_x, g_x, i_x_prime, f_x_prime, g_x_prime, o_x = ops.split(x_concat, 7, axis=-1)
        i_h, f_h, g_h, o_h = ops.split(h_concat, 4, axis=-1)
        i_m, f_m, g_m = ops.split(m_concat, 3, axis=-1)

        delta_c = ops.sigmoid(i_x + i_h) * ops.tanh(g_x + g_h)
        cell_new = ops.sigmoid(f_x + f_h + self.forget_bias) * cell + delta_c
        delta_m = ops.sigmoid(i_x_prime + i_m) * ops.tanh(g_x_prime + g_m)
        memory_new = ops.sigmoid(f_x_prime + f_m + self.forget_bias) * memory + delta_m

        both_memories = ops.concatenate([cell_new, memory_new], axis=-1)  # [B, H, W, 2*nh]
        output_conv = self._maybe_norm("norm_o", apply_conv(self.conv_o, both_memories, kernels))
        output_gate = ops.sigmoid(o_x + o_h + output_conv)
        hidden_new = output_gate * ops.tanh(apply_conv(self.conv_last, both_memories, kernels))
        return hidden_new, cell_new, memory_new, delta_c, delta_m

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_hidden": self.num_hidden,
            "filter_size": self.filter_size,
            "layer_norm": self.layer_norm,
            "forget_bias": self.forget_bias,
        })
        return config
