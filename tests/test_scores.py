"""The scoring engine (predrnn_tf/evaluation/scores.py) equals pysteps.verification to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

from predrnn_tf.evaluation import scores

THRESHOLDS = (0.5, 1.0, 5.0)
WINDOWS = (1, 4, 5, 16)


def smooth_rain(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth rain-rate field in mm/h: box-smoothed log-normal noise, dry below 0.3."""
    noise = rng.normal(0.0, 1.0, shape)
    smooth = scores.box_mean(scores.box_mean(noise, 7), 5) * 7.0
    rate = np.exp(smooth + rng.normal(0.0, 0.2, shape))
    return np.where(rate < 0.3, 0.0, np.round(rate, 1))  # rounded: many values on thresholds


def radar_pair(seed: int, frames: int = 3, shape=(40, 36)) -> tuple[np.ndarray, np.ndarray]:
    """Truth and forecast ``[N, H, W]`` with NaN no-data regions and values at thresholds."""
    rng = np.random.default_rng(seed)
    truth = np.stack([smooth_rain(rng, shape) for _ in range(frames)])
    forecast = np.roll(truth, 2, axis=2) * rng.lognormal(0.0, 0.2, truth.shape)
    forecast = np.round(forecast, 1)
    truth[:, :8, :6] = np.nan  # outside coverage in the truth
    forecast[1, 20:, 30:] = np.nan  # a broken forecast region
    for threshold in THRESHOLDS:  # exact threshold values in both fields
        truth[:, 10 + int(threshold), 10:14] = threshold
        forecast[:, 12 + int(threshold), 8:16] = threshold
    return truth, forecast


def test_the_fields_hit_the_thresholds_exactly():
    truth, forecast = radar_pair(0)
    for threshold in THRESHOLDS:
        assert np.sum(truth == threshold) >= 12 and np.sum(forecast == threshold) >= 24


def test_contingency_scores_equal_det_cat_fct():
    detcat = pytest.importorskip("pysteps.verification.detcatscores")
    truth, forecast = radar_pair(1)
    mask = np.isfinite(truth) & np.isfinite(forecast)
    for threshold in THRESHOLDS:
        table = scores.contingency_table(truth, forecast, threshold)
        ours = scores.categorical_scores(table)
        reference = detcat.det_cat_fct(forecast[mask], truth[mask], threshold,
                                       scores=["CSI", "POD", "FAR", "ETS", "HSS", "BIAS"])
        for name in scores.CATEGORICAL_SCORES:
            np.testing.assert_allclose(ours[name], reference[name.upper()], atol=1e-6,
                                       err_msg=f"{name} at {threshold}")
        state = detcat.det_cat_fct_init(threshold)
        detcat.det_cat_fct_accum(state, forecast[mask], truth[mask])
        assert table.tolist() == [state[name] for name in scores.COUNT_NAMES]


