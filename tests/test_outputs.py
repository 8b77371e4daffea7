"""predrnn-predict's outputs: the whole composite's window and georeference, the folder
published as a whole (no stale frames, no foreign files deleted, nothing on a failed
write), forecast.nc (pysteps' CF exporter) and the precipitation colour scale."""

import contextlib
import datetime
import os

import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.errors import ConfigError, InputError
from predrnn_tf.evaluation import plots
from predrnn_tf.inference import outputs, publishing, radar_grid
from predrnn_tf.inference.forecast_netcdf import ForecastContext

MAPPING = units.rain_rate_mapping()
START = datetime.datetime(2017, 5, 9, 10, 0)


def test_whole_composite_window_is_the_valid_extent_cut_to_the_patch_size():
    fields = np.full((2, 40, 50), np.nan)
    fields[0, 5:31, 7:40] = 1.0  # 26 x 33 valid
    fields[1, 6:20, 9:43] = 2.0  # union: rows 5..30, columns 7..42 (26 x 36)
    window = radar_grid.cut_to_multiple(radar_grid.valid_extent(fields, "x"), 4, "x", 2.0)
    assert window == radar_grid.Window(6, 7, 24, 36)
    grid = radar_grid.Georeference("+proj=stere", 0.0, 0.0, 100.0, 80.0, "upper", 40, 50)
    cut = grid.window(window)  # 2 x 2 units per pixel, rows counted from the top
    assert (cut.x1, cut.x2, cut.y1, cut.y2) == (14.0, 86.0, 20.0, 68.0)
    assert (cut.xpixelsize, cut.ypixelsize) == (2.0, 2.0)
    with pytest.raises(InputError, match="no valid pixel"):
        radar_grid.valid_extent(np.full((1, 4, 4), np.nan), "x")


def polar_context() -> ForecastContext:
    """Three input times 10 min apart on an 8 x 8 polar-stereographic grid of 2 km pixels."""
    grid = radar_grid.Georeference("+proj=stere +lon_0=25E +lat_0=90N +lat_ts=60 +a=6371288 "
                                   "+x_0=0 +y_0=0",
                                   0.0, 0.0, 16000.0, 16000.0, "upper", 8, 8)
    return ForecastContext([START + datetime.timedelta(minutes=10 * k) for k in range(3)],
                           10.0, grid)


def forecast_arrays(leads: int):
    inputs = np.full((1, 3, 8, 8, 1), 100 / 255, np.float32)
    inputs[:, :, :2, :2] = 0.0  # no data
    return inputs, np.full((1, leads, 8, 8, 1), 120 / 255, np.float32)


