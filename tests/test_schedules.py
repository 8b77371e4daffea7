import math

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.training.schedules import (
    draw_mask,
    forecast_mask,
    reverse_sampling_probabilities,
    sampling_probabilities,
    scheduled_sampling_eta,
)


def test_scheduled_sampling_eta_key_iterations():
    assert scheduled_sampling_eta(0) == 1.0
    assert scheduled_sampling_eta(10000) == pytest.approx(0.8)
    assert scheduled_sampling_eta(49999) == pytest.approx(1.0 - 2e-5 * 49999)
    assert scheduled_sampling_eta(50000) == 0.0
    assert scheduled_sampling_eta(10, start_value=0.1, changing_rate=0.1, stop_iter=100) == 0.0


def test_reverse_exponential_key_iterations():
    assert reverse_sampling_probabilities(0) == (0.5, 0.5)
    assert reverse_sampling_probabilities(24999) == (0.5, 0.5)
    encoder, decoder = reverse_sampling_probabilities(25000)
    assert encoder == pytest.approx(0.5) and decoder == pytest.approx(0.5)
    encoder, decoder = reverse_sampling_probabilities(27500)
    assert encoder == pytest.approx(1 - 0.5 * math.exp(-1))
    assert decoder == pytest.approx(0.5 - 0.5 * 2500 / 25000)
    assert reverse_sampling_probabilities(37500)[1] == pytest.approx(0.25)
    assert reverse_sampling_probabilities(50000) == (1.0, 0.0)
    assert reverse_sampling_probabilities(10 ** 6) == (1.0, 0.0)


@pytest.mark.parametrize("curve", ["linear", "sigmoid", "exponential"])
def test_reverse_curves_rise_monotonically_to_one(curve):
    values = [reverse_sampling_probabilities(k, 100, 200, 10.0, curve)[0]
              for k in range(0, 260, 5)]
    assert values[0] == 0.5 and values[-1] == 1.0
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert reverse_sampling_probabilities(150, 100, 200, 10.0, "linear")[0] == pytest.approx(0.75)
    assert reverse_sampling_probabilities(150, 100, 200, 10.0, "sigmoid")[0] == pytest.approx(0.75)


def test_first_strategy_starts_encoder_at_zero_decoder_at_one():
    assert reverse_sampling_probabilities(0, strategy=1) == (0.0, 1.0)
    encoder, decoder = reverse_sampling_probabilities(37500, curve="linear", strategy=1)
    assert encoder == pytest.approx(0.5) and decoder == pytest.approx(0.5)


def test_sampling_probabilities_follow_config_mode():
    assert sampling_probabilities(Config(reverse_scheduled_sampling=False), 10000) == (
        1.0, pytest.approx(0.8))
    assert sampling_probabilities(Config(reverse_scheduled_sampling=False,
                                         scheduled_sampling=False), 5) == (1.0, 0.0)


def test_mask_statistics_and_layout():
    config = Config(input_length=10, total_length=20)
    generator = tf.random.Generator.from_seed(3)
    mask = draw_mask(generator, 4000, 0.8, 0.3, config).numpy()
    assert mask.shape == (4000, 18)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(mask[:, :9].mean(), 0.8, atol=0.01)
    np.testing.assert_allclose(mask[:, 9:].mean(), 0.3, atol=0.01)
    v1 = draw_mask(generator, 4000, 1.0, 0.25, config.replace(reverse_scheduled_sampling=False))
    assert v1.shape == (4000, 9)
    np.testing.assert_allclose(v1.numpy().mean(), 0.25, atol=0.01)


def test_mask_generator_state_makes_masks_reproducible():
    config = Config(input_length=3, total_length=8)
    first = tf.random.Generator.from_seed(5)
    draw_mask(first, 2, 0.5, 0.5, config)
    state = first.state.numpy()
    expected = draw_mask(first, 2, 0.5, 0.5, config).numpy()
    second = tf.random.Generator.from_state(state, first.algorithm)
    np.testing.assert_array_equal(draw_mask(second, 2, 0.5, 0.5, config).numpy(), expected)


def test_forecast_mask():
    config = Config(input_length=3, total_length=7)
    np.testing.assert_array_equal(forecast_mask(config, 2).numpy(),
                                  [[1, 1, 0, 0, 0]] * 2)
    config = config.replace(reverse_scheduled_sampling=False)
    np.testing.assert_array_equal(forecast_mask(config, 1).numpy(), [[0, 0, 0]])


def test_schedules_import_neither_the_models_nor_the_layers():
    """Schedules are pure: the mask layout they need is predrnn_tf.masks, not the models."""
    import subprocess
    import sys

    code = ("import sys, predrnn_tf.training.schedules; "
            "print(sorted(name for name in sys.modules if name.startswith("
            "('predrnn_tf.models', 'predrnn_tf.layers'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout
