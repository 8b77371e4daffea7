"""Tests for predrnn_tf.evaluation (library, dummy forecasters) and the evaluate entry point."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.errors import DataError
from predrnn_tf.evaluation import evaluator, lpips

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RADAR_MAPPING = {"units": "dBZ", "scale": 70.0 / 255.0, "offset": -10.0}


def _moving_blobs(count, length, size, seed=0):
    """Bright squares moving one pixel per frame: [N, T, H, W, 1] float32 multiples of 1/255."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((count, length, size, size, 1), np.float32)
    for index in range(count):
        row = rng.integers(2, size // 2)
        col = rng.integers(1, max(2, size - 6 - length))  # stays inside the frame
        level = rng.integers(150, 255)
        for t in range(length):
            frames[index, t, row:row + 6, col + t:col + t + 6] = level / 255.0
    return frames


def _dataset(frames, batch_size=4):
    return tf.data.Dataset.from_tensor_slices(frames).batch(batch_size)


class _ShiftForecaster:
    """Knows the true motion: a perfect forecast for _moving_blobs."""

    def __call__(self, inputs):
        inputs = np.asarray(inputs)
        last = inputs[:, -1]
        return np.stack([np.roll(last, step, axis=2) for step in range(1, 4)], axis=1)


def test_evaluate_writes_all_files_and_recomputable_metrics(tmp_path):
    frames = _moving_blobs(6, 7, 16)
    options = evaluator.EvaluationOptions(input_length=4, output_length=3, save_predictions=True,
                                           num_sequences=5, num_strips=2, name="persistence")
    persistence = lambda inputs: np.repeat(np.asarray(inputs)[:, -1:], 3, axis=1)  # noqa: E731
    output_dir = str(tmp_path / "out")
    result = evaluator.evaluate(persistence, _dataset(frames), output_dir, options,
                                 metadata={"name": "blobs", "value_mapping": RADAR_MAPPING},
                                 lpips_skip_reason="no weights: run the converter")
    files = sorted(os.listdir(output_dir))
    assert files == ["mean_intensity.png", "metrics.json", "metrics_per_frame.csv",
                     "metrics_per_frame.png", "predictions.gif", "predictions.npz",
                     "predictions.png"]
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        text = handle.read()
    assert "NaN" not in text
    stored = json.loads(text)
    assert stored["num_sequences"] == 5 and stored["output_length"] == 3
    assert stored["skipped"]["lpips"] == "no weights: run the converter"
    assert "lpips" not in stored["metrics"]
    assert stored["metrics"]["mse"] == pytest.approx(result["metrics"]["mse"])
    saved = np.load(os.path.join(output_dir, "predictions.npz"))
    assert saved["inputs"].shape == (5, 4, 16, 16, 1) and saved["truth"].shape == (5, 3, 16, 16, 1)
    np.testing.assert_array_equal(saved["truth"], frames[:5, 4:])
    recomputed = np.square(saved["truth"] - saved["predictions"]).sum(axis=(2, 3, 4)).mean(0)
    np.testing.assert_allclose(stored["per_frame"]["mse"], recomputed, rtol=1e-5)
    assert recomputed[2] > recomputed[0] > 0  # persistence gets worse with lead time
    rows = open(os.path.join(output_dir, "metrics_per_frame.csv")).read().splitlines()
    assert rows[0].startswith("frame,mse,mae,psnr,ssim,csi_30") and len(rows) == 4
    image = cv2.imread(os.path.join(output_dir, "predictions.png"))
    assert image is not None and image.shape[0] > 2 * 16 * 2 and image.shape[2] == 3
    assert cv2.imread(os.path.join(output_dir, "metrics_per_frame.png")) is not None
    assert open(os.path.join(output_dir, "predictions.gif"), "rb").read(4) == b"GIF8"


def test_perfect_forecast_scores_perfectly(tmp_path):
    frames = _moving_blobs(4, 7, 16, seed=1)
    options = evaluator.EvaluationOptions(input_length=4, output_length=3, name="oracle")
    result = evaluator.evaluate(_ShiftForecaster(), _dataset(frames), str(tmp_path), options,
                                 metadata={"value_mapping": RADAR_MAPPING})
    metrics = result["metrics"]
    assert metrics["mse"] == 0 and metrics["mae"] == 0
    assert metrics["ssim"] == pytest.approx(1.0)
    assert metrics["csi_30"] == pytest.approx(1.0) and metrics["far_30"] == 0
    assert not os.path.exists(tmp_path / "predictions.npz")


def test_gray_data_has_no_radar_scores_and_lpips_is_used(tmp_path):
    frames = _moving_blobs(3, 6, 16, seed=2)

    def fake_lpips(truth, prediction):  # mean absolute difference per frame
        return np.abs(np.asarray(truth) - np.asarray(prediction)).mean(axis=(1, 2, 3))

    options = evaluator.EvaluationOptions(input_length=3, output_length=3)
    result = evaluator.evaluate(_ShiftForecaster(), _dataset(frames), str(tmp_path), options,
                                 lpips_model=fake_lpips)
    assert "csi_30" not in result["metrics"] and result["counts"] == {}
    assert "contingency" in result["skipped"] and "lpips" not in result["skipped"]
    assert result["per_frame"]["lpips"] == [0.0, 0.0, 0.0]


def test_model_objects_are_called_through_forecast(tmp_path):
    class Model:
        def forecast(self, inputs, output_length):
            return tf.repeat(inputs[:, -1:], output_length, axis=1)

    frames = _moving_blobs(2, 6, 16)
    options = evaluator.EvaluationOptions(input_length=2, output_length=4)
    result = evaluator.evaluate(Model(), _dataset(frames), str(tmp_path), options)
    assert len(result["per_frame"]["mse"]) == 4


def test_a_model_is_scored_beside_persistence_in_the_same_pass(tmp_path, monkeypatch):
    from predrnn_tf.evaluation import baselines, pysteps_settings

    class Model:  # forecasts the frame before the last: worse than persistence
        def forecast(self, inputs, output_length):
            return tf.repeat(inputs[:, -2:-1], output_length, axis=1)

    def no_pysteps():
        raise ImportError(pysteps_settings.PYSTEPS_MISSING)

    monkeypatch.setattr(baselines, "import_pysteps", no_pysteps)
    frames = _moving_blobs(5, 6, 16)
    options = evaluator.EvaluationOptions(input_length=3, output_length=3)
    result = evaluator.evaluate(Model(), _dataset(frames), str(tmp_path / "model"), options)
    alone = evaluator.evaluate(baselines.make_baseline("persistence", 3), _dataset(frames),
                                str(tmp_path / "persistence"), options)
    assert "baselines" not in alone or alone["baselines"] == {}  # a baseline gets none
    persistence = result["baselines"]["persistence"]
    assert persistence["metrics"]["mse"] == pytest.approx(alone["metrics"]["mse"], rel=1e-12)
    assert persistence["per_frame"]["mse"] == pytest.approx(alone["per_frame"]["mse"])
    assert result["metrics"]["mse"] > persistence["metrics"]["mse"]
    assert "pysteps" in result["skipped"]["extrapolation"]
    line = evaluator.summary_line(result)
    assert "| persistence: mse=" in line and "| extrapolation: n/a" in line
    with open(tmp_path / "model" / evaluator.CSV_FILENAME) as handle:
        header = handle.readline().strip().split(",")
    assert "mse" in header and "persistence_mse" in header
    saved = json.load(open(tmp_path / "model" / evaluator.METRICS_FILENAME))
    assert saved["baselines"]["persistence"]["metrics"]["mse"] == pytest.approx(
        persistence["metrics"]["mse"])


def test_a_baseline_failing_on_some_sequences_is_counted_not_fatal(tmp_path):
    from predrnn_tf.evaluation import baselines

    class Model:
        def forecast(self, inputs, output_length):
            return tf.repeat(inputs[:, -1:], output_length, axis=1)

    def fails_on_dark_inputs(inputs):  # as S-PROG on a field of no data
        if np.any(np.asarray(inputs).max(axis=(1, 2, 3, 4)) < 0.5):
            raise ValueError("x contains non-finite values")
        return baselines.persistence(inputs, 3)

    frames = _moving_blobs(6, 6, 16)
    frames[[1, 4]] *= 0.1  # two dark sequences the baseline fails on
    options = evaluator.EvaluationOptions(input_length=3, output_length=3)
    result = evaluator.evaluate(Model(), _dataset(frames), str(tmp_path), options,
                                 baselines={"sprog": fails_on_dark_inputs})
    assert result["num_sequences"] == 6
    assert result["baselines"]["sprog"]["num_sequences"] == 4
    assert result["failures"] == {"sprog": {"failed_sequences": 2, "scored_sequences": 4,
                                            "errors": {"ValueError: x contains non-finite "
                                                       "values": 2}}}
    assert "sprog failed on 2 sequence(s)" in evaluator.summary_line(result)
    saved = json.load(open(tmp_path / evaluator.METRICS_FILENAME))
    assert saved["failures"]["sprog"]["failed_sequences"] == 2


def test_bad_inputs_raise_clear_errors(tmp_path):
    frames = _moving_blobs(2, 5, 16)
    options = evaluator.EvaluationOptions(input_length=3, output_length=3)
    with pytest.raises(DataError, match="T >= input_length \\+ output_length = 6"):
        evaluator.evaluate(_ShiftForecaster(), _dataset(frames), str(tmp_path), options)
    options = evaluator.EvaluationOptions(input_length=2, output_length=2)
    with pytest.raises(ValueError, match="the forecast has shape"):
        evaluator.evaluate(_ShiftForecaster(), _dataset(frames), str(tmp_path), options)
    assert not os.path.exists(tmp_path / "metrics.json")


# ---------------------------------------------------------------------------- entry point


def _write_dataset(data_dir, name, frames):
    from predrnn_tf.data import schema
    with schema.ShardedWriter(data_dir, name, "test") as writer:
        for sequence in frames:
            writer.write(np.round(sequence * 255).astype(np.uint8))
    with schema.ShardedWriter(data_dir, name, "train") as writer:
        writer.write(np.round(frames[0] * 255).astype(np.uint8))
    schema.write_metadata(data_dir, name, {
        "image_height": frames.shape[2], "image_width": frames.shape[3], "channels": 1,
        "sequence_length": frames.shape[1], "num_train": 1, "num_test": len(frames),
        "value_mapping": RADAR_MAPPING, "synthetic": True})


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory):
    """A work directory with a tiny untrained PredRNN-V2 checkpoint and 6 test sequences."""
    import predrnn_tf
    from predrnn_tf import checkpoints
    from predrnn_tf.config import save_config

    root = tmp_path_factory.mktemp("evaluate")
    data_dir, workdir = str(root / "data"), str(root / "workdir")
    _write_dataset(data_dir, "blobs", _moving_blobs(6, 8, 32, seed=3))
    config = predrnn_tf.Config(
        model_name="predrnn_v2", num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=32,
        input_length=3, total_length=6, batch_size=4, dataset_name="blobs", data_dir=data_dir)
    model = predrnn_tf.build_model(config)
    model.forecast(tf.zeros([1, 3, 32, 32, 1]))
    save_config(config, workdir)
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(1, dtype=tf.int64))
    checkpoints.make_manager(checkpoint, workdir).save()
    weights = {name: np.random.default_rng(0).normal(0, 0.05, shape).astype(np.float32)
               for name, shape in lpips.expected_weight_shapes().items()}
    weights = {name: np.abs(value) if name.startswith("lin") else value
               for name, value in weights.items()}
    lpips_path = str(root / "lpips.npz")
    lpips.save_weights_file(weights, lpips_path)
    return workdir, data_dir, lpips_path