def test_the_threshold_edge_follows_pysteps():
    detcat = pytest.importorskip("pysteps.verification.detcatscores")
    spatial = pytest.importorskip("pysteps.verification.spatialscores")
    truth = np.array([[1.0, 1.0, 0.0], [2.0, 0.0, 1.0]])
    forecast = np.array([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    table = scores.contingency_table(truth, forecast, 1.0)
    assert table.tolist() == [1, 0, 0, 5]  # value == 1 is no event (det_cat_fct: >)
    state = detcat.det_cat_fct_init(1.0)
    detcat.det_cat_fct_accum(state, forecast, truth)
    assert table.tolist() == [state[name] for name in scores.COUNT_NAMES]
    sums = scores.fss_sums(truth, forecast, 1.0, 1)
    assert sums.tolist() == [4.0, 4.0, 2.0]  # value == 1 is an event (fss: >=)
    np.testing.assert_allclose(scores.fss_score(sums), spatial.fss(forecast, truth, 1.0, 1),
                               atol=1e-12)


def test_fss_equals_pysteps_pooled_over_frames():
    spatial = pytest.importorskip("pysteps.verification.spatialscores")
    truth, forecast = radar_pair(2)
    # The engine drops a pixel invalid in either field from both (a joint mask); pysteps
    # drops each field's own NaN: give it both fields with the joint mask as NaN.
    joint = np.isfinite(truth) & np.isfinite(forecast)
    truth_nan, forecast_nan = np.where(joint, truth, np.nan), np.where(joint, forecast, np.nan)
    for threshold in THRESHOLDS:
        for size in WINDOWS:
            state = spatial.fss_init(threshold, size)
            pooled = np.zeros(3)
            for frame_truth, frame_forecast in zip(truth_nan, forecast_nan, strict=True):
                spatial.fss_accum(state, frame_forecast, frame_truth)
                pooled += scores.fss_sums(frame_truth, frame_forecast, threshold, size)
            np.testing.assert_allclose(scores.fss_score(pooled), spatial.fss_compute(state),
                                       atol=1e-6, err_msg=f"{threshold} mm/h, {size} px")
            np.testing.assert_allclose(
                scores.fss_score(scores.fss_sums(truth[0], forecast[0], threshold, size)),
                spatial.fss(forecast_nan[0], truth_nan[0], threshold, size), atol=1e-6)


def test_box_mean_equals_scipy_uniform_filter_for_odd_and_even_windows():
    ndimage = pytest.importorskip("scipy.ndimage")
    field = np.random.default_rng(3).random((13, 11))
    for size in (1, 2, 3, 4, 7, 12):
        np.testing.assert_allclose(scores.box_mean(field, size),
                                   ndimage.uniform_filter(field, size, mode="constant"),
                                   atol=1e-12)


def test_accumulator_pools_counts_per_lead_and_masks_invalid_pixels():
    truth, forecast = radar_pair(4, frames=4)
    accumulator = scores.ScoreAccumulator(2, (1.0,), (1.0,), (3,), unit="mmh",
                                          window_names=("6km",))
    valid = np.ones(truth.shape, bool)
    valid[:, -5:] = False
    sequences_truth = truth.reshape(2, 2, *truth.shape[1:])  # [B, T, H, W]
    sequences_forecast = forecast.reshape(2, 2, *truth.shape[1:])  # [B, T, H, W]
    accumulator.add_sequences(sequences_truth, sequences_forecast,
                              valid.reshape(2, 2, *truth.shape[1:]))
    result = accumulator.per_lead()
    for lead in range(2):
        frames = [lead, 2 + lead]
        table = scores.contingency_table(truth[frames], forecast[frames], 1.0, valid[frames])
        assert accumulator.tables[lead, 0].tolist() == table.tolist()
        np.testing.assert_allclose(result["csi_1mmh"][lead],
                                   scores.categorical_scores(table)["csi"])
        mask = scores.valid_mask(truth[frames], forecast[frames], valid[frames])
        np.testing.assert_allclose(result["mse_mmh"][lead],
                                   np.mean((forecast[frames][mask] - truth[frames][mask]) ** 2))
    assert set(result) >= {"fss_1mmh_6km", "bias_1mmh", "ets_1mmh"}
    changed = forecast.copy()
    changed[:, -5:] = 1e3  # a wild forecast where the mask says no data changes nothing
    other = scores.ScoreAccumulator(2, (1.0,), (), (), unit="mmh")
    other.add_sequences(sequences_truth, changed.reshape(sequences_truth.shape),
                        valid.reshape(sequences_truth.shape))
    np.testing.assert_array_equal(other.tables, accumulator.tables)


def test_undefined_scores_are_nan_and_perfect_scores_are_one():
    empty = scores.categorical_scores([0, 0, 0, 10])
    assert all(np.isnan(empty[name]) for name in ("csi", "pod", "far", "ets", "bias"))
    truth, _ = radar_pair(5)
    perfect = scores.categorical_scores(scores.contingency_table(truth, truth, 1.0))
    assert perfect["csi"] == 1.0 and perfect["far"] == 0.0 and perfect["bias"] == 1.0
    assert np.isnan(scores.fss_score([0.0, 0.0, 0.0]))
    assert scores.fss_score(scores.fss_sums(truth[0], truth[0], 1.0, 5)) == pytest.approx(1.0)


def test_contingency_table_and_scores_by_hand():
    # At 30 dBZ (event: > 30): the forecast 30 under an observed 35 is a miss.
    truth = np.array([35, 40, 10, 31, 0, 5, 20, 29], np.float64).reshape(2, 4)
    forecast = np.array([30, 45, 33, 12, 0, 5, 20, 29], np.float64).reshape(2, 4)
    table = scores.contingency_table(truth, forecast, 30.0)
    assert table.tolist() == [1, 2, 1, 4]
    assert scores.contingency_table(truth, forecast, 50.0).tolist() == [0, 0, 0, 8]
    result = scores.categorical_scores(table)
    np.testing.assert_allclose(result["csi"], 0.25)
    np.testing.assert_allclose(result["pod"], 1 / 3)
    np.testing.assert_allclose(result["far"], 0.5)
    np.testing.assert_allclose(result["bias"], 2 / 3)
    np.testing.assert_allclose(result["hss"], 2 * (1 * 4 - 2 * 1) / (3 * 6 + 2 * 5))
    valid = np.array([[True, False, True, True], [True] * 4])
    assert scores.contingency_table(truth, forecast, 30.0, valid).tolist() == [0, 2, 1, 4]