def test_rerun_replaces_the_folder_and_foreign_folders_are_refused(tmp_path):
    out = str(tmp_path / "out")
    outputs.write_forecast(out, *forecast_arrays(4), value_mapping=MAPPING)
    assert os.path.exists(os.path.join(out, "frames", "1", "pd7.png"))
    outputs.write_forecast(out, *forecast_arrays(2), value_mapping=MAPPING)
    assert sorted(os.listdir(os.path.join(out, "frames", "1")))[-1] == "pd5.png"  # no stale
    predictions = np.load(os.path.join(out, "predictions.npy"))
    assert predictions.shape == (1, 2, 8, 8, 1) and np.isnan(predictions[0, :, :2, :2]).all()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write .*notes.txt"):
        outputs.write_forecast(out, *forecast_arrays(2), value_mapping=MAPPING)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_short_write_publishes_nothing(tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    real = publishing.files.atomic_write

    class HalfWriter:  # what cv2.imwrite did on ENOSPC: a short file, no error
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            return self.handle.write(data[:len(data) // 2])

        def __getattr__(self, name):
            return getattr(self.handle, name)

    @contextlib.contextmanager
    def full_disk(path, mode="wb"):
        with real(path, mode) as handle:
            yield HalfWriter(handle) if path.endswith(".png") else handle

    monkeypatch.setattr(publishing.files, "atomic_write", full_disk)
    with pytest.raises(ConfigError, match="nothing was written"):
        outputs.write_forecast(out, *forecast_arrays(2), value_mapping=MAPPING)
    assert not os.path.exists(out) and os.listdir(tmp_path) == []


def test_forecast_netcdf_has_utc_times_coordinates_inputs_and_truth(tmp_path):
    netcdf = pytest.importorskip("netCDF4")
    pytest.importorskip("pysteps")
    context = polar_context()
    inputs, predictions = forecast_arrays(2)
    truth = np.full((1, 2, 8, 8, 1), 60 / 255, np.float32)
    written = outputs.write_forecast(str(tmp_path / "out"), inputs, predictions, truth,
                                     MAPPING, context=context)
    with netcdf.Dataset(written["netcdf"]) as dataset:
        times = netcdf.num2date(dataset["time"][:], dataset["time"].units)
        assert [f"{t:%H:%M}" for t in times] == ["10:30", "10:40"]
        assert dataset["time"].units.endswith("UTC") and list(dataset["input_time"][:]) == [
            -1200, -600, 0]
        assert dataset["x"][0] == pytest.approx(1000.0) and dataset["y"][0] == pytest.approx(
            15000.0)
        forecast = dataset["precip_intensity"][:]
        expected = units.pixels_to_rain_rate(np.float64(120 / 255), MAPPING)
        assert forecast.shape == (2, 8, 8) and np.isnan(forecast[:, :2, :2]).all()
        np.testing.assert_allclose(forecast[:, 2:, 2:], expected, rtol=1e-5)
        assert dataset["observed_precip_intensity"].shape == (2, 8, 8)
        assert np.isnan(dataset["input_precip_intensity"][:][:, :2, :2]).all()
        assert dataset["precip_intensity"].grid_mapping == "polar_stereographic"
    assert len(os.listdir(os.path.join(tmp_path, "out", "maps"))) == 3 + 2 + 2


def test_precipitation_colours_are_pysteps_and_no_data_is_not_dry():
    image = plots.colorize_rain_rate(np.array([[0.0, np.nan, 0.1, 200.0]]))
    assert tuple(image[0, 0]) == (255, 255, 255)  # dry: white
    assert tuple(image[0, 1]) == plots.NO_DATA_COLOUR[::-1]  # no data: gray
    assert tuple(image[0, 2][::-1]) == plots.RAIN_RATE_COLOURS[0]
    assert tuple(image[0, 3][::-1]) == plots.RAIN_RATE_COLOURS[-1]
    precipfields = pytest.importorskip("pysteps.visualization.precipfields")
    colormap, norm, levels, _ = precipfields.get_colormap("intensity", "mm/h", "pysteps")
    assert tuple(levels) == plots.RAIN_RATE_LEVELS
    middles = [(low + high) / 2 for low, high in zip(levels, levels[1:])] + [levels[-1] + 1]
    theirs = [tuple(round(255 * c) for c in colormap(norm(m))[:3]) for m in middles]
    assert theirs == list(plots.RAIN_RATE_COLOURS)


def test_an_ensemble_writes_members_median_mean_probabilities_and_netcdf_members(tmp_path):
    netcdf = pytest.importorskip("netCDF4")
    pytest.importorskip("pysteps")
    context = polar_context()
    inputs, _ = forecast_arrays(2)
    rates = np.stack([np.full((2, 8, 8, 1), rate) for rate in (0.5, 2.0, 6.0)])  # 3 members
    members = units.rain_rate_to_unit_pixels(rates)[None].astype(np.float32)  # [1, 3, 2, ...]
    median = np.median(members, axis=1)
    written = outputs.write_forecast(str(tmp_path / "out"), inputs, median, None, MAPPING,
                                     context=context, members=members)
    ensemble = np.load(written["ensemble"])
    assert ensemble.shape == (1, 3, 2, 8, 8, 1) and np.isnan(ensemble[0, :, :, :2, :2]).all()
    np.testing.assert_allclose(np.load(written["predictions"])[0, :, 2:, 2:], 2.0, rtol=1e-4)
    np.testing.assert_allclose(np.load(written["mean"])[0, :, 2:, 2:], 8.5 / 3, rtol=1e-4)
    names = sorted(os.listdir(written["probability"]))
    assert names == ["p_ge_1mmh_+10min.png", "p_ge_1mmh_+20min.png", "p_ge_5mmh_+10min.png",
                     "p_ge_5mmh_+20min.png"]
    titles = [title for _, title in outputs_titles()]
    assert titles[0] == "P(R \u2265 5 mm/h) 2017-05-09 10:30 UTC (+10 min)"
    with netcdf.Dataset(written["netcdf"]) as dataset:
        assert dataset["precip_intensity"].dimensions == ("ens_number", "time", "y", "x")
        np.testing.assert_allclose(dataset["precip_intensity"][:][:, 0, 4, 4], [0.5, 2.0, 6.0],
                                   rtol=1e-4)
        np.testing.assert_allclose(dataset["precip_intensity_median"][:][:, 4, 4], 2.0,
                                   rtol=1e-4)
        np.testing.assert_allclose(dataset["precip_intensity_mean"][:][:, 4, 4], 8.5 / 3,
                                   rtol=1e-4)


def outputs_titles():
    from predrnn_tf.inference import forecast_maps

    context = ForecastContext([START + datetime.timedelta(minutes=20)], 10.0)
    return forecast_maps.probability_titles(5.0, 2, context)
