import numpy as np
import pytest

import predrnn_tf
from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.training import loop as train_lib

TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=2, max_iterations=2, reverse_input=False,
              display_interval=2, test_interval=2, snapshot_interval=2, num_test_batches=1,
              shuffle_buffer=8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("synthetic"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=16, num_test=4)
    return path


def test_restore_rebuilds_the_trained_model(data_dir, tmp_path):
    workdir = str(tmp_path)
    train_lib.train_and_evaluate(TINY.replace(data_dir=data_dir), workdir)
    model, config = predrnn_tf.restore(workdir)
    assert config.num_hidden == (4, 4) and config.data_dir == data_dir
    again, _ = predrnn_tf.restore(workdir)
    frames = np.random.default_rng(0).random((2, 3, 16, 16, 1)).astype(np.float32)
    first = predrnn_tf.forecast(model, frames).numpy()
    assert first.shape == (2, 3, 16, 16, 1)
    np.testing.assert_array_equal(first, again.forecast(frames).numpy())
    fresh = predrnn_tf.build_model(config)
    assert np.abs(fresh.forecast(frames).numpy() - first).max() > 1e-6  # weights were loaded


def test_restore_errors_name_the_workdir(tmp_path):
    with pytest.raises(predrnn_tf.ConfigError, match="not a training workdir"):
        predrnn_tf.restore(str(tmp_path))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_runs_with_float32_losses(data_dir, tmp_path, precision):
    result = train_lib.train_and_evaluate(TINY.replace(data_dir=data_dir, precision=precision),
                                          str(tmp_path))
    assert result["step"] == 2
    assert np.isfinite(result["train"]["loss"]) and np.isfinite(result["mse"])
