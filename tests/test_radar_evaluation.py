"""The radar scores of evaluation/radar_evaluation.py agree with pysteps.verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.evaluation import probabilistic, radar_evaluation, scores


def rain_fields(seed: int, shape=(3, 2, 24, 24, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Truth and forecast [0, 1] pixels of a dBR dataset, truth with a no-data corner."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(0.6, 3.0, shape) * (rng.random(shape) < 0.6)
    forecast = np.clip(truth * rng.lognormal(0.0, 0.6, shape) + rng.normal(0, 0.5, shape), 0,
                       None)
    truth01 = units.rain_rate_to_pixels(truth) / 255.0
    truth01[:, :, :6, :5] = units.NO_DATA_PIXEL / 255.0
    return truth01, units.rain_rate_to_unit_pixels(forecast)


def metadata() -> dict:
    return {"name": "test", "value_mapping": units.rain_rate_mapping(), "grid": {"pixel_km": 2.0}}


def test_scores_agree_with_pysteps_to_1e6():
    verification = pytest.importorskip("pysteps.verification")
    truth01, forecast01 = rain_fields(0)
    scorer = radar_evaluation.RadarScores(2, metadata())
    scorer.update(truth01, forecast01)
    result = scorer.per_lead()
    valid = units.valid_pixels(truth01, metadata())
    truth = units.pixels_to_rain_rate(truth01, metadata())
    forecast = units.pixels_to_rain_rate(forecast01, metadata())
    checked = 0
    for lead in range(2):
        mask = valid[:, lead, ..., 0]
        obs, pred = truth[:, lead, ..., 0], forecast[:, lead, ..., 0]
        for threshold in radar_evaluation.RAIN_THRESHOLDS:
            reference = verification.det_cat_fct(pred[mask], obs[mask], threshold,
                                                 scores=["CSI", "POD", "FAR", "ETS", "HSS",
                                                         "BIAS"])
            for name in scores.CATEGORICAL_SCORES:
                ours = result[f"{name}_{threshold:g}mmh"][lead]
                np.testing.assert_allclose(ours, reference[name.upper()], atol=1e-6)
                checked += 1
        for threshold in radar_evaluation.FSS_THRESHOLDS:
            for scale_km in radar_evaluation.FSS_SCALES_KM:
                size = radar_evaluation.window_pixels(scale_km, 2.0)
                state = verification.spatialscores.fss_init(threshold, size)
                for sample in range(obs.shape[0]):
                    verification.spatialscores.fss_accum(
                        state, np.where(mask[sample], pred[sample], np.nan),
                        np.where(mask[sample], obs[sample], np.nan))
                reference = verification.spatialscores.fss_compute(state)
                ours = result[f"fss_{threshold:g}mmh_{scale_km:g}km"]
                np.testing.assert_allclose(ours[lead], reference, atol=1e-6)
                checked += 1
        squared = np.mean((pred[mask] - obs[mask]) ** 2)
        np.testing.assert_allclose(result["mse_mmh"][lead], squared, rtol=1e-9)
    assert checked == 2 * (4 * 6 + 2 * 3)


def test_no_data_pixels_are_ignored():
    truth01, forecast01 = rain_fields(1)
    scorer = radar_evaluation.RadarScores(2, metadata())
    scorer.update(truth01, forecast01)
    changed = forecast01.copy()
    changed[:, :, :6, :5] = 1.0  # a wild forecast where the truth has no data
    other = radar_evaluation.RadarScores(2, metadata())
    other.update(truth01, changed)
    for name, values in scorer.per_lead().items():
        np.testing.assert_array_equal(values, other.per_lead()[name], err_msg=name)


def test_perfect_forecast_scores():
    truth01, _ = rain_fields(2)
    scorer = radar_evaluation.RadarScores(2, metadata())
    scorer.update(truth01, truth01)
    result = scorer.result()["metrics"]
    assert result["mse_mmh"] == 0.0 and result["csi_1mmh"] == 1.0
    assert result["far_1mmh"] == 0.0 and result["fss_1mmh_4km"] == pytest.approx(1.0)


def test_threshold_outside_the_data_range_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^--thresholds: threshold 500 mm/h is outside"):
        radar_evaluation.RadarScores(2, metadata(), thresholds=(1.0, 500.0))
    with pytest.raises(ValueError, match="does not store rain rate"):
        radar_evaluation.RadarScores(2, {"name": "x", "value_mapping": units.hko7_mapping()})


def test_a_baseline_failing_on_a_sequence_is_named_and_the_run_goes_on(tmp_path):
    truth01, _ = rain_fields(3, shape=(3, 4, 24, 24, 1))  # [B, T = 2 inputs + 2 leads, ...]
    truth01[1, :2] = units.NO_DATA_PIXEL / 255.0  # inputs of sequence 1: no data at all

    def sprog_like(inputs):
        if np.any(np.all(np.round(np.asarray(inputs) * 255) == 0, axis=(1, 2, 3, 4))):
            raise ValueError("x contains non-finite values")
        return np.repeat(inputs[:, -1:], 2, axis=1)

    forecasters = {"model": lambda inputs: np.repeat(inputs[:, -1:], 2, axis=1),
                   "sprog": sprog_like}
    content = radar_evaluation.evaluate_forecasters(
        forecasters, [truth01], metadata(), str(tmp_path), 2, 2, save_predictions=True)
    assert content["forecasters"]["model"]["num_sequences"] == 3
    assert content["forecasters"]["sprog"]["num_sequences"] == 2
    assert content["failures"]["sprog"]["failed_sequences"] == 1
    assert list(content["failures"]["sprog"]["errors"]) == [
        "ValueError: x contains non-finite values"]
    saved = np.load(tmp_path / "predictions.npz")
    assert np.isnan(saved["sprog"][1]).all() and np.isfinite(saved["sprog"][[0, 2]]).all()


def _write_whole_composite_archive(folder) -> np.ndarray:
    """An npy archive: a 20 x 28 composite (2 km), no data outside rows 2-17 x columns 3-25,
    a rain cell moving right; returns the fields ``[8, 20, 28]`` in mm/h."""
    rows, cols = np.mgrid[0:20, 0:28]
    fields = []
    for step in range(8):
        rate = 12.0 * np.exp(-((rows - 9) ** 2 + (cols - 6 - 2 * step) ** 2) / 18.0)
        rate[np.abs(cols - 20 + step) < 2] += 2.0  # a line moving left
        rate[:2], rate[18:], rate[:, :3], rate[:, 26:] = np.nan, np.nan, np.nan, np.nan
        np.save(folder / f"rate_20200101{step // 6:02d}{step % 6}0.npy", rate)
        fields.append(rate)
    return np.stack(fields)


def test_whole_composite_scores_equal_pysteps(tmp_path):
    """Whole test frames are scored whole (every valid pixel) and equal pysteps' functions."""
    verification = pytest.importorskip("pysteps.verification")
    import datetime

    from predrnn_tf.config import Config
    from predrnn_tf.data.converters import radar_conversion
    from predrnn_tf.evaluation import run

    (tmp_path / "npy").mkdir()
    fields = _write_whole_composite_archive(tmp_path / "npy")
    data_dir = str(tmp_path / "data")
    radar_conversion.convert_radar(radar_conversion.RadarOptions(
        input_glob=str(tmp_path / "npy" / "*.npy"), output_dir=data_dir, name="whole",
        filename_pattern="rate_%Y%m%d%H%M", importer="npy", importer_kwargs='{"unit": "mm/h"}',
        timestep_minutes=10, image_size=8, total_length=5, storage="rain_rate",
        source_pixel_km=2.0, test_after=datetime.datetime(2020, 1, 1, 0, 20),
        whole_test_frames=True, whole_frame_multiple=4))
    config = Config(input_length=3, total_length=5, data_dir=data_dir, dataset_name="whole",
                    img_width=8, batch_size=2)
    options = run.EvaluateOptions(output_dir=str(tmp_path / "eval"), save_predictions=True,
                                  baselines=("persistence", "extrapolation"))
    result = run.evaluate(config, None, options)
    saved = np.load(tmp_path / "eval" / "predictions.npz")
    assert saved["truth"].shape == saved["extrapolation"].shape == (2, 2, 16, 24, 1)
    mapping = {"value_mapping": units.rain_rate_mapping()}
    valid = units.valid_pixels(saved["truth"], mapping)[..., 0]
    assert valid[0, 0].sum() == np.isfinite(fields[3]).sum() == 16 * 23  # every valid pixel
    truth = units.pixels_to_rain_rate(saved["truth"], mapping)[..., 0]
    for name in ("persistence", "extrapolation"):
        forecast = units.pixels_to_rain_rate(saved[name], mapping)[..., 0]
        per_frame = result["forecasters"][name]["per_frame"]
        for lead in range(2):
            mask = valid[:, lead]
            pred, obs = forecast[:, lead], truth[:, lead]
            for threshold in (0.5, 1.0, 5.0):
                reference = verification.det_cat_fct(pred[mask], obs[mask], threshold,
                                                     scores=["CSI", "BIAS", "ETS"])
                for score in ("CSI", "BIAS", "ETS"):
                    np.testing.assert_allclose(
                        per_frame[f"{score.lower()}_{threshold:g}mmh"][lead], reference[score],
                        atol=1e-6)
            state = verification.spatialscores.fss_init(1.0, 2)
            for sample in range(2):
                verification.spatialscores.fss_accum(
                    state, np.where(mask[sample], pred[sample], np.nan),
                    np.where(mask[sample], obs[sample], np.nan))
            np.testing.assert_allclose(per_frame["fss_1mmh_4km"][lead],
                                       verification.spatialscores.fss_compute(state), atol=1e-6)
    assert np.any(saved["extrapolation"] != saved["persistence"])  # it advected the field


