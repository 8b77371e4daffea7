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


def test_resampled_distribution_keeps_the_quantiles():
    values = np.array([3.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(probability_matching.resample_distribution(values, 4),
                                  [0.0, 1.0, 2.0, 3.0])
    resampled = probability_matching.resample_distribution(values, 8)
    assert resampled.shape == (8,) and resampled.min() == 0.0 and resampled.max() == 3.0
    np.testing.assert_allclose(np.mean(resampled), np.mean(values))


def test_blend_and_match_takes_the_distribution_of_the_pixels_advected_from_inside():
    rng = np.random.default_rng(4)
    forecast = 0.2 + 0.3 * rng.random(200)  # blurred: wet everywhere, nothing above 1 mm/h
    extrapolated = rng.gamma(0.8, 3.0, 200) * (rng.random(200) < 0.6)
    extrapolated[:50] = np.nan  # advected in from outside: unknown, not dry
    full = probability_matching.blend_and_match(forecast, extrapolated, strength=1.0)
    inside = np.sort(extrapolated[50:])
    np.testing.assert_allclose(np.quantile(full, [0.25, 0.5, 0.9]),
                               np.quantile(inside, [0.25, 0.5, 0.9]), rtol=0.05, atol=1e-9)
    blend = probability_matching.blend_and_match(forecast, extrapolated, model_weight=0.5,
                                                 strength=0.0)
    np.testing.assert_allclose(blend, 0.5 * forecast + 0.5 * np.nan_to_num(extrapolated))
    default = probability_matching.blend_and_match(forecast, extrapolated)
    matched = probability_matching.blend_and_match(forecast, extrapolated, strength=1.0)
    strength = probability_matching.MATCH_STRENGTH
    np.testing.assert_allclose(default, (1 - strength) * blend + strength * matched)
    assert (default > 1).sum() > (blend > 1).sum()  # the area above 1 mm/h grows back


def test_match_to_extrapolation_leaves_no_data_alone_and_checks_shapes():
    rng = np.random.default_rng(5)
    rate = rng.gamma(0.8, 3.0, (1, 2, 12, 12, 1)) * (rng.random((1, 2, 12, 12, 1)) < 0.6)
    inputs01 = units.rain_rate_to_pixels(rate) / 255.0
    inputs01[:, :, :3] = units.NO_DATA_PIXEL / 255.0
    forecast01 = units.rain_rate_to_unit_pixels(np.repeat(0.3 * rate[:, -1:], 2, axis=1))
    extrapolated = np.repeat(rate[:, -1:], 2, axis=1)
    matched = probability_matching.match_to_extrapolation(inputs01, forecast01, extrapolated,
                                                          METADATA)
    assert matched.shape == forecast01.shape and matched.dtype == np.float32
    np.testing.assert_array_equal(matched[:, :, :3], np.float32(forecast01[:, :, :3]))
    assert np.all(matched[:, :, 3:] >= 0) and np.all(matched <= 1)
    with pytest.raises(ValueError, match="one shape"):
        probability_matching.match_to_extrapolation(inputs01, forecast01, extrapolated[:, :1],
                                                    METADATA)


def test_postprocess_methods_and_errors():
    inputs01 = np.full((1, 2, 8, 8, 1), 0.5, np.float32)
    forecast01 = np.full((1, 3, 8, 8, 1), 0.4, np.float32)
    np.testing.assert_array_equal(
        probability_matching.postprocess("none", inputs01, forecast01, METADATA), forecast01)
    extrapolate_calls = []

    def extrapolate(inputs):
        extrapolate_calls.append(inputs.shape)
        return np.full((1, 3, 8, 8, 1), 2.0)

    matched = probability_matching.postprocess("extrapolation", inputs01, forecast01, METADATA,
                                               extrapolate)
    assert extrapolate_calls == [(1, 2, 8, 8, 1)] and matched.shape == forecast01.shape
    with pytest.raises(ValueError, match="needs the extrapolation nowcast"):
        probability_matching.postprocess("extrapolation", inputs01, forecast01, METADATA)
    with pytest.raises(ValueError, match="must be one of none, last_input, extrapolation"):
        probability_matching.postprocess("median", inputs01, forecast01, METADATA)
    with pytest.raises(ValueError, match="rain-rate"):
        probability_matching.postprocess("last_input", inputs01, forecast01,
                                         {"value_mapping": units.hko7_mapping()})


def test_blend_weight_and_strength_are_arguments_of_postprocess_and_checked():
    rng = np.random.default_rng(6)
    rate = rng.gamma(0.8, 3.0, (1, 2, 8, 8, 1)) * (rng.random((1, 2, 8, 8, 1)) < 0.6)
    inputs01 = (units.rain_rate_to_pixels(rate) / 255.0).astype(np.float32)
    forecast01 = units.rain_rate_to_unit_pixels(0.3 * rate[:, -1:].repeat(3, axis=1))

    def extrapolate(inputs):
        return np.repeat(rate[:, -1:], 3, axis=1)

    model_only = probability_matching.postprocess("extrapolation", inputs01, forecast01,
                                                  METADATA, extrapolate, 1.0, 0.0)
    np.testing.assert_allclose(model_only, forecast01, atol=1e-6)  # all model, no matching
    default = probability_matching.postprocess("extrapolation", inputs01, forecast01,
                                               METADATA, extrapolate)
    chosen = probability_matching.postprocess("extrapolation", inputs01, forecast01, METADATA,
                                              extrapolate, probability_matching.MODEL_WEIGHT,
                                              probability_matching.MATCH_STRENGTH)
    np.testing.assert_array_equal(default, chosen)
    assert not np.allclose(default, model_only)
    for weight, strength in ((1.5, 0.5), (0.5, -0.1)):
        with pytest.raises(ValueError, match=r"must be in \[0, 1\], got"):
            probability_matching.postprocess("extrapolation", inputs01, forecast01, METADATA,
                                             extrapolate, weight, strength)


def test_blend_options_name_the_flag_and_need_the_extrapolation_method():
    assert probability_matching.blend_options("extrapolation", None, None) == {}
    assert probability_matching.blend_options("extrapolation", 0.7, 1.0) == {
        "model_weight": 0.7, "strength": 1.0}
    with pytest.raises(ValueError, match="^probability_matching_strength needs "
                                         "--probability_matching=extrapolation, got "
                                         "--probability_matching=last_input$"):
        probability_matching.blend_options("last_input", None, 0.5)
    with pytest.raises(ValueError, match=r"^probability_matching_blend must be in \[0, 1\]"):
        probability_matching.blend_options("extrapolation", -0.2, None)


def test_members_matched_to_their_pool_differ_only_in_place():
    rng = np.random.default_rng(7)
    shape = (1, 1, 2, 16, 16, 1)  # [B, N, T, H, W, 1]; wet pixels stay above the dBR floor
    base = (1.0 + rng.gamma(0.8, 3.0, shape)) * (rng.random(shape) < 0.7)
    decay = np.array([1.0, 0.5]).reshape(1, 1, 2, 1, 1, 1)  # the ensemble's rain halves
    factors = np.array([0.5, 1.0, 3.0]).reshape(1, 3, 1, 1, 1, 1)  # amounts spread x6
    members01 = units.rain_rate_to_unit_pixels(base * decay * factors)  # [1, 3, 2, H, W, 1]
    inputs01 = units.rain_rate_to_unit_pixels(base[:, 0])  # [1, 2, H, W, 1]
    inputs01[:, -1, :3] = units.NO_DATA_PIXEL / 255.0  # a no-data band is left as it was
    matched = probability_matching.match_members_to_pool(inputs01, members01, METADATA)
    assert matched.shape == members01.shape
    # the same ranks in every member: matched to one pool, the members become one field
    np.testing.assert_allclose(matched[:, 0, :, 3:], matched[:, 2, :, 3:], atol=1e-6)
    assert not np.allclose(members01[:, 0], members01[:, 2])
    rates = units.pixels_to_rain_rate(members01, METADATA)[0, :, :, 3:]  # [N, T, 13, W, 1]
    after = units.pixels_to_rain_rate(matched, METADATA)[0, 0, :, 3:]  # [T, 13, W, 1]
    for lead in range(2):
        pool = probability_matching.resample_distribution(rates[:, lead], after[lead].size)
        np.testing.assert_allclose(np.sort(after[lead].ravel()), pool, rtol=1e-4, atol=1e-4)
    # the pool keeps the ensemble's decay (lead 2 holds about half the rain of lead 1)
    assert 0.4 < after[1].sum() / after[0].sum() < 0.6
    np.testing.assert_array_equal(matched[:, :, :, :3], np.float32(members01[:, :, :, :3]))
    with pytest.raises(ValueError, match=r"must be \[B, T_in, H, W, 1\] and"):
        probability_matching.match_members_to_pool(inputs01, members01[:, 0], METADATA)
    assert probability_matching.check_method("pooled", members=True) == "pooled"
    with pytest.raises(ValueError, match="one of none, last_input, extrapolation, got"):
        probability_matching.check_method("pooled")
