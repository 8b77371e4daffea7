"""Float64 NumPy transcriptions of the cell equations, for tests."""

from __future__ import annotations

import numpy as np


def conv2d_same(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None):
    """NHWC stride-1 'same' convolution; kernel [k, k, in, out]."""
    size = kernel.shape[0]
    pad = size // 2
    padded = np.pad(inputs, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = inputs.shape[1:3]
    out = np.zeros(inputs.shape[:3] + (kernel.shape[3],))
    for row in range(size):
        for col in range(size):
            window = padded[:, row:row + height, col:col + width, :]
            out += window @ kernel[row, col]
    if bias is not None:
        out += bias
    return out


def layer_norm(values: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon=1e-5):
    """Per-sample normalisation over (H, W, C) with an (H, W, C) affine."""
    mean = values.mean(axis=(1, 2, 3), keepdims=True)
    variance = values.var(axis=(1, 2, 3), keepdims=True)
    return (values - mean) / np.sqrt(variance + epsilon) * gamma + beta


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def st_lstm_step(weights: dict, x, h, c, m, forget_bias=1.0):
    """The official ST-LSTM v2 step. ``weights`` maps conv/norm names to float64 arrays."""
    def conv(name, values):
        out = conv2d_same(values, weights[name])
        norm = name.replace("conv", "norm")
        if norm + "/gamma" in weights:
            out = layer_norm(out, weights[norm + "/gamma"], weights[norm + "/beta"])
        return out

    nh = h.shape[-1]
    xs = np.split(conv("conv_x", x), 7, axis=-1)
    hs = np.split(conv("conv_h", h), 4, axis=-1)
    ms = np.split(conv("conv_m", m), 3, axis=-1)
    i_x, f_x, g_x, ip_x, fp_x, gp_x, o_x = xs
    i_h, f_h, g_h, o_h = hs
    i_m, f_m, g_m = ms
    delta_c = sigmoid(i_x + i_h) * np.tanh(g_x + g_h)
    c_new = sigmoid(f_x + f_h + forget_bias) * c + delta_c
    delta_m = sigmoid(ip_x + i_m) * np.tanh(gp_x + g_m)
    m_new = sigmoid(fp_x + f_m + forget_bias) * m + delta_m
    mem = np.concatenate([c_new, m_new], axis=-1)
    o = sigmoid(o_x + o_h + conv("conv_o", mem))
    h_new = o * np.tanh(conv2d_same(mem, weights["conv_last"]))
    assert h_new.shape[-1] == nh
    return h_new, c_new, m_new, delta_c, delta_m
