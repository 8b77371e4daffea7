"""Motion-perturbation ensembles of a radar model (models/ensemble.py) on a tiny model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.models import ensemble
from predrnn_tf.models.forecasting import clipped_forecast
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.models.radar_head import RadarHead

SIZE = 32
NO_PERTURBATION = (0.0, 1.0, 0.0)
GRID = {"pixel_km": 2.0, "interval_minutes": 10.0}


def tiny_model(advection_prior: bool = True) -> PredRNN:
    """A built two-layer PredRNN-V2 with the radar head and random output weights."""
    keras.utils.set_random_seed(0)
    model = PredRNN("predrnn_v2", num_hidden=(8, 8), filter_size=3, patch_size=2,
                    input_length=3, total_length=7,
                    output_head=RadarHead(advection_prior=advection_prior,
                                          dry_below=1.5 / 255.0, zero_mean_change=True))
    model.build((None, 7, SIZE, SIZE, 1))
    kernel = model.output_conv.kernel
    kernel.assign(0.01 * np.random.default_rng(0).normal(size=kernel.shape))
    return model


def moving_blobs(batch: int = 2) -> np.ndarray:
    """``[B, 3, H, W, 1]`` [0, 1] frames: a smooth blob moving 2 pixels per step (b: down)."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    sequences = []
    for index in range(batch):
        frames = [0.8 * np.exp(-((rows - 14 - 2 * step * index) ** 2
                                 + (columns - 10 - 2 * step) ** 2) / 20.0)
                  for step in range(3)]
        sequences.append(np.stack(frames))
    return np.stack(sequences)[..., None].astype(np.float32)


def test_members_without_perturbation_are_the_model_forecast_batch_by_batch():
    model = tiny_model()
    inputs = moving_blobs()
    members = ensemble.MotionEnsemble(model, 3, parallel=NO_PERTURBATION,
                                      perpendicular=NO_PERTURBATION, **GRID)(inputs)
    assert members.shape == (2, 3, 4, SIZE, SIZE, 1)
    expected = clipped_forecast(model, tf.constant(inputs)).numpy()  # [B, T, H, W, 1]
    for member in range(3):
        np.testing.assert_allclose(members[:, member], expected, atol=1e-5)


def test_perturbed_members_differ_more_at_later_leads():
    model = tiny_model()
    members = ensemble.MotionEnsemble(model, 8, seed=1, **GRID)(moving_blobs()).numpy()
    spread = members.std(axis=1).mean(axis=(0, 2, 3, 4))  # [T]
    assert spread[0] > 1e-3
    assert np.all(np.diff(spread) > 0), spread
    assert 0.0 <= members.min() and members.max() <= 1.0


def test_members_are_reproducible_with_a_seed():
    model = tiny_model()
    first = ensemble.MotionEnsemble(model, 3, seed=4, **GRID)(moving_blobs())
    again = ensemble.MotionEnsemble(model, 3, seed=4, **GRID)(moving_blobs())
    np.testing.assert_allclose(first, again, atol=1e-6)


def test_the_perturbation_follows_bps_along_and_across_the_motion():
    motion = tf.constant(np.broadcast_to([0.0, 3.0], (1, 4, 4, 2)), tf.float32)  # dx = 3
    epsilon = tf.constant([[0.5, -2.0]])
    perturbation = ensemble.motion_perturbation(motion, epsilon, 3, 2.0, 10.0).numpy()
    scale = 60.0 * 2.0 / 10.0  # km/h per (pixel per 10-minute step) at 2 km
    along = (10.88 * 30.0 ** 0.23 - 7.68) * 0.5 / scale
    across = (5.76 * 30.0 ** 0.31 - 2.72) * -2.0 / scale
    # across the motion: pysteps' V_perp = (-v, u) in (x, y), here (dx, -dy) in (dy, dx)
    np.testing.assert_allclose(perturbation[0, 2, 2], [across, along], rtol=1e-5)
    still = ensemble.motion_perturbation(tf.zeros([1, 4, 4, 2]), epsilon, 3, 2.0, 10.0)
    assert np.all(still.numpy() == 0.0)


def test_laplace_draws_have_unit_variance():
    draws = ensemble.laplace_draws([20000, 2], keras.random.SeedGenerator(0)).numpy()
    assert abs(draws.mean()) < 0.05 and draws.var() == pytest.approx(1.0, abs=0.08)


def test_config_round_trips_and_a_model_without_advection_is_refused():
    wrapper = ensemble.MotionEnsemble(tiny_model(), 5, seed=2, **GRID)
    config = wrapper.get_config()
    again = ensemble.MotionEnsemble.from_config(config)
    assert again.get_config() == config and again.num_members == 5
    head = wrapper.member_head
    assert ensemble.PerturbedMotionHead.from_config(head.get_config()).get_config() == \
        head.get_config()
    with pytest.raises(ValueError, match="advection_prior"):
        ensemble.MotionEnsemble(tiny_model(advection_prior=False), 2, **GRID)


