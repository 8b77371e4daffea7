"""Probability matching: pysteps' empirical-CDF rule in numpy; blurred forecasts regain area."""

import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.models import probability_matching

METADATA = {"value_mapping": units.rain_rate_mapping()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pysteps_nonparam_match_empirical_cdf(seed):
    probmatching = pytest.importorskip("pysteps.postprocessing.probmatching")
    rng = np.random.default_rng(seed)
    initial = rng.gamma(0.7, 2.0, (12, 15)) * (rng.random((12, 15)) < 0.5 + 0.2 * (seed - 1))
    target = rng.gamma(0.5, 4.0, (12, 15)) * (rng.random((12, 15)) < 0.5)
    target[0, :3] = np.nan
    expected = probmatching.nonparam_match_empirical_cdf(initial, target)
    np.testing.assert_array_equal(probability_matching.match_empirical_cdf(initial, target),
                                  expected)


def test_a_blurred_forecast_gets_the_last_inputs_rain_area_back():
    rng = np.random.default_rng(3)
    rate = rng.gamma(0.8, 3.0, (1, 2, 20, 20, 1)) * (rng.random((1, 2, 20, 20, 1)) < 0.6)
    inputs01 = units.rain_rate_to_pixels(rate) / 255.0
    inputs01[:, :, :4] = units.NO_DATA_PIXEL / 255.0  # a no-data band
    blurred = np.where(rate > 0.1, 0.3 + 0.2 * rate / rate.max(), 0.0)  # wet area kept, < 1 mm/h
    forecast01 = units.rain_rate_to_unit_pixels(np.repeat(blurred[:, -1:], 3, axis=1))
    matched = probability_matching.match_forecast(inputs01, forecast01, METADATA)
    last = units.pixels_to_rain_rate(inputs01[:, -1], METADATA)[0, 4:]
    for lead in range(3):
        before = units.pixels_to_rain_rate(forecast01[:, lead], METADATA)[0, 4:]
        after = units.pixels_to_rain_rate(matched[:, lead], METADATA)[0, 4:]
        assert (before > 1).sum() == 0 and (after > 1).sum() == (last > 1).sum()
        np.testing.assert_allclose(np.sort(after.ravel()), np.sort(last.ravel()), rtol=1e-5)
    np.testing.assert_array_equal(matched[:, :, :4], np.float32(forecast01[:, :, :4]))  # no data


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="share"):
        probability_matching.match_forecast(np.zeros((1, 2, 8, 8, 1)), np.zeros((1, 3, 8, 9, 1)),
                                            METADATA)