def _run_evaluate(*args):
    command = [sys.executable, "-m", "predrnn_tf.evaluate", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)


def test_entry_point_evaluates_checkpoint_beyond_training_length(tiny_workdir, tmp_path):
    import predrnn_tf

    workdir, _, lpips_path = tiny_workdir
    output_dir = str(tmp_path / "eval")
    completed = _run_evaluate(f"--workdir={workdir}", f"--output_dir={output_dir}",
                              "--output_length=5", "--save_predictions", "--num_sequences=5",
                              f"--lpips_weights={lpips_path}", "--thresholds=30,45",
                              "--fss_scales=3")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "predrnn_v2: 5 sequences x 5 frames" in completed.stdout
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        result = json.load(handle)
    assert result["output_length"] == 5 and result["thresholds"] == [30.0, 45.0]
    assert len(result["per_frame"]["lpips"]) == 5 and "lpips" not in result["skipped"]
    assert "fss_45_3" in result["metrics"] and result["info"]["checkpoint"].endswith("ckpt-1")
    saved = np.load(os.path.join(output_dir, "predictions.npz"))
    model, _ = predrnn_tf.restore(workdir)
    expected = np.clip(model.forecast(tf.constant(saved["inputs"][:2]), 5).numpy(), 0, 1)
    np.testing.assert_allclose(saved["predictions"][:2], expected, atol=1e-5)