def test_exceedance_probabilities_count_members_in_mm_per_hour():
    metadata = {"value_mapping": units.rain_rate_mapping()}
    rng = np.random.default_rng(0)
    members = rng.uniform(0.0, 0.6, (2, 5, 3, 8, 8, 1)).astype(np.float32)
    probabilities = ensemble.exceedance_probabilities(members, (1.0, 5.0), metadata).numpy()
    rates = units.pixels_to_rain_rate(members, metadata)
    for index, threshold in enumerate((1.0, 5.0)):
        np.testing.assert_allclose(probabilities[:, index],
                                   np.mean(rates >= threshold, axis=1), atol=1e-6)
    assert 0.05 < probabilities[:, 1].mean() < probabilities[:, 0].mean() < 0.95


def test_the_compiled_member_forecaster_equals_the_eager_ensemble():
    model, inputs = tiny_model(), moving_blobs()
    eager = ensemble.MotionEnsemble(model, 3, seed=4, **GRID)(inputs).numpy()
    compiled = ensemble.MemberForecaster(ensemble.MotionEnsemble(model, 3, seed=4, **GRID), 4)
    members = compiled.members(inputs)
    assert members.shape == (2, 3, 4, SIZE, SIZE, 1) and compiled.num_members == 3
    np.testing.assert_allclose(members, eager, atol=1e-5)
    assert not np.allclose(compiled.members(inputs), members)  # new draws on every call


def test_predrnn_evaluate_scores_the_model_ensemble_beside_the_model(tmp_path):
    from predrnn_tf.evaluation import run

    metadata = {"name": "blobs", "value_mapping": units.rain_rate_mapping(), "grid": GRID}
    frames = np.concatenate([moving_blobs(), moving_blobs()[:, ::-1], moving_blobs()[:, :1]],
                            axis=1)  # [B, 7, H, W, 1]
    frames = np.clip(0.05 + frames, 0, 1)  # valid pixels (pixel 0 is no data)
    options = run.EvaluateOptions(output_dir=str(tmp_path), ensemble_size=3,
                                  baselines=("persistence",))
    info = {"workdir": None, "checkpoint": None}
    result = run._evaluate_rain_rate(tiny_model(), [frames], metadata, 3, 4, options, info, 1)
    forecasters = result["forecasters"]
    assert list(forecasters) == ["model", "model_ensemble", "persistence"]
    assert forecasters["model_ensemble"]["ensemble"]["members"] == 3
    assert np.shape(forecasters["model_ensemble"]["ensemble"]["rank_histogram"]) == (4, 4)
    for name in ("model", "persistence"):  # one-member ensembles
        assert forecasters[name]["ensemble"]["members"] == 1
        np.testing.assert_allclose(forecasters[name]["per_frame"]["crps_mmh"],
                                   forecasters[name]["per_frame"]["mae_mmh"], rtol=1e-6)
    spread = forecasters["model_ensemble"]["per_frame"]["spread_mmh"]
    assert spread[-1] > 0


def test_the_ensemble_seed_draws_other_members_and_steps_another_seed(tmp_path):
    from predrnn_tf.evaluation import baselines, run
    from predrnn_tf.evaluation.pysteps_settings import STEPS_DEFAULT_SEED

    metadata = {"name": "blobs", "value_mapping": units.rain_rate_mapping(), "grid": GRID}
    inputs = np.clip(0.05 + moving_blobs(), 0, 1)
    usual = run.model_ensemble(tiny_model(), 3, metadata, 4)
    again = run.model_ensemble(tiny_model(), 3, metadata, 4, seed=0)
    other = run.model_ensemble(tiny_model(), 3, metadata, 4, seed=1)
    np.testing.assert_array_equal(usual.members(inputs), again.members(inputs))
    assert not np.allclose(usual.members(inputs), other.members(inputs))
    pytest.importorskip("pysteps")
    for ensemble_seed in (0, 5):
        steps = baselines.make_baseline("steps", 4, metadata, 3, ensemble_seed=ensemble_seed)
        assert steps.seed == STEPS_DEFAULT_SEED + ensemble_seed


