"""Probabilistic verification (evaluation/probabilistic.py) equals pysteps to 1e-6."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from predrnn_tf.evaluation import probabilistic, scores

THRESHOLDS = (1.0, 5.0)


def pysteps_verification():
    """pysteps' probscores, ensscores and excprob (the test skips without pysteps)."""
    pytest.importorskip("pysteps")
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.postprocessing.ensemblestats import excprob
        from pysteps.verification import ensscores, probscores
    return probscores, ensscores, excprob


def smooth_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth log-normal rain in mm/h (box-smoothed noise), no exact zeros."""
    smooth = scores.box_mean(scores.box_mean(rng.normal(0.0, 1.0, shape), 7), 5) * 7.0
    return np.exp(smooth + rng.normal(0.0, 0.2, shape))


def ensemble_case(seed: int, members: int = 6, shape=(36, 32), dry: bool = False):
    """Truth ``[H, W]`` and members ``[N, H, W]`` with NaN regions (dry: zeros below 0.3)."""
    rng = np.random.default_rng(seed)
    truth = smooth_field(rng, shape)
    forecast = np.stack([np.roll(truth, rng.integers(-3, 4), axis=1)
                         * rng.lognormal(0.0, 0.3, shape) for _ in range(members)])
    if dry:
        truth, forecast = (np.where(field < 0.3, 0.0, field) for field in (truth, forecast))
    truth[:7, :5] = np.nan  # outside coverage
    forecast[members // 2, 20:, 25:] = np.nan  # one member's broken region
    return truth, forecast


def test_crps_equals_pysteps_without_ties():
    probscores, _, _ = pysteps_verification()
    accumulator = probabilistic.ProbabilisticAccumulator(1, 6)
    reference = probscores.CRPS_init()
    for seed in range(3):
        truth, members = ensemble_case(seed)
        accumulator.add(0, truth, members)
        probscores.CRPS_accum(reference, members, truth)
    ours = accumulator.per_lead()["crps_mmh"][0]
    assert ours == pytest.approx(probscores.CRPS_compute(reference), abs=1e-6)


def integrated_crps(truth: float, members: np.ndarray) -> float:
    """The CRPS integral of the members' empirical CDF, on a fine grid (reference)."""
    grid = np.linspace(min(truth, members.min()) - 1, max(truth, members.max()) + 1, 400001)
    cdf = np.mean(members[:, None] <= grid[None], axis=0)
    return float(np.sum((cdf - (grid >= truth)) ** 2) * (grid[1] - grid[0]))


def test_crps_is_exact_where_an_observation_ties_a_member():
    probscores, _, _ = pysteps_verification()
    members = np.array([0.0, 0.0, 2.0])
    ours = probabilistic.crps_values(np.array([0.0]), members[:, None])[0]
    assert ours == pytest.approx(2.0 / 9.0, abs=1e-12)
    assert ours == pytest.approx(integrated_crps(0.0, members), abs=1e-4)
    # pysteps drops the tied interval (documented difference): it gives 0 here.
    assert probscores.CRPS(members[:, None], np.array([0.0])) < ours - 0.2


def test_deterministic_forecast_crps_is_its_mae():
    truth, members = ensemble_case(4, members=1, dry=True)
    accumulator = probabilistic.ProbabilisticAccumulator(1, 1)
    accumulator.add(0, truth, members)
    deterministic = scores.ScoreAccumulator(1)
    deterministic.add(0, truth, members[0])
    crps = accumulator.per_lead()["crps_mmh"][0]
    assert crps == pytest.approx(deterministic.per_lead()["mae"][0], abs=1e-12)
    assert crps > 0.1


@pytest.mark.parametrize("rank_threshold", [None, 0.5])
def test_rank_histogram_equals_pysteps_with_ties(rank_threshold):
    _, ensscores, _ = pysteps_verification()
    accumulator = probabilistic.ProbabilisticAccumulator(1, 6, rank_threshold=rank_threshold,
                                                         seed=11)
    reference = ensscores.rankhist_init(6, rank_threshold)
    np.random.seed(11)  # pysteps breaks ties with the global RandomState
    for seed in range(3):
        truth, members = ensemble_case(seed, dry=True)
        accumulator.add(0, truth, members)
        ensscores.rankhist_accum(reference, members, truth)
    expected = ensscores.rankhist_compute(reference, normalize=False)
    np.testing.assert_array_equal(accumulator.ranks[0], expected)
    frequencies = expected / expected.sum()
    assert accumulator.per_lead()["rank_reliability_index"][0] == pytest.approx(
        np.sum(np.abs(frequencies - 1.0 / 7.0)), abs=1e-12)


