"""predrnn-predict and the inference library: files in, forecast in physical units out."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import checkpoints, units
from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.errors import ConfigError, InputError
from predrnn_tf.evaluation import plots
from predrnn_tf.inference import forecaster
from predrnn_tf.inference.frames import RadarArchive, load_frames
from predrnn_tf.inference.predict import PredictOptions, predict_files
from predrnn_tf.models.builder import build_model
from predrnn_tf.serving import exporter
from predrnn_tf.workdir import WorkDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)
DBZ = units.hko7_mapping()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny synthetic-radar work directory (config.json, one checkpoint, metadata)."""
    path = str(tmp_path_factory.mktemp("predict") / "tiny")
    synthetic_radar.ensure_synthetic_dataset(os.path.join(path, "data"), 16, 6, num_train=2,
                                             num_test=2)
    model = build_model(TINY)
    step = tf.Variable(3, dtype=tf.int64, trainable=False, name="step")
    checkpoints.make_manager(tf.train.Checkpoint(model=model, step=step), path).save()
    WorkDir(path).save_config(TINY)
    return path


@pytest.fixture(scope="module")
def keras_model(workdir):
    return WorkDir(workdir).restore_model()[0]


def pixels01(batch=1, length=3, seed=0):
    return np.random.default_rng(seed).random((batch, length, 16, 16, 1), dtype=np.float32)


def expected_dbz(model, frames01, output_length=None):
    predictions = np.clip(model.forecast(frames01, output_length).numpy(), 0, 1)
    return units.pixels_to_units(predictions.astype(np.float64), DBZ)


