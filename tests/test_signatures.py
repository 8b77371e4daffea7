"""The mm/h signature of a rain-rate export: the same numbers as predrnn-predict's numpy
path, NaN for no data, any multiple of the patch size; dBZ exports keep predict_dbz."""

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.config import Config
from predrnn_tf.errors import ExportError
from predrnn_tf.inference.frames import physical_to_pixels
from predrnn_tf.models import ensemble
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.forecasting import make_forecast_function
from predrnn_tf.serving import signatures, warmup

CONFIG = Config(num_hidden=(4,), filter_size=3, patch_size=4, img_width=16, input_length=3,
                total_length=5)


@pytest.fixture(scope="module")
def rain_export(tmp_path_factory):
    """(model, loaded SavedModel) of a tiny rain-rate model."""
    model = build_model(CONFIG)
    module = signatures.ForecastModule(model, CONFIG, units.rain_rate_mapping())
    path = str(tmp_path_factory.mktemp("export") / "1")
    tf.saved_model.save(module, path, signatures=module.signatures())
    return model, tf.saved_model.load(path)


def rain_rates(height: int, width: int) -> np.ndarray:
    rates = np.random.default_rng(0).gamma(0.5, 3.0, (2, 3, height, width, 1))
    rates[rates < 0.3] = 0.0
    rates[:, :, :4, :4] = np.nan  # no data
    return rates.astype(np.float32)


@pytest.mark.parametrize("height, width", [(16, 16), (24, 32)])
def test_mm_per_hour_signature_equals_the_numpy_path(rain_export, height, width):
    model, loaded = rain_export
    assert set(loaded.signatures) == {"serving_default", "predict_mm_per_hour"}
    rates = rain_rates(height, width)
    served = loaded.signatures["predict_mm_per_hour"](
        frames_mm_per_hour=tf.constant(rates))["predictions_mm_per_hour"].numpy()
    mapping = units.rain_rate_mapping()
    pixels = physical_to_pixels(rates, mapping, "test")
    expected = units.pixels_to_rain_rate(make_forecast_function(model, 2)(pixels).numpy(),
                                         mapping)
    assert served.shape == (2, 2, height, width, 1)
    assert np.isnan(served[:, :, :4, :4]).all()  # no data in the newest input frame
    np.testing.assert_allclose(served[:, :, 4:], expected[:, :, 4:], rtol=2e-4, atol=1e-5)


def test_mm_per_hour_signature_refuses_negative_rates(rain_export):
    _, loaded = rain_export
    rates = rain_rates(16, 16)
    rates[0, 0, 8, 8] = -1.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="rain rates >= 0"):
        loaded.signatures["predict_mm_per_hour"](frames_mm_per_hour=tf.constant(rates))


def test_physical_signature_and_warmup_follow_the_mapping():
    assert signatures.physical_signature(units.rain_rate_mapping())[0] == "predict_mm_per_hour"
    assert signatures.physical_signature(units.hko7_mapping())[0] == "predict_dbz"
    assert signatures.physical_signature(None) is None
    requests = warmup.warmup_inputs(CONFIG, units.rain_rate_mapping())
    assert set(requests) == {"serving_default", "predict_mm_per_hour"}
    assert (requests["predict_mm_per_hour"]["frames_mm_per_hour"] == 0).all()
    dbz = warmup.warmup_inputs(CONFIG, units.hko7_mapping())["predict_dbz"]["frames_dbz"]
    assert (dbz == units.hko7_mapping()["offset"]).all()


ADVECTION = Config(num_hidden=(4,), filter_size=3, patch_size=4, img_width=16, input_length=3,
                   total_length=5, residual_frames=True, advection_prior=True)
GRID = {"pixel_km": 2.0, "interval_minutes": 5.0}


def motion_ensemble(model, num_members: int = 4) -> ensemble.MotionEnsemble:
    return ensemble.MotionEnsemble(model, num_members, seed=3, **GRID)


@pytest.fixture(scope="module")
def ensemble_export(tmp_path_factory):
    """(model, loaded SavedModel with the ensemble signature) of a tiny advection model."""
    model = build_model(ADVECTION)
    module = signatures.ForecastModule(model, ADVECTION, units.rain_rate_mapping(),
                                       ensemble=motion_ensemble(model))
    path = str(tmp_path_factory.mktemp("ensemble") / "1")
    tf.saved_model.save(module, path, signatures=module.signatures())
    return model, tf.saved_model.load(path)


def test_ensemble_signature_returns_the_in_process_members_and_their_probabilities(
        ensemble_export):
    model, loaded = ensemble_export
    assert set(loaded.signatures) == {"serving_default", "predict_mm_per_hour",
                                      "predict_ensemble_mm_per_hour"}
    serve = loaded.signatures["predict_ensemble_mm_per_hour"]
    rates = 4.0 * rain_rates(16, 16)
    served = serve(frames_mm_per_hour=tf.constant(rates))
    members = served["members_mm_per_hour"].numpy()
    probabilities = served["exceedance_probabilities"].numpy()
    assert members.shape == (2, 4, 2, 16, 16, 1) and probabilities.shape == (2, 2, 16, 16, 2)
    mapping = units.rain_rate_mapping()
    pixels = physical_to_pixels(rates, mapping, "test")
    expected = units.pixels_to_rain_rate(  # the same seed in process: the same first draw
        ensemble.MemberForecaster(motion_ensemble(model), 2).members(pixels), mapping)
    np.testing.assert_allclose(members[..., 4:, :], expected[..., 4:, :], rtol=2e-4, atol=1e-5)
    assert np.isnan(members[..., :4, :4, :]).all() and np.isnan(probabilities[:, :, :4, :4]).all()
    assert np.ptp(members[..., 4:, :], axis=1).max() > 0.01  # the members differ
    for index, threshold in enumerate((1.0, 5.0)):
        fraction = (members[..., 4:, :, 0] >= threshold).mean(axis=1)
        np.testing.assert_allclose(probabilities[:, :, 4:, :, index], fraction, atol=1e-6)
    again = serve(frames_mm_per_hour=tf.constant(rates))["members_mm_per_hour"].numpy()
    assert not np.allclose(again[..., 4:, :], members[..., 4:, :])  # new draws per request


def test_ensemble_signature_needs_a_rain_rate_mapping():
    model = build_model(ADVECTION)
    with pytest.raises(ExportError, match="one-channel rain-rate"):
        signatures.ForecastModule(model, ADVECTION, units.hko7_mapping(),
                                  ensemble=motion_ensemble(model))