def test_reliability_and_roc_equal_pysteps_on_pooled_frames():
    probscores, _, excprob = pysteps_verification()
    accumulator = probabilistic.ProbabilisticAccumulator(1, 6, thresholds=THRESHOLDS)
    cases = [ensemble_case(seed, dry=True) for seed in range(4)]
    for truth, members in cases:
        accumulator.add(0, truth, members)
    truth = np.stack([case[0] for case in cases])  # [F, H, W]
    members = np.stack([case[1] for case in cases], axis=1)  # [N, F, H, W]
    curves, per_lead = accumulator.curves(), accumulator.per_lead()
    for threshold in THRESHOLDS:
        with np.errstate(invalid="ignore"):
            probability = excprob(members, threshold)  # NaN where a member is NaN
            forecast, observed = probscores.reldiag(probability, truth, threshold)
        name = f"{threshold:g}mmh"
        np.testing.assert_allclose(curves[f"reliability_{name}"]["forecast_probability"][0],
                                   forecast, atol=1e-6)
        np.testing.assert_allclose(curves[f"reliability_{name}"]["observed_frequency"][0],
                                   observed, atol=1e-6)
        pofd, pod, area = probscores.ROC_curve(probability, truth, threshold,
                                               compute_area=True)
        np.testing.assert_allclose(curves[f"roc_{name}"]["pofd"][0], pofd, atol=1e-6)
        np.testing.assert_allclose(curves[f"roc_{name}"]["pod"][0], pod, atol=1e-6)
        assert per_lead[f"roc_area_{name}"][0] == pytest.approx(area, abs=1e-6)
        assert 0.5 < area <= 1.0


def test_ensemble_skill_and_spread_equal_pysteps_on_one_frame():
    _, ensscores, _ = pysteps_verification()
    truth, members = ensemble_case(5, dry=True)
    members[:, 20:, 25:] = np.nan  # pysteps masks per member: one region for all members
    members[:, np.isnan(truth)] = np.nan  # its spread ignores the truth; ours uses joint pixels
    accumulator = probabilistic.ProbabilisticAccumulator(1, 6)
    accumulator.add(0, truth, members)
    per_lead = accumulator.per_lead()
    assert per_lead["ensemble_skill_rmse_mmh"][0] == pytest.approx(
        ensscores.ensemble_skill(members, truth, "RMSE"), abs=1e-6)
    assert per_lead["ensemble_spread_rmse_mmh"][0] == pytest.approx(
        ensscores.ensemble_spread(members, "RMSE"), abs=1e-6)


def test_spread_skill_ratio_is_one_for_a_consistent_ensemble():
    rng = np.random.default_rng(0)
    centre = rng.normal(0.0, 3.0, (200, 100))
    truth = centre + rng.normal(0.0, 1.0, centre.shape)
    members = centre[None] + rng.normal(0.0, 1.0, (5, *centre.shape))
    accumulator = probabilistic.ProbabilisticAccumulator(1, 5)
    accumulator.add(0, truth, members)
    assert accumulator.per_lead()["spread_skill_ratio"][0] == pytest.approx(1.0, abs=0.02)
    under = probabilistic.ProbabilisticAccumulator(1, 5)
    under.add(0, truth, centre[None] + 0.3 * (members - centre[None]))
    assert under.per_lead()["spread_skill_ratio"][0] < 0.5


def test_sequences_are_pooled_lead_by_lead():
    cases = [ensemble_case(seed) for seed in range(4)]  # no ties: no random rank draws
    truth = np.stack([case[0] for case in cases]).reshape(2, 2, 36, 32)  # [B, T, H, W]
    members = np.stack([case[1] for case in cases]).reshape(2, 2, 6, 36, 32)
    members = members.transpose(0, 2, 1, 3, 4)  # [B, N, T, H, W]
    valid = np.ones(truth.shape, bool)
    valid[:, :, :, :3] = False  # the caller's no-data mask
    pooled = probabilistic.ProbabilisticAccumulator(2, 6)
    pooled.add_sequences(truth[..., None], members[..., None], valid[..., None])
    for lead in range(2):
        single = probabilistic.ProbabilisticAccumulator(1, 6)
        single.add(0, truth[:, lead], members[:, :, lead], valid[:, lead])
        for name, values in single.per_lead().items():
            np.testing.assert_allclose(pooled.per_lead()[name][lead], values[0], atol=1e-12,
                                       err_msg=name)
    masked = probabilistic.ProbabilisticAccumulator(2, 6)
    masked.add_sequences(truth, members)
    assert masked.crps[0, 1] > pooled.crps[0, 1]


def test_mismatched_members_are_refused():
    accumulator = probabilistic.ProbabilisticAccumulator(1, 3)
    truth, members = ensemble_case(0, members=4)
    with pytest.raises(ValueError, match="3 members"):
        accumulator.add(0, truth, members)
