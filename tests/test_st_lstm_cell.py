import numpy as np
import pytest

from predrnn_tf.layers import SpatioTemporalLSTMCell
from tests.numpy_reference import st_lstm_step


def _weights_of(cell):
    weights = {}
    for name in ("conv_x", "conv_h", "conv_m", "conv_o", "conv_last"):
        weights[name] = getattr(cell, name).kernel.numpy().astype(np.float64)
    if cell.layer_norm:
        for name in ("norm_x", "norm_h", "norm_m", "norm_o"):
            norm = getattr(cell, name)
            weights[name + "/gamma"] = norm.gamma.numpy().astype(np.float64)
            weights[name + "/beta"] = norm.beta.numpy().astype(np.float64)
    return weights


@pytest.mark.parametrize("layer_norm", [False, True])
def test_matches_float64_numpy_transcription(layer_norm):
    rng = np.random.default_rng(0)
    batch, size, channels, hidden = 2, 6, 3, 4
    x, h, c, m = (rng.normal(size=(batch, size, size, n)).astype(np.float32)
                  for n in (channels, hidden, hidden, hidden))
    cell = SpatioTemporalLSTMCell(hidden, filter_size=3, layer_norm=layer_norm)
    cell(x, h, c, m)
    if layer_norm:  # random affine so the check covers gamma and beta
        for name in ("norm_x", "norm_h", "norm_m", "norm_o"):
            norm = getattr(cell, name)
            norm.gamma.assign(rng.normal(size=norm.gamma.shape))
            norm.beta.assign(rng.normal(size=norm.beta.shape))
    outputs = [o.numpy() for o in cell(x, h, c, m)]
    expected = st_lstm_step(_weights_of(cell), *(v.astype(np.float64) for v in (x, h, c, m)))
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_shapes_and_weight_shapes():
    cell = SpatioTemporalLSTMCell(8, filter_size=5)
    x = np.zeros((3, 4, 4, 16), np.float32)
    state = np.zeros((3, 4, 4, 8), np.float32)
    outputs = cell(x, state, state, state)
    assert [tuple(o.shape) for o in outputs] == [(3, 4, 4, 8)] * 5
    assert tuple(cell.conv_x.kernel.shape) == (5, 5, 16, 56)
    assert tuple(cell.conv_h.kernel.shape) == (5, 5, 8, 32)
    assert tuple(cell.conv_m.kernel.shape) == (5, 5, 8, 24)
    assert tuple(cell.conv_o.kernel.shape) == (5, 5, 16, 8)
    assert tuple(cell.conv_last.kernel.shape) == (1, 1, 16, 8)
    assert all(conv.bias is None for conv in (cell.conv_x, cell.conv_h, cell.conv_m))


def test_config_round_trip():
    cell = SpatioTemporalLSTMCell(16, filter_size=3, layer_norm=True, forget_bias=0.5, name="c")
    clone = SpatioTemporalLSTMCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    assert (clone.num_hidden, clone.filter_size, clone.layer_norm, clone.forget_bias) == (
        16, 3, True, 0.5)


@pytest.mark.parametrize("kwargs,match", [({"num_hidden": 0}, "num_hidden=0"),
                                          ({"num_hidden": 4, "filter_size": 4}, "filter_size=4")])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatioTemporalLSTMCell(**kwargs)
