"""The hostile-input suite, public Python functions (issue 13, items 5, 6 and 8).

``predrnn_tf.forecast``, ``model.forecast``, ``model(frames, mask)`` and
``predrnn_tf.build_model`` are tried with every kind of wrong argument: wrong rank, batch 0,
wrong length or channels, wrong dtype, values outside [0, 1] (0-255 floats, negatives), NaN
and infinity, nonsense ``output_length`` and configurations. Each must raise one one-line
:class:`~predrnn_tf.errors.InputError` / :class:`~predrnn_tf.errors.ConfigError` naming the
argument; what is unambiguous (uint8 frames 0..255) is converted, never silently misread.
The one input check behind them lives in :mod:`predrnn_tf.models.inputs`.
"""

import numpy as np
import pytest

import predrnn_tf
from predrnn_tf.config import Config
from predrnn_tf.errors import ConfigError, InputError

TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6)
FRAMES = np.random.default_rng(0).random((2, 3, 16, 16, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return predrnn_tf.build_model(TINY)


def _with_nan(frames):
    frames = frames.copy()
    frames[0, 1, 3, 4, 0] = np.nan  # one no-data pixel
    return frames


BAD_FRAMES = {
    "rank_6": (FRAMES[None], "rank 6"),
    "rank_4": (FRAMES[0], "rank 4"),
    "rank_0": (np.float32(0.5), "rank 0"),
    "batch_0": (FRAMES[:0], "batch 0"),
    "too_few_frames": (FRAMES[:, :2], "2 frames"),
    "wrong_channels": (np.repeat(FRAMES, 3, axis=-1), "3 channels"),
    "odd_size": (FRAMES[:, :, :15, :15], "multiples of patch_size"),
    "float_0_255": (FRAMES * 255, "divide by 255"),
    "negative": (FRAMES - 1, "[0, 1]"),
    "one_nan_pixel": (_with_nan(FRAMES), "NaN or infinite"),
    "inf": (np.full_like(FRAMES, np.inf), "NaN or infinite"),
    "int64": ((FRAMES * 255).astype(np.int64), "dtype int64"),
    "bool": (FRAMES > 0.5, "dtype bool"),
    "strings": (np.full((2, 3, 16, 16, 1), "a"), "dtype <U1"),
    "objects": (np.empty((2, 3, 16, 16, 1), dtype=object), "dtype object"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
@pytest.mark.parametrize("function", ["predrnn_tf.forecast", "model.forecast"])
def test_bad_frames_raise_one_line_input_error(model, case, function):
    frames, words = BAD_FRAMES[case]
    call = (lambda: predrnn_tf.forecast(model, frames)) if function == "predrnn_tf.forecast" \
        else (lambda: model.forecast(frames))
    with pytest.raises(InputError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message and words in message, message


@pytest.mark.parametrize("output_length", [-2, 0, 2.5, "3", True, float("nan")])
def test_bad_output_length_raises(model, output_length):
    with pytest.raises(InputError, match="output_length"):
        model.forecast(FRAMES, output_length)


def test_uint8_frames_are_read_as_0_to_255(model):
    as_uint8 = np.round(FRAMES * 255).astype(np.uint8)
    expected = model.forecast(as_uint8.astype(np.float32) / 255).numpy()
    np.testing.assert_allclose(model.forecast(as_uint8).numpy(), expected, atol=1e-6)


def test_valid_frames_give_finite_forecasts_of_the_asked_length(model):
    forecast = predrnn_tf.forecast(model, FRAMES, 5).numpy()
    assert forecast.shape == (2, 5, 16, 16, 1) and np.isfinite(forecast).all()


@pytest.mark.parametrize("config,words", [
    (None, "expected a predrnn_tf.Config"),
    ({"num_hidden": (4, 4)}, "expected a predrnn_tf.Config"),
    (TINY.replace(batch_size="8"), "--batch_size must be an integer"),
    (TINY.replace(num_hidden=(4, 8)), "--num_hidden"),
    (TINY.replace(img_width=15), "--img_width=15"),
    (TINY.replace(lr=float("nan")), "--lr must be finite"),
    (TINY.replace(num_hidden=(10**6,) * 2), "--num_hidden"),
    (TINY.replace(filter_size=10**9), "--filter_size"),
])
def test_build_model_validates_its_config(config, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(")):
        predrnn_tf.build_model(config)


def test_build_model_refuses_an_unknown_precision():
    with pytest.raises(ConfigError, match="precision"):
        predrnn_tf.build_model(TINY, precision="float8")


@pytest.mark.parametrize("model_name", ["predrnn_v2", "mim"])
@pytest.mark.parametrize("mask_shape", [(2, 99), (5, 4), (2,)])
def test_a_mask_of_the_wrong_length_or_batch_is_refused(model, model_name, mask_shape):
    if model_name != "predrnn_v2":
        model = predrnn_tf.build_model(TINY.replace(model_name=model_name))
    frames = np.random.default_rng(1).random((2, 6, 16, 16, 1)).astype(np.float32)
    with pytest.raises(InputError, match="mask"):
        model(frames, np.zeros(mask_shape, np.float32))


def test_a_mask_of_ones_and_twos_is_refused(model):
    frames = np.random.default_rng(1).random((2, 6, 16, 16, 1)).astype(np.float32)
    with pytest.raises(InputError, match="0 or 1"):
        model(frames, np.full((2, model.mask_length), 2.0, np.float32))