def test_the_trainers_perturbable_model_is_the_model_until_asked_to_perturb():
    model = tiny_model()
    perturbable = ensemble.perturbable_model(model, frames_shape=(None, 7, SIZE, SIZE, 1),
                                             **GRID)
    assert perturbable.name == model.name and not any(
        "seed" in weight.path for weight in perturbable.weights)  # no variable of its own
    inputs = moving_blobs()
    frames = tf.constant(np.concatenate([inputs, np.repeat(inputs[:, -1:], 4, axis=1)], 1))
    mask = tf.zeros([2, 5, SIZE // 2, SIZE // 2, 4])  # reverse scheduled sampling: all fed back
    expected, _ = model(frames, mask)
    plain, _ = perturbable(frames, mask)
    np.testing.assert_allclose(plain, expected, atol=1e-6)
    tiled = tf.repeat(frames, 2, axis=0)  # [B*2, T, H, W, C], each sequence twice in a row
    draws = tf.constant([[1.0, -1.0], [-1.0, 0.5], [0.5, 1.0], [-2.0, 0.0]])
    with perturbable.output_head.perturbing(draws, 2):
        members, _ = perturbable(tiled, tf.repeat(mask, 2, axis=0))
    members = members.numpy().reshape(2, 2, 6, SIZE, SIZE, 1)  # [B, M, T-1, H, W, C]
    inputs_part = 1  # predictions of frames 2..3 are input steps; the forecast starts after
    np.testing.assert_allclose(members[:, :, :inputs_part + 1],
                               np.repeat(expected[:, None, :inputs_part + 1], 2, 1), atol=1e-6)
    assert np.all(np.abs(members[:, 0, -1] - members[:, 1, -1]).max(axis=(1, 2, 3)) > 1e-3)
    with perturbable.output_head.perturbing(tf.zeros([4, 2]), 2):
        still, _ = perturbable(tiled, tf.repeat(mask, 2, axis=0))
    np.testing.assert_allclose(still, tf.repeat(expected, 2, axis=0), atol=1e-5)
    plain_again, _ = perturbable(frames, mask)  # outside the context: the model again
    np.testing.assert_allclose(plain_again, expected, atol=1e-6)


def test_without_state_noise_the_members_are_those_of_an_unroll_without_the_hook(monkeypatch):
    model, inputs = tiny_model(), moving_blobs()
    off = ensemble.MotionEnsemble(model, 3, seed=4, state_noise_std=0.0, **GRID)(inputs)
    monkeypatch.setattr(ensemble.PerturbableMotionHead, "perturb_state", None)  # no hook
    without_hook = ensemble.MotionEnsemble(model, 3, seed=4, **GRID)(inputs)
    np.testing.assert_array_equal(off.numpy(), without_hook.numpy())


def test_state_noise_makes_the_members_differ_at_lead_1_without_new_variables():
    model, inputs = tiny_model(), moving_blobs()
    weights = [weight.numpy().copy() for weight in model.weights]
    still = {"parallel": NO_PERTURBATION, "perpendicular": NO_PERTURBATION, **GRID}
    quiet = ensemble.MotionEnsemble(model, 3, seed=4, **still)
    noisy = ensemble.MotionEnsemble(model, 3, seed=4, state_noise_std=1.0, **still)
    quiet_members, noisy_members = quiet(inputs).numpy(), noisy(inputs).numpy()
    np.testing.assert_allclose(quiet_members[:, 0], quiet_members[:, 1], atol=1e-6)
    assert np.abs(noisy_members[:, 0, 0] - noisy_members[:, 1, 0]).max() > 1e-3  # lead 1
    assert len(noisy.members.weights) == len(quiet.members.weights)
    for weight, before in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(weight.numpy(), before)
    again = ensemble.MotionEnsemble.from_config(noisy.get_config())
    assert again.member_head.state_noise_std == 1.0 == noisy.get_config()["state_noise_std"]


def test_the_trainers_state_noise_is_drawn_from_the_given_seed():
    model = tiny_model()
    perturbable = ensemble.perturbable_model(model, frames_shape=(None, 7, SIZE, SIZE, 1),
                                             state_noise_std=1.0, **GRID)
    inputs = moving_blobs()
    frames = tf.repeat(tf.constant(np.concatenate(
        [inputs, np.repeat(inputs[:, -1:], 4, axis=1)], 1)), 2, axis=0)  # [B*2, T, H, W, C]
    mask = tf.zeros([4, 5, SIZE // 2, SIZE // 2, 4])

    def members(seed):
        with perturbable.output_head.perturbing(tf.zeros([4, 2]), 2, tf.constant(seed)):
            return perturbable(frames, mask)[0].numpy().reshape(2, 2, 6, SIZE, SIZE, 1)

    first, again, other = members([0, 1]), members([0, 1]), members([0, 2])
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[:, 0, :2], first[:, 1, :2])  # input steps: no noise
    assert np.abs(first[:, 0, 2] - first[:, 1, 2]).max() > 1e-3  # the first forecast frame
    assert np.abs(first - other).max() > 1e-3