def test_npy_in_dbz_gives_forecast_in_dbz_and_official_frames(workdir, keras_model, tmp_path):
    frames = pixels01(length=5)
    dbz = units.pixels_to_units(frames.astype(np.float64), DBZ)  # [1, 5, 16, 16, 1] dBZ
    np.save(tmp_path / "sequence.npy", dbz[0, ..., 0])  # [T, H, W]
    summary = predict_files(PredictOptions(input=str(tmp_path / "sequence.npy"),
                                           output_dir=str(tmp_path / "out"), workdir=workdir,
                                           with_truth=True))
    predictions = np.load(tmp_path / "out" / "predictions.npy")
    assert predictions.shape == (1, 3, 16, 16, 1) and summary["units"] == "dBZ"
    np.testing.assert_allclose(predictions, expected_dbz(keras_model, frames[:, :3]),
                               atol=1e-3)
    folder = tmp_path / "out" / "frames" / "1"
    assert sorted(os.listdir(folder)) == sorted(
        [f"gt{i}.png" for i in range(1, 6)] + [f"pd{i}.png" for i in range(4, 7)])
    gt1 = cv2.imread(str(folder / "gt1.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(gt1, np.round(frames[0, 0, ..., 0] * 255).astype(np.uint8))
    strip = cv2.imread(str(tmp_path / "out" / "predictions.png"))
    assert strip is not None and summary["truth_frames"] == 2


def test_png_folder_and_last_frames_are_the_past(workdir, keras_model, tmp_path):
    pixels = (pixels01(length=4, seed=1)[0] * 255).astype(np.uint8)  # [4, 16, 16, 1]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, frame in enumerate(pixels):
        cv2.imwrite(str(folder / f"f{index:02d}.png"), frame[..., 0])
    frames = load_frames(str(folder), DBZ, channels=1)
    np.testing.assert_array_equal(frames[0], pixels / np.float32(255))
    predict_files(PredictOptions(input=str(folder), output_dir=str(tmp_path / "out"),
                                 workdir=workdir, output_length=5))
    predictions = np.load(tmp_path / "out" / "predictions.npy")
    np.testing.assert_allclose(predictions, expected_dbz(keras_model, frames[:, 1:], 5),
                               atol=1e-3)
    assert "gt4.png" not in os.listdir(tmp_path / "out" / "frames" / "1")  # only 3 inputs


def test_saved_model_gives_the_workdir_numbers(workdir, tmp_path):
    summary = exporter.export_model(WorkDir(workdir).restore_model()[0], TINY,
                                    str(tmp_path / "exports"), "tiny", 1, value_mapping=DBZ,
                                    warmup=False)
    frames = pixels01(batch=2, seed=2)
    from_export = forecaster.from_saved_model(str(tmp_path / "exports" / "tiny"))
    from_workdir = forecaster.from_workdir(workdir)
    assert from_export.value_mapping["offset"] == DBZ["offset"]
    np.testing.assert_allclose(from_export.forecast(frames), from_workdir.forecast(frames),
                               atol=1e-5)
    with pytest.raises(InputError, match="forecasts 3 frames"):
        from_export.forecast(frames, 4)
    assert summary["value_mapping"]["units"] == "dBZ"


def test_radar_archive_through_the_converters_importers(workdir, keras_model, tmp_path):
    dbz = np.linspace(-5.0, 50.0, 3 * 32 * 32).reshape(3, 32, 32).astype(np.float32)
    for index, field in enumerate(dbz):
        np.save(tmp_path / f"radar_{index}.npy", field)
    frames = load_frames(str(tmp_path / "radar_*.npy"), DBZ,
                         radar_archive=RadarArchive(importer="npy"), image_size=16)
    assert frames.shape == (1, 3, 16, 16, 1) and 0 < frames.max() <= 1
    recovered = units.pixels_to_units(frames.astype(np.float64), DBZ)
    assert abs(recovered.mean() - dbz.mean()) < 1.0  # area mean kept, within quantisation


@pytest.mark.parametrize("array,fragment", [
    (np.full((3, 16, 16), 0.5, np.float32), "look like pixels"),  # [0, 1] given as dBZ
    (np.zeros((2, 16, 16, 3), np.float32), "[T, H, W, C] with C = 1"),
    (np.zeros((16, 16), np.float32), "must be [T, H, W]"),
    (np.zeros((3, 16, 16), np.int32), "dtype int32"),
    (np.full((3, 16, 16), np.inf, np.float32), "infinite"),
])
def test_bad_npy_is_one_line_naming_the_file(array, fragment, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(InputError) as raised:
        load_frames(str(path), DBZ, channels=1)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_nan_in_physical_units_is_no_echo_and_pixels_refuse_it(tmp_path):
    values = np.full((3, 16, 16), 30.0, np.float32)
    values[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", values)
    frames = load_frames(str(tmp_path / "nan.npy"), DBZ)
    assert frames[0, 0, 0, 0, 0] == 0.0 and np.isfinite(frames).all()
    with pytest.raises(InputError, match="NaN"):
        load_frames(str(tmp_path / "nan.npy"), None)
    with pytest.raises(InputError, match="divide by 255"):
        np.save(tmp_path / "255.npy", np.full((3, 16, 16), 200.0, np.float32))
        load_frames(str(tmp_path / "255.npy"), None)


def test_failures_write_nothing(workdir, tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((2, 16, 16), np.uint8))
    np.save(tmp_path / "past.npy", (pixels01()[0] * 255).astype(np.uint8))
    out = tmp_path / "out"
    for options, error in [
        (PredictOptions(input=str(tmp_path / "past.npy"), output_dir=str(out),
                        workdir=workdir, probability_matching="last_input"), ConfigError),
        (PredictOptions(input=str(tmp_path / "past.npy"), output_dir=str(out),
                        workdir=workdir, probability_matching_blend=0.7), ConfigError),
        (PredictOptions(input=str(tmp_path / "short.npy"), output_dir=str(out),
                        workdir=workdir), InputError),
        (PredictOptions(input=str(tmp_path / "short.npy"), output_dir=str(out)), ConfigError),
        (PredictOptions(input=str(tmp_path / "missing.npy"), output_dir=str(out),
                        workdir=workdir), InputError),
    ]:
        with pytest.raises(error):
            predict_files(options)
    assert not out.exists()


def run_predict(*args):
    return subprocess.run([sys.executable, "-m", "predrnn_tf.cli.predict", *args], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=300)


def test_command_line_summary_and_one_line_errors(workdir, tmp_path):
    np.save(tmp_path / "past.npy", (pixels01()[0] * 255).astype(np.uint8))
    result = run_predict(f"--workdir={workdir}", f"--input={tmp_path / 'past.npy'}",
                         f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["output_frames"] == 3 and os.path.exists(summary["written"]["strip"])
    bad = run_predict(f"--workdir={workdir}", f"--input={tmp_path / 'past.npy'}",
                      f"--output_dir={tmp_path / 'out2'}", "--output_length=0")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert bad.stderr.startswith("error: --output_length") and not (tmp_path / "out2").exists()
    device = run_predict(f"--workdir={workdir}", "--input=/dev/zero",
                         f"--output_dir={tmp_path / 'out3'}")
    assert device.returncode == 2 and "/dev/zero is not a regular file" in device.stderr, (
        device.stderr)


def test_colour_scale_marks_values_above_the_top_threshold():
    table = plots.dbz_lookup_table()
    above = table[80 + 64]
    assert tuple(above) != tuple(plots.BACKGROUND) and tuple(above) != tuple(table[70 + 64])
    bar = plots.draw_value_colorbar(200, {"units": "mm/h", "scale": 0.5, "offset": 0.0})
    assert bar.shape[0] == 200 and (bar < 250).any()


def test_tensorboard_strip_has_labelled_rows_with_inputs_and_error():
    from predrnn_tf.training import reporting

    inputs, truth = pixels01(length=3)[0], pixels01(length=4, seed=3)[0]
    strip = reporting.image_strip(inputs, truth, np.zeros_like(truth))
    scale = plots.display_scale(16)
    assert strip.shape == (1, 4 * 16 * scale, reporting.STRIP_LABEL_WIDTH + 4 * 16 * scale, 3)
    assert strip.dtype == np.uint8 and (strip[0, :, :reporting.STRIP_LABEL_WIDTH] < 128).any()
    centre = scale // 2
    left = reporting.STRIP_LABEL_WIDTH + centre
    error_row = strip[0, 3 * 16 * scale + centre::scale, left::scale]
    # |prediction - truth| with a zero prediction is the truth itself (4 frames side by side)
    expected = (np.concatenate(list(truth), axis=1)[..., 0] * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(error_row[:16, :, 0], expected)


def test_an_ensemble_of_the_pretrained_radar_model_in_mm_per_hour(workdir, tmp_path):
    from predrnn_tf.inference import pretrained_models

    rows, columns = np.mgrid[0:32, 0:32]
    rain = np.stack([8.0 * np.exp(-((rows - 16) ** 2 + (columns - 8 - 2 * step) ** 2) / 40.0)
                     for step in range(5)])[..., None].astype(np.float32)  # [5, H, W, 1] mm/h
    np.save(tmp_path / "rain.npy", rain)
    options = PredictOptions(input=str(tmp_path / "rain.npy"), output_dir=str(tmp_path / "out"),
                             workdir=pretrained_models.pretrained_workdir("radar_real"),
                             output_length=3, ensemble_size=3)
    summary = predict_files(options)
    ensemble = np.load(summary["written"]["ensemble"])
    assert ensemble.shape == (1, 3, 3, 32, 32, 1) and summary["ensemble_size"] == 3
    assert np.nanstd(ensemble, axis=1).max() > 0  # the members differ
    median = np.load(summary["written"]["predictions"])
    np.testing.assert_allclose(median, np.median(ensemble, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(summary["written"]["mean"]), ensemble.mean(axis=1),
                               rtol=1e-5, atol=1e-6)
    assert len(os.listdir(summary["written"]["probability"])) == 2 * 3
    with pytest.raises(ConfigError, match="--ensemble_size needs a rain-rate model"):
        predict_files(PredictOptions(input=str(tmp_path / "rain.npy"), workdir=workdir,
                                     output_dir=str(tmp_path / "dbz"), ensemble_size=2))
