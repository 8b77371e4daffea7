import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.intensity_matching import match_intensity_distribution

NO_DATA_LEVEL = 0.5 / 255.0


def _frames(rng, batch=2, steps=3, size=6):
    forecast = rng.random((batch, steps, size, size, 1)).astype(np.float32)
    reference = rng.random((batch, size, size, 1)).astype(np.float32) + 0.01
    reference[:, :2, :2] = 0.0  # a no-data corner
    return forecast, reference


def test_each_frame_takes_the_reference_values_in_the_forecast_order():
    forecast, reference = _frames(np.random.default_rng(0))
    matched = match_intensity_distribution(tf.constant(forecast), tf.constant(reference),
                                           NO_DATA_LEVEL).numpy()
    valid = reference[..., 0] > NO_DATA_LEVEL
    for sample in range(forecast.shape[0]):
        observed = np.sort(reference[sample, ..., 0][valid[sample]])
        for step in range(forecast.shape[1]):
            frame, got = forecast[sample, step, ..., 0], matched[sample, step, ..., 0]
            np.testing.assert_array_equal(np.sort(got[valid[sample]]), observed)
            # the spatial ranking is the forecast's: the same argsort over valid pixels
            np.testing.assert_array_equal(np.argsort(got[valid[sample]]),
                                          np.argsort(frame[valid[sample]]))
            # no-data pixels keep the forecast's value
            np.testing.assert_array_equal(got[~valid[sample]], frame[~valid[sample]])


def test_equals_pysteps_empirical_cdf_matching():
    probmatching = pytest.importorskip("pysteps.postprocessing.probmatching")
    rng = np.random.default_rng(1)
    forecast = rng.random((1, 1, 8, 8, 1)).astype(np.float32)
    reference = rng.random((1, 8, 8, 1)).astype(np.float32) + 0.01
    matched = match_intensity_distribution(tf.constant(forecast), tf.constant(reference),
                                           NO_DATA_LEVEL).numpy()
    expected = probmatching.nonparam_match_empirical_cdf(
        forecast[0, 0, ..., 0].astype(np.float64), reference[0, ..., 0].astype(np.float64))
    np.testing.assert_allclose(matched[0, 0, ..., 0], expected, rtol=0, atol=1e-7)


TINY = dict(model_name="predrnn_v2", num_hidden=(4, 4), filter_size=3, patch_size=2,
            img_width=8, input_length=3, total_length=6)


def test_the_forecast_is_matched_and_the_training_call_is_not():
    plain = build_model(Config(**TINY))
    matching = build_model(Config(**TINY, intensity_matching=True))
    matching.set_weights(plain.get_weights())
    rng = np.random.default_rng(2)
    frames = tf.constant(rng.uniform(0.01, 1.0, (2, 6, 8, 8, 1)).astype(np.float32))
    mask = tf.ones([2, plain.mask_length])
    np.testing.assert_array_equal(plain(frames, mask, training=True)[0].numpy(),
                                  matching(frames, mask, training=True)[0].numpy())
    inputs = frames[:, :3]
    raw = plain.forecast(inputs).numpy()
    matched = matching.forecast(inputs).numpy()
    assert not np.allclose(raw, matched)
    last = np.sort(inputs[:, -1].numpy().reshape(2, -1), axis=-1)
    for step in range(matched.shape[1]):
        np.testing.assert_array_equal(np.sort(matched[:, step].reshape(2, -1), axis=-1), last)
    assert matching.get_config()["intensity_matching"] is True
    assert type(matching).from_config(matching.get_config()).intensity_matching is True


def test_restore_sets_only_forecast_options(tmp_path):
    from predrnn_tf import checkpoints
    from predrnn_tf.config import save_config

    save_config(Config(**TINY), str(tmp_path))
    with pytest.raises(ValueError, match="forecast_options may set only"):
        checkpoints.restore(str(tmp_path), forecast_options={"num_hidden": (8,)})
