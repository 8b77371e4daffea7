"""The STEPS baseline (evaluation/steps_baseline.py) on small synthetic rain (needs pysteps)."""

from __future__ import annotations

import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.evaluation import steps_baseline

pytest.importorskip("pysteps")

SIZE = 64


def moving_rain(frames: int = 4, step: int = 2, seed: int = 0) -> np.ndarray:
    """``[T, H, W]`` mm/h: a smooth rain band moving ``step`` pixels per frame to the right."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    texture = 1.0 + 0.2 * rng.random((SIZE, SIZE))
    fields = []
    for time in range(frames):
        centre = 20.0 + step * time
        rate = 12.0 * np.exp(-((columns - centre) ** 2 / 60.0 + (rows - 32.0) ** 2 / 200.0))
        fields.append(np.where(rate < 0.05, 0.0, rate * texture))
    return np.stack(fields)


def centroid_column(rate: np.ndarray) -> float:
    """The rain-weighted mean column of a ``[H, W]`` field."""
    return float(np.sum(rate * np.arange(SIZE)[None]) / np.sum(rate))


def test_members_have_the_shape_units_and_motion_of_a_nowcast():
    rain = moving_rain()
    rain[:, :6, :6] = np.nan  # no data in a corner, as a composite's edge
    members = steps_baseline.steps_members(rain, 3, num_members=3, pixel_km=2.0,
                                           interval_minutes=10.0, seed=1)
    assert members.shape == (3, 3, SIZE, SIZE) and members.dtype == np.float32
    assert np.all(np.isfinite(members)) and members.min() >= 0.0
    assert not np.allclose(members[0], members[1])  # stochastic members
    mean = members.mean(axis=0)  # [T, H, W]
    assert centroid_column(mean[-1]) > centroid_column(np.nan_to_num(rain[-1])) + 2.0  # moved right
    assert 1.0 < mean[0].max() < 40.0  # still mm/h of the same storm


def test_members_are_reproducible_with_a_seed():
    rain = moving_rain()
    first = steps_baseline.steps_members(rain, 2, num_members=2, seed=5)
    again = steps_baseline.steps_members(rain, 2, num_members=2, seed=5)
    other = steps_baseline.steps_members(rain, 2, num_members=2, seed=6)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_the_baseline_maps_pixels_like_the_other_baselines():
    metadata = {"value_mapping": units.rain_rate_mapping(),
                "grid": {"pixel_km": 2.0, "interval_minutes": 10.0}}
    pixels = units.rain_rate_to_pixels(moving_rain(frames=5)) / 255.0  # [T, H, W]
    inputs = pixels[None, :, :, :, None].astype(np.float32)  # [1, T, H, W, 1]
    baseline = steps_baseline.StepsNowcast(2, metadata, num_members=2, seed=3)
    members = baseline.members(inputs)
    assert members.shape == (1, 2, 2, SIZE, SIZE, 1)
    assert 0.0 <= members.min() and members.max() <= 1.0
    median = steps_baseline.StepsNowcast(2, metadata, num_members=3, seed=3)(inputs)
    rates = steps_baseline.steps_members(baseline.rain_rate(inputs[0, ..., 0]), 2, num_members=2,
                                         pixel_km=2.0, interval_minutes=10.0, seed=3)
    np.testing.assert_allclose(members[0, ..., 0], units.rain_rate_to_unit_pixels(rates),
                               atol=1e-6)
    three = steps_baseline.steps_members(baseline.rain_rate(inputs[0, ..., 0]), 2, num_members=3,
                                         pixel_km=2.0, interval_minutes=10.0, seed=3)
    np.testing.assert_allclose(median[0, ..., 0],
                               units.rain_rate_to_unit_pixels(np.median(three, axis=0)), atol=1e-6)


def test_steps_is_a_baseline_of_the_evaluation():
    from predrnn_tf.evaluation import baselines

    metadata = {"value_mapping": units.rain_rate_mapping(),
                "grid": {"pixel_km": 2.0, "interval_minutes": 10.0}}
    assert "steps" in baselines.BASELINES
    made = baselines.make_baseline("steps", 4, metadata, num_members=5)
    assert isinstance(made, steps_baseline.StepsNowcast)
    assert (made.num_members, made.output_length, made.pixel_km) == (5, 4, 2.0)
    with pytest.raises(ValueError, match="pixel_km"):
        baselines.make_baseline("steps", 4, {"value_mapping": units.rain_rate_mapping()})


def test_the_baseline_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="rain-rate dataset"):
        steps_baseline.StepsNowcast(2, {"value_mapping": units.hko7_mapping()})
    with pytest.raises(ValueError, match="pixel_km"):
        steps_baseline.StepsNowcast(2, {"value_mapping": units.rain_rate_mapping()})
    with pytest.raises(ValueError, match="T >= 3"):
        steps_baseline.steps_members(moving_rain(frames=2), 2)