class ThreeMembers:
    """An ensemble forecaster: persistence scaled by 0.9, 1 and 1.1 (in [0, 1] pixels)."""

    num_members = 3

    def members(self, inputs):
        last = np.repeat(np.asarray(inputs)[:, -1:], 2, axis=1)  # [B, 2, H, W, 1]
        return np.stack([np.clip(last * factor, 0, 1) for factor in (0.9, 1.0, 1.1)], axis=1)

    def __call__(self, inputs):
        raise AssertionError("an ensemble is scored by its members")


def test_ensembles_are_scored_by_their_members_and_their_median(tmp_path):
    truth01, _ = rain_fields(4, shape=(3, 4, 24, 24, 1))  # 2 inputs + 2 leads
    forecasters = {"model": lambda inputs: np.repeat(inputs[:, -1:], 2, axis=1),
                   "three": ThreeMembers()}
    content = radar_evaluation.evaluate_forecasters(
        forecasters, [truth01], metadata(), str(tmp_path), 2, 2, ensemble=True)
    model, three = content["forecasters"]["model"], content["forecasters"]["three"]
    # a deterministic forecaster is a one-member ensemble: its CRPS is its MAE
    np.testing.assert_allclose(model["per_frame"]["crps_mmh"], model["per_frame"]["mae_mmh"],
                               rtol=1e-9)
    assert model["ensemble"]["members"] == 1 and three["ensemble"]["members"] == 3
    # the median of the members (the factor-1 member) gets the contingency scores
    for name in ("csi_1mmh", "mse_mmh", "fss_1mmh_16km"):
        np.testing.assert_allclose(three["per_frame"][name], model["per_frame"][name],
                                   atol=1e-9, err_msg=name)
    mapping = metadata()
    valid = units.valid_pixels(truth01[:, 2:], mapping)[..., 0]  # [B, T, H, W]
    truth = units.pixels_to_rain_rate(truth01[:, 2:], mapping)[..., 0]
    members = units.pixels_to_rain_rate(ThreeMembers().members(truth01[:, :2]), mapping)[..., 0]
    for lead in range(2):
        mask = valid[:, lead]
        expected = probabilistic.crps_values(truth[:, lead][mask],
                                             members[:, :, lead].transpose(1, 0, 2, 3)[:, mask])
        np.testing.assert_allclose(three["per_frame"]["crps_mmh"][lead], expected.mean(),
                                   rtol=1e-6)
    assert np.shape(three["ensemble"]["rank_histogram"]) == (2, 4)
    assert 0.5 < three["per_frame"]["roc_area_1mmh"][0] <= 1.0
    with open(tmp_path / "metrics.json") as handle:
        assert json.load(handle)["forecasters"]["three"]["metrics"]["crps_mmh"] > 0
    assert "| three | crps_mmh |" in (tmp_path / "metrics_table.md").read_text()