def test_entry_point_baseline_without_workdir(tiny_workdir, tmp_path):
    _, data_dir, _ = tiny_workdir
    output_dir = str(tmp_path / "persistence")
    completed = _run_evaluate("--baseline=persistence", f"--data_dir={data_dir}",
                              "--dataset_name=blobs", "--input_length=3", "--output_length=5",
                              f"--output_dir={output_dir}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "LPIPS skipped" in completed.stdout and "convert_lpips_weights.py" in completed.stdout
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        result = json.load(handle)
    assert result["name"] == "persistence" and result["num_sequences"] == 6
    assert "convert_lpips_weights.py" in result["skipped"]["lpips"]


@pytest.mark.parametrize("args, message", [
    (["--output_length=9"], "are needed (--output_length=9)"),
    (["--lpips_weights=/nonexistent/lpips.npz"], "/nonexistent/lpips.npz does not exist"),
    (["--thresholds=30,abc"], "--thresholds must be comma-separated numbers"),
    (["--probability_matching=pooled"], "--probability_matching=pooled matches an ensemble's "
                                        "members: give --ensemble_size=N too"),
    (["--ensemble_seed=-1"], "--ensemble_seed must be >= 0, got -1"),
])
def test_entry_point_bad_flags_are_one_line_errors(tiny_workdir, tmp_path, args, message):
    workdir, _, _ = tiny_workdir
    output_dir = tmp_path / "bad"
    completed = _run_evaluate(f"--workdir={workdir}", f"--output_dir={output_dir}", *args)
    assert completed.returncode != 0
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not output_dir.exists()


@pytest.mark.parametrize("baseline", [[], ["--baseline=persistence"]])
def test_entry_point_rejects_an_unknown_precision(tiny_workdir, tmp_path, baseline):
    """Bug 5: --precision was passed unchecked to Keras (a traceback, or ignored for baselines)."""
    workdir, _, _ = tiny_workdir
    output_dir = tmp_path / "bad_precision"
    completed = _run_evaluate(f"--workdir={workdir}", f"--output_dir={output_dir}",
                              "--precision=float64", *baseline)
    assert completed.returncode != 0
    lines = completed.stderr.strip().splitlines()
    assert lines == ["error: --precision must be one of float32, mixed_float16, mixed_bfloat16, "
                     "got 'float64'"], completed.stderr[-2000:]
    assert not output_dir.exists()


def _write_rain_rate_dataset(data_dir: str) -> None:
    """A moving rain cell in dBR pixels (pixel 0 = no data in the first row), 4 test sequences."""
    from predrnn_tf import units
    from predrnn_tf.data import schema

    rows, cols = np.mgrid[0:32, 0:32]
    for split in ("train", "test"):
        with schema.ShardedWriter(data_dir, "rain", split) as writer:
            for shift in range(4):
                rate = np.stack([20.0 * np.exp(-((rows - 10 - t) ** 2 + (cols - 8 - 2 * t - shift)
                                                 ** 2) / 30.0) for t in range(6)])
                pixels = units.rain_rate_to_pixels(rate)
                pixels[:, 0] = units.NO_DATA_PIXEL
                writer.write(pixels[..., None])
    schema.write_metadata(data_dir, "rain", {
        "image_height": 32, "image_width": 32, "channels": 1, "sequence_length": 6,
        "num_train": 4, "num_test": 4, "value_mapping": units.rain_rate_mapping(),
        "grid": {"pixel_km": 2.0, "interval_minutes": 10.0}})


def test_entry_point_radar_baselines_in_one_table(tmp_path):
    pytest.importorskip("pysteps")
    data_dir, output_dir = str(tmp_path / "data"), str(tmp_path / "eval")
    _write_rain_rate_dataset(data_dir)
    completed = _run_evaluate("--baselines=persistence,extrapolation", f"--data_dir={data_dir}",
                              "--dataset_name=rain", "--input_length=3", "--output_length=3",
                              f"--output_dir={output_dir}", "--save_predictions")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "| extrapolation | csi_1mmh |" in completed.stdout
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        result = json.load(handle)
    assert result["lead_minutes"] == [10.0, 20.0, 30.0]
    forecasters = result["forecasters"]
    assert set(forecasters) == {"persistence", "extrapolation"}
    for name in forecasters:
        assert len(forecasters[name]["per_frame"]["csi_1mmh"]) == 3
        assert "fss_5mmh_16km" in forecasters[name]["metrics"]
    assert (forecasters["extrapolation"]["metrics"]["mse_mmh"]
            < forecasters["persistence"]["metrics"]["mse_mmh"])
    saved = np.load(os.path.join(output_dir, "predictions.npz"))
    assert saved["extrapolation"].shape == saved["truth"].shape == (4, 3, 32, 32, 1)
    assert os.path.exists(os.path.join(output_dir, "metrics_per_lead.png"))
    bad = _run_evaluate("--baselines=persistence,climatology", f"--data_dir={data_dir}",
                        "--dataset_name=rain", "--input_length=3", "--output_length=3",
                        f"--output_dir={output_dir}")
    assert bad.returncode != 0 and "--baselines: unknown ['climatology']" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_rain_rate_colour_bar_is_labelled_in_mm_per_hour(monkeypatch):
    from predrnn_tf import units
    from predrnn_tf.evaluation import plots

    labels = []
    monkeypatch.setattr(plots, "put_text", lambda image, text, *args: labels.append(text))
    plots.draw_value_colorbar(200, units.rain_rate_mapping())
    # pysteps' precipitation levels in mm/h (plot_precip_field's), largest on top, then the
    # no-data swatch
    levels = ["0.08", "0.16", "0.25", "0.4", "0.63", "1", "1.6", "2.5", "4", "6.3", "10", "16",
              "25", "40", "63", "100", "160"]
    assert labels == ["mm/h", *reversed(levels), "n/a"]
    precipfields = pytest.importorskip("pysteps.visualization.precipfields")
    _, _, pysteps_levels, _ = precipfields.get_colormap("intensity", "mm/h", "pysteps")
    assert [float(label) for label in levels] == pytest.approx(list(pysteps_levels)[:17])
