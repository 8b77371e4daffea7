"""Training fidelity: our optimizer is torch.optim.Adam; the official data order and masks."""

from __future__ import annotations

import numpy as np
import pytest

from predrnn_tf.analysis import fidelity
from predrnn_tf.config import Config
from predrnn_tf.training.trainer import TorchAdam, make_optimizer


def adam_trajectory(optimizer_factory, gradients):
    import keras

    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = optimizer_factory()
    for gradient in gradients:
        optimizer.apply_gradients([(np.asarray(gradient, np.float32), variable)])
    return np.asarray(variable.numpy())


def test_torch_adam_follows_torch_optim_adam_and_keras_adam_does_not():
    torch = pytest.importorskip("torch")
    import keras

    rng = np.random.default_rng(0)
    # Tiny gradients, where the placement of epsilon matters (as for many conv weights).
    gradients = [rng.standard_normal(3) * 1e-7 for _ in range(20)]
    parameter = torch.nn.Parameter(torch.ones(3))
    reference = torch.optim.Adam([parameter], lr=5e-4)
    for gradient in gradients:
        parameter.grad = torch.tensor(gradient, dtype=torch.float32)
        reference.step()
    expected = parameter.detach().numpy()
    ours = adam_trajectory(lambda: TorchAdam(learning_rate=5e-4), gradients)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=3e-7)  # float32: 2 ulps at 1.0
    keras_adam = adam_trajectory(lambda: keras.optimizers.Adam(learning_rate=5e-4), gradients)
    assert np.max(np.abs(keras_adam - expected)) > 1e-5  # 1e-7 before the correction


def test_the_official_optimizer_is_the_default():
    assert isinstance(make_optimizer(Config(lr=1e-3)), TorchAdam)
    assert make_optimizer(Config(lr=1e-3)).epsilon == 1e-8
    keras_one = make_optimizer(Config(lr=1e-3, keras_adam=True))
    assert not isinstance(keras_one, TorchAdam) and keras_one.epsilon == 1e-7


def test_official_order_permutes_each_epoch_and_drops_one_batch():
    order = fidelity.OfficialOrder(num_sequences=20, batch_size=4, seed=0)
    epoch = [order.next_indices() for _ in range(4)]  # 20 / 4 = 5 batches, the last dropped
    seen = np.concatenate(epoch)
    assert len(set(seen.tolist())) == 16
    order.next_indices()
    assert order.position == 4  # a new permutation started


def test_official_reverse_mask_follows_the_schedule():
    config = Config(batch_size=2000, input_length=10, total_length=20, r_sampling_step_1=250,
                    r_sampling_step_2=750, r_exp_alpha=100.0)
    rng = np.random.default_rng(0)
    early = fidelity.official_reverse_mask(config, 1, rng)
    late = fidelity.official_reverse_mask(config, 800, rng)
    assert early.shape == (2000, 18)
    assert abs(early.mean() - 0.5) < 0.02
    assert late[:, :9].min() == 1.0 and late[:, 9:].max() == 0.0


def test_per_frame_test_mse_is_the_official_sum_over_pixels():
    sequences = np.zeros((3, 4, 2, 2, 1), np.uint8)
    sequences[:, 2:] = 255

    def zeros(inputs):
        return np.zeros((inputs.shape[0], 2, 2, 2, 1), np.float32) - 1.0  # clipped to 0

    result = fidelity.per_frame_test_mse(zeros, sequences, input_length=2, batch_size=2)
    assert result == {"mse": 4.0, "per_frame": [4.0, 4.0], "num_sequences": 3}


def test_seed_summary_reports_spread_and_the_gap():
    results = [{"variant": "ours", "seed": s, "mse": v} for s, v in enumerate((100, 104, 102))]
    results += [{"variant": "official", "seed": 0, "mse": 100.0}]
    summary = fidelity.summarise_seeds(results)
    assert summary["ours"]["mean"] == 102 and summary["ours"]["std"] == pytest.approx(2.0)
    lines = fidelity.format_summary(summary, 1000)
    assert "| ours | 0,1,2 | 102.00 +- 2.00 | 100.00 .. 104.00 | +2.0% |" in lines
    assert "n/a (1 seed)" in lines[-1]