@pytest.mark.parametrize("ensemble", [False, True])
def test_a_baseline_failing_on_a_whole_batch_of_one_is_left_out(tmp_path, ensemble):
    truth01 = rain_fields(5, shape=(2, 4, 24, 24, 1))[0].astype(np.float32)

    def fails_on_the_second(inputs):
        if np.array_equal(np.asarray(inputs)[0], truth01[1, :2]):
            raise ValueError("x contains non-finite values")
        return np.repeat(inputs[:, -1:], 2, axis=1)

    batches = [truth01[:1], truth01[1:]]  # batch size 1, as on whole composites
    content = radar_evaluation.evaluate_forecasters(
        {"sprog": fails_on_the_second}, batches, metadata(), str(tmp_path), 2, 2,
        save_predictions=True, ensemble=ensemble)
    assert content["forecasters"]["sprog"]["num_sequences"] == 1
    assert content["failures"]["sprog"]["failed_sequences"] == 1
    assert np.isnan(np.load(tmp_path / "predictions.npz")["sprog"][1]).all()


def test_probability_matching_blend_and_strength_are_checked_in_one_line():
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.evaluation import run

    options = run.EvaluateOptions(output_dir="unused", probability_matching="extrapolation",
                                  probability_matching_blend=0.7,
                                  probability_matching_strength=1.0)
    assert run.pm_blend(options) == (0.7, 1.0)
    assert run.pm_blend(run.EvaluateOptions(output_dir="unused")) == (0.5, 0.85)
    wrong = run.EvaluateOptions(output_dir="unused", probability_matching_strength=1.5)
    with pytest.raises(ConfigError, match=r"^--probability_matching_strength must be in "
                                          r"\[0, 1\], got 1.5$"):
        run.pm_blend(wrong)


class CountedMembers(ThreeMembers):
    """ThreeMembers, but each member a different blur of the last input (counts its calls)."""

    calls = 0

    def members(self, inputs):
        self.calls += 1
        last = np.asarray(inputs, np.float32)[:, -1:]  # [B, 1, H, W, 1]
        shifted = [np.roll(last, shift, axis=3) for shift in (0, 2, 5)]
        return np.stack([np.repeat(0.3 + 0.4 * field, 2, axis=1) for field in shifted], axis=1)


def test_each_member_is_probability_matched_like_a_forecast_of_its_own(tmp_path):
    from predrnn_tf.evaluation import run
    from predrnn_tf.models import probability_matching

    truth01 = rain_fields(6, shape=(2, 4, 24, 24, 1))[0].astype(np.float32)
    inputs = truth01[:, :2]
    ensemble = CountedMembers()
    raw = ensemble.members(inputs)  # [B, 3, T, H, W, 1]
    last_members = run.LastMembers(ensemble)
    matched = run.ProbabilityMatchedMembers(last_members, metadata(), "last_input", 2)
    assert matched.num_members == 3
    result = matched.members(inputs)
    assert result.shape == raw.shape
    for member in range(3):
        np.testing.assert_array_equal(
            result[:, member], probability_matching.match_forecast(inputs, raw[:, member],
                                                                   metadata()))
    assert not np.allclose(result[:, 0], result[:, 2])  # the members keep their differences
    np.testing.assert_array_equal(last_members.members(inputs), raw)
    assert ensemble.calls == 2  # one draw above, one for both scored ensembles
    # extrapolation: every member blended with its sequence's one extrapolation nowcast
    rates = units.pixels_to_rain_rate(np.repeat(inputs[:, -1:], 2, axis=1), metadata())
    matched.method, matched.extrapolate = "extrapolation", lambda _: rates
    blended = matched.members(inputs)
    for member in range(3):
        np.testing.assert_allclose(blended[:, member], probability_matching.match_to_extrapolation(
            inputs, raw[:, member], rates, metadata()), atol=1e-7)
    matched.method = "pooled"  # each member matched to all the members' pool per lead
    np.testing.assert_array_equal(matched.members(inputs),
                                  probability_matching.match_members_to_pool(inputs, raw,
                                                                             metadata()))
    content = radar_evaluation.evaluate_forecasters(
        {"model_ensemble": last_members, "model_ensemble_pm": matched}, [truth01], metadata(),
        str(tmp_path), 2, 2, ensemble=True)
    assert content["forecasters"]["model_ensemble_pm"]["ensemble"]["members"] == 3


def test_every_kth_sequence_keeps_the_given_batch_size():
    import tensorflow as tf

    sequences = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1, 1, 1)  # [N, T, H, W, C]
    dataset = tf.data.Dataset.from_tensor_slices(sequences).batch(1)  # whole composites: 1
    batches = [batch.numpy() for batch in radar_evaluation.every_kth(dataset, 3, 1)]
    assert [batch.shape[0] for batch in batches] == [1, 1, 1, 1]
    assert [float(batch.reshape(-1)[0]) for batch in batches] == [0.0, 3.0, 6.0, 9.0]
    assert [b.shape[0] for b in radar_evaluation.every_kth(dataset, 3, 8)] == [4]
    assert radar_evaluation.every_kth(dataset, 1, 8) is dataset
