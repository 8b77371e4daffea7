"""The accepted input of the models (predrnn_tf/models/inputs.py), through model.forecast."""

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.errors import InputError
from predrnn_tf.models import inputs
from predrnn_tf.models.builder import build_model

TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)


@pytest.fixture(scope="module", params=["predrnn_v2", "mim"])
def model(request):
    return build_model(TINY.replace(model_name=request.param))


def frames(batch=2, length=3, size=16, channels=1, seed=0):
    shape = (batch, length, size, size, channels)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def assert_one_line(raised, *fragments):
    message = str(raised.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("bad,fragments", [
    (frames() * 255, ("[0, 1]", "divide by 255")),
    (frames() - 1.0, ("[0, 1]",)),
    (np.where(frames() > 0.5, np.nan, frames()), ("NaN or infinite",)),
    (np.where(frames() > 0.5, np.inf, frames()), ("NaN or infinite",)),
    (frames()[0], ("rank 4", "frames[None]")),
    (frames()[None], ("rank 6",)),
    (frames(batch=0), ("batch 0",)),
    (frames(length=4), ("4 frames, the model takes 3",)),
    (frames(channels=3), ("3 channels",)),
    (frames(size=18), ("H=18", "multiple of 4")),
    ((frames() * 100).astype(np.int32), ("dtype int32",)),
    (np.array([["a"]]), ("numeric",)),
])
def test_forecast_refuses_in_one_line(model, bad, fragments):
    with pytest.raises(InputError) as raised:
        model.forecast(bad)
    assert_one_line(raised, *fragments)


@pytest.mark.parametrize("length", [0, -2, 2.0, True, "3"])
def test_output_length_must_be_a_positive_int(model, length):
    with pytest.raises(InputError) as raised:
        model.forecast(frames(), length)
    assert_one_line(raised, "output_length")


def test_uint8_is_scaled_and_floats_of_every_width_are_accepted(model):
    reference = frames()
    pixels = np.round(reference * 255).astype(np.uint8)
    np.testing.assert_allclose(model.forecast(pixels).numpy(),
                               model.forecast(pixels.astype(np.float32) / 255).numpy(),
                               atol=1e-6)
    for dtype in (tf.float16, tf.bfloat16, tf.float64):
        result = model.forecast(tf.cast(reference, dtype), 2)
        assert result.shape == (2, 2, 16, 16, 1) and result.dtype == tf.float32
    assert model.forecast(reference).shape[1] == 3  # None: as trained


def test_inside_tf_function_only_static_checks(model):
    forecast = tf.function(lambda x: model.forecast(x, 2))
    assert forecast(tf.constant(frames())).shape == (2, 2, 16, 16, 1)
    # Autograph may re-raise the InputError as its StagingError; the message is kept.
    with pytest.raises(Exception, match="4 frames, the model takes 3"):
        forecast(tf.constant(frames(length=4)))


def test_masks_two_and_five_dimensional():
    mask = np.array([[1, 0, 1, 0], [0, 0, 1, 1]], np.float32)
    five = np.broadcast_to(mask[:, :, None, None, None], (2, 4, 16, 16, 1))
    np.testing.assert_array_equal(inputs.check_mask(five, 2, 4).numpy(), mask)
    np.testing.assert_array_equal(inputs.check_mask(mask, None, 4).numpy(), mask)
    cases = [
        (mask[:, :3], 2, "4 entries per sample"),
        (mask, 3, "batch 2 but the frames have batch 3"),
        (mask * 0.5, 2, "0 or 1"),
        (np.random.default_rng(0).random((2, 4, 16, 16, 1)) > 0.5, 2, "varies within a frame"),
        (mask[0], 2, "must be [batch, 4]"),
    ]
    for bad, batch, fragment in cases:
        with pytest.raises(InputError) as raised:
            inputs.check_mask(bad, batch, 4)
        assert_one_line(raised, fragment)


def test_exported_signature_refuses_out_of_range_frames(tmp_path):
    from predrnn_tf.serving import exporter

    summary = exporter.export_model(build_model(TINY), TINY, str(tmp_path), "m", 1,
                                    warmup=False)
    serve = tf.saved_model.load(summary["path"]).signatures["serving_default"]
    assert serve(frames=tf.constant(frames(batch=1)))["predictions"].shape == (1, 3, 16, 16, 1)
    for bad in (frames(batch=1) * 255, np.full((1, 3, 16, 16, 1), np.nan, np.float32)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="in \\[0, 1\\]"):
            serve(frames=tf.constant(bad))
