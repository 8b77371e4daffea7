"""The training-time test pass scores the baselines beside the model, once per test set."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.evaluation import baselines, pysteps_settings
from predrnn_tf.training import loop, reporting, test_pass

CONFIG = Config(input_length=3, total_length=6, batch_size=4, num_test_batches=0,
                img_width=8, patch_size=1)


def _dataset(seed=0, count=10):
    frames = np.random.default_rng(seed).random((count, 6, 8, 8, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(frames).batch(4), frames


def _half(inputs):
    return tf.repeat(inputs[:, -1:] * 0.5, 3, axis=1)


def _per_frame_mse(truth, predictions):
    return ((truth - predictions) ** 2).sum(axis=(2, 3, 4)).mean(axis=0)


class CountingBaseline:
    """Persistence that counts the sequences it forecast."""

    def __init__(self):
        self.calls = 0

    def __call__(self, inputs):
        self.calls += len(inputs)
        return baselines.persistence(inputs, 3)


def test_model_and_baselines_are_scored_on_the_same_sequences():
    dataset, frames = _dataset()
    result = test_pass.run_test_pass(_half, dataset, CONFIG)
    inputs, truth = frames[:, :3], frames[:, 3:]
    model = _per_frame_mse(truth, np.repeat(inputs[:, -1:] * 0.5, 3, axis=1))
    persistence = _per_frame_mse(truth, np.repeat(inputs[:, -1:], 3, axis=1))
    np.testing.assert_allclose(result["per_frame"]["mse"], model, rtol=1e-6)
    assert result["mse"] == pytest.approx(model.mean(), rel=1e-6)
    scores = result["baselines"]["persistence"]
    np.testing.assert_allclose(scores["per_frame"]["mse"], persistence, rtol=1e-6)
    assert result["persistence_mse"] == scores["mse"] == pytest.approx(persistence.mean(), 1e-6)
    assert result["num_sequences"] == 10


def test_baselines_are_forecast_once_per_test_set_and_again_for_new_sequences():
    dataset, _ = _dataset()
    counting = CountingBaseline()
    cache = test_pass.BaselineCache({"persistence": counting})
    first = test_pass.run_test_pass(_half, dataset, CONFIG, cache)
    second = test_pass.run_test_pass(_half, dataset, CONFIG, cache)
    assert counting.calls == 10 and cache.forecast_batches == 3  # 4 + 4 + 2: once
    assert first["baselines"] == second["baselines"]
    other, _ = _dataset(seed=1)
    third = test_pass.run_test_pass(_half, other, CONFIG, cache)
    assert counting.calls == 20  # other sequences: forecast, not taken from the cache
    assert third["baselines"]["persistence"]["mse"] != first["baselines"]["persistence"]["mse"]


def test_a_failing_baseline_is_dropped_not_fatal():
    def broken(inputs):
        raise RuntimeError("no motion field")

    dataset, _ = _dataset()
    cache = test_pass.BaselineCache({"persistence": CountingBaseline(), "extrapolation": broken})
    result = test_pass.run_test_pass(_half, dataset, CONFIG, cache)
    assert list(result["baselines"]) == ["persistence"]
    assert cache.names == ["persistence"]


def test_without_pysteps_only_persistence_with_one_log_line(monkeypatch):
    def missing():
        raise ImportError(pysteps_settings.PYSTEPS_MISSING)

    logged = []
    monkeypatch.setattr(baselines, "import_pysteps", missing)
    monkeypatch.setattr(test_pass.logging, "info", lambda message, *args: logged.append(message))
    found = test_pass.make_test_baselines(CONFIG, None)
    assert list(found) == ["persistence"]
    assert logged == [test_pass.PYSTEPS_ABSENT_LOG]


def test_with_pysteps_extrapolation_is_scored_too():
    pytest.importorskip("pysteps")
    found = test_pass.make_test_baselines(CONFIG, None)
    assert list(found) == ["persistence", "extrapolation"]
    dataset, _ = _dataset()
    result = test_pass.run_test_pass(_half, dataset, CONFIG, test_pass.BaselineCache(found))
    assert np.isfinite(result["baselines"]["extrapolation"]["mse"])


def test_an_advection_prior_model_is_scored_beside_its_untrained_prior():
    config = CONFIG.replace(residual_frames=True, advection_prior=True)
    found = test_pass.make_test_baselines(config, None)
    assert list(found)[0] == "persistence" and list(found)[-1] == "advection"
    assert "advection" not in test_pass.make_test_baselines(CONFIG, None)
    dataset, frames = _dataset()
    result = test_pass.run_test_pass(_half, dataset, config, test_pass.BaselineCache(found))
    expected = _per_frame_mse(frames[:, 3:], found["advection"](frames[:, :3]))
    np.testing.assert_allclose(result["baselines"]["advection"]["per_frame"]["mse"], expected,
                               rtol=1e-5)


def test_no_extrapolation_for_colour_frames():
    found = test_pass.make_test_baselines(CONFIG.replace(img_channel=3), None)
    assert list(found) == ["persistence"]


def test_one_naming_scheme_for_the_model_and_the_baselines():
    dataset, _ = _dataset()
    result = test_pass.run_test_pass(_half, dataset, CONFIG)
    scalars = reporting.test_scalars(result)
    assert scalars["test/mse"] == result["mse"]
    assert scalars["test/persistence/mse"] == result["baselines"]["persistence"]["mse"]
    assert "test_frames/mse_frame_03" in scalars
    assert "test_frames/persistence/mse_frame_03" in scalars
    assert not [tag for tag in scalars if "persistence_mse" in tag]
    assert len(scalars) == 2 * (1 + 3)


@pytest.fixture(scope="module")
def uneven_data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("uneven"))
    synthetic_radar.ensure_synthetic_dataset(path, 16, 6, num_train=32, num_test=10)
    return path


def _tags(workdir):
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_training_logs_the_baselines_as_evaluate_scores_them(uneven_data_dir, tmp_path):
    import predrnn_tf
    from predrnn_tf.data import reader
    from predrnn_tf.evaluation import evaluator

    config = Config(num_hidden=(8, 8), filter_size=3, patch_size=2, img_width=16,
                    input_length=3, total_length=6, batch_size=4, max_iterations=2,
                    reverse_input=False, display_interval=2, test_interval=1,
                    snapshot_interval=2, log_every=1, num_test_batches=0,
                    data_dir=uneven_data_dir, shuffle_buffer=16)
    workdir = str(tmp_path / "run")
    trained = loop.train_and_evaluate(config, workdir)
    assert {"test/mse", "test/persistence/mse", "test_frames/persistence/mse_frame_01"} <= \
        _tags(workdir)
    _, saved = predrnn_tf.restore(workdir)
    dataset = reader.make_dataset(uneven_data_dir, saved.dataset_name, "test", saved.batch_size,
                                  saved.total_length, shuffle=False, repeat=False,
                                  deterministic=True, drop_remainder=False)
    options = evaluator.EvaluationOptions(input_length=3, output_length=3, num_strips=1)
    evaluated = evaluator.evaluate(baselines.make_baseline("persistence", 3), dataset,
                                   str(tmp_path / "eval"), options)
    assert trained["baselines"]["persistence"]["mse"] == pytest.approx(
        evaluated["metrics"]["mse"], rel=1e-9)


def test_pysteps_is_an_optional_requirement():
    """The CI installs requirements-optional.txt: pysteps must be listed there, pinned."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "requirements-optional.txt")
    lines = [line.split("#")[0].strip() for line in open(path)]
    assert [line for line in lines if line.startswith("pysteps==")], lines
