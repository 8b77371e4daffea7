"""predrnn-predict on a radar archive: read through make_radar's importers, converted like the
training data (units, grid spacing, interval, frame size, no data), forecast in mm/h."""

import datetime
import gzip
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import checkpoints, units
from predrnn_tf.config import Config
from predrnn_tf.data import schema
from predrnn_tf.data.converters import radar_conversion
from predrnn_tf.errors import InputError
from predrnn_tf.inference import forecaster
from predrnn_tf.inference.frames import load_frames
from predrnn_tf.inference.outputs import to_physical
from predrnn_tf.inference.radar_input import RadarArchive, read_radar_archive, read_radar_sequence
from predrnn_tf.models.builder import build_model
from predrnn_tf.workdir import WorkDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
FMI_PATTERN = "%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1"
START = datetime.datetime(2017, 5, 9, 10, 0)
FMI = RadarArchive(importer="fmi_pgm", importer_kwargs={"gzipped": True},
                   filename_pattern=FMI_PATTERN)
RAIN = {"value_mapping": units.rain_rate_mapping(),
        "grid": {"pixel_km": 2.0, "interval_minutes": 10.0},
        "details": {"zr_a": 200.0, "zr_b": 1.6, "importer": "fmi_pgm"}}


def fmi_pixels(step: int) -> np.ndarray:
    """A 32 x 32 FMI frame (1 km pixels) that moves with ``step``; a 4 x 4 no-data block."""
    rows, columns = np.mgrid[0:32, 0:32]
    pixels = (60 + 2 * step + ((rows + 3 * columns + step) % 40)).astype(np.uint8)
    pixels[:4, :4] = 255  # FMI's no-data value
    return pixels


def write_fmi_archive(folder, steps=range(12)) -> None:
    """Gzipped FMI PGM composites every 5 minutes from START (``steps`` present)."""
    os.makedirs(folder, exist_ok=True)
    for step in steps:
        stamp = (START + datetime.timedelta(minutes=5 * step)).strftime("%Y%m%d%H%M")
        pixels = fmi_pixels(step)
        header = f"P5\n# obstime {stamp}\n32 32\n255\n".encode()
        path = os.path.join(folder, f"{stamp}_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz")
        with gzip.open(path, "wb") as handle:
            handle.write(header + pixels.tobytes())


@pytest.fixture(scope="module")
def rain_workdir(tmp_path_factory):
    """(workdir, archive folder): make_radar's rain-rate recipe on 12 FMI files -> a model."""
    root = tmp_path_factory.mktemp("radar")
    archive, data = str(root / "archive"), str(root / "data")
    write_fmi_archive(archive)
    radar_conversion.convert_radar(radar_conversion.RadarOptions(
        input_glob=os.path.join(archive, "*.pgm.gz"), output_dir=data, name="fmi",
        filename_pattern=FMI_PATTERN, importer="fmi_pgm", importer_kwargs='{"gzipped": true}',
        timestep_minutes=5, image_size=16, total_length=6, storage="rain_rate", pixel_km=2,
        interval_minutes=10, tile_stride=16, test_after=datetime.datetime(2030, 1, 1)))
    config = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16,
                    input_length=3, total_length=6, dataset_name="fmi", data_dir=data)
    workdir = str(root / "run")
    step = tf.Variable(3, dtype=tf.int64, trainable=False, name="step")
    checkpoints.make_manager(tf.train.Checkpoint(model=build_model(config), step=step),
                             workdir).save()
    WorkDir(workdir).save_config(config)
    return workdir, archive


def test_archive_frames_equal_the_training_records(rain_workdir):
    workdir, archive = rain_workdir
    model = forecaster.from_workdir(workdir)
    assert model.value_mapping["transform"] == "dBR" and model.data["grid"]["pixel_km"] == 2
    frames = load_frames(os.path.join(archive, "*.pgm.gz"), model.value_mapping,
                         radar_archive=FMI, image_size=16, metadata=model.data, last_frames=6)
    data_dir = os.path.join(os.path.dirname(workdir), "data")
    records = dict((name, pixels) for pixels, name in schema.read_split(data_dir, "fmi", "train"))
    newest_window = records[f"{START + datetime.timedelta(minutes=5):%Y%m%d%H%M}:0:0"]
    assert frames.shape == (1, 6, 16, 16, 1)  # files 1, 3, .., 11: every 10 min, like training
    np.testing.assert_array_equal(np.round(frames[0] * 255).astype(np.uint8), newest_window)
    assert (frames[0, :, :2, :2] == 0).all() and (frames[0, :, 2:, 2:] > 0).all()  # no data


def test_command_line_forecast_from_an_archive_is_in_mm_per_hour(rain_workdir, tmp_path):
    workdir, archive = rain_workdir
    result = subprocess.run(
        [sys.executable, "-m", "predrnn_tf.cli.predict", f"--workdir={workdir}",
         f"--input={archive}/*.pgm.gz", "--importer=fmi_pgm",
         '--importer_kwargs={"gzipped": true}', f"--filename_pattern={FMI_PATTERN}",
         f"--output_dir={tmp_path / 'out'}"], cwd=REPO, env=ENV, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1, result.stdout  # no pysteps banner
    summary = json.loads(result.stdout)
    assert summary["units"] == "mm/h" and summary["input_frames"] == 3
    model = forecaster.from_workdir(workdir)
    frames = load_frames(os.path.join(archive, "*.pgm.gz"), model.value_mapping,
                         radar_archive=FMI, image_size=16, metadata=model.data, last_frames=3)
    expected = units.pixels_to_rain_rate(model.forecast(frames), model.value_mapping)
    predictions = np.load(tmp_path / "out" / "predictions.npy")
    assert predictions.shape == (1, 3, 16, 16, 1) and np.nanmin(predictions) >= 0
    covered = frames[:, -1:] > 0  # NaN where the newest input has no data
    np.testing.assert_array_equal(np.isnan(predictions), np.broadcast_to(~covered,
                                                                         predictions.shape))
    np.testing.assert_allclose(predictions[covered.repeat(3, 1)],
                               expected[covered.repeat(3, 1)], rtol=1e-3, atol=1e-3)
    times = [entry["time_utc"] for entry in summary["files"]]
    assert times == ["2017-05-09T10:35:00Z", "2017-05-09T10:45:00Z", "2017-05-09T10:55:00Z"]
    assert len(summary["skipped_files"]) == 2 and "skipped 2 files" in result.stderr
    assert sorted(os.listdir(tmp_path / "out" / "maps"))[-1] == "input_-20min.png"


def one_line_error(function, *args, **kwargs) -> str:
    with pytest.raises(InputError) as raised:
        function(*args, **kwargs)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_archive_errors_are_one_line_naming_the_flag_or_file(tmp_path):
    write_fmi_archive(str(tmp_path / "gap"), steps=[0, 1, 3, 4, 5, 6])  # 10:10 missing
    glob_ = str(tmp_path / "gap" / "*.pgm.gz")
    assert "no file for 2017-05-09 10:10" in one_line_error(
        read_radar_archive, glob_, FMI, 16, RAIN, 3)
    assert read_radar_archive(glob_, FMI, 16, RAIN, 2).shape == (2, 16, 16, 1)
    assert read_radar_archive(glob_, FMI, 16, RAIN).shape == (2, 16, 16, 1)  # gap-free chain
    assert "--filename_pattern is required" in one_line_error(
        read_radar_archive, glob_, RadarArchive("fmi_pgm"), 16, RAIN, 2)
    assert "smaller than the model's 32x32" in one_line_error(
        read_radar_archive, glob_, FMI, 32, RAIN, 2)
    assert "matches no radar file" in one_line_error(
        read_radar_archive, str(tmp_path / "none*"), FMI, 16, RAIN, 2)
    assert "trained on radar data" in one_line_error(
        read_radar_archive, glob_, FMI, 16, {"value_mapping": None}, 2)
    for step in range(3):
        stamp = START + datetime.timedelta(minutes=5 * step)
        np.save(tmp_path / f"{stamp:%Y%m%d%H%M}.npy", np.ones((32, 32), np.float32))
    npy = RadarArchive("npy", {"unit": "mm/h"}, filename_pattern="%Y%m%d%H%M")
    assert "--source_pixel_km" in one_line_error(
        read_radar_archive, str(tmp_path / "*.npy"), npy, 16, RAIN, 2)
    with_spacing = RadarArchive("npy", {"unit": "mm/h"}, "%Y%m%d%H%M", source_pixel_km=1.0)
    frames = read_radar_archive(str(tmp_path / "*.npy"), with_spacing, 16, RAIN, 2)
    np.testing.assert_array_equal(frames * 255, np.round(frames * 255))  # stored pixels
    assert (np.round(frames * 255) == units.rain_rate_to_pixels(np.ones(1))[0]).all()


def test_a_pysteps_importer_without_pysteps_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pysteps", None)  # import pysteps raises ImportError
    monkeypatch.setitem(sys.modules, "pysteps.io", None)
    np.save(tmp_path / "201705091000.npy", np.ones((32, 32), np.float32))
    with pytest.raises(ImportError) as raised:
        read_radar_archive(str(tmp_path / "*.npy"),
                           RadarArchive("mch_gif", filename_pattern="%Y%m%d%H%M"), 16, RAIN, 1)
    message = str(raised.value)
    assert "pip install pysteps" in message and "\n" not in message


def fake_pysteps(monkeypatch, fields: dict[str, np.ndarray]) -> None:
    """A ``pysteps.io`` whose importer returns ``fields[basename]`` in mm/h on a 500 m grid."""
    def importer(path, **kwargs):
        assert kwargs == {"product": "AQC"}
        info = {"unit": "mm/h", "transform": None, "accutime": 5.0, "xpixelsize": 500.0,
                "projection": "+proj=somerc +units=m"}
        return fields[os.path.basename(path)], None, info

    install_pysteps_importer(monkeypatch, importer)


def install_pysteps_importer(monkeypatch, importer) -> None:
    """A fake ``pysteps.io`` whose importer ``fake_gif`` is ``importer``."""
    module = types.ModuleType("pysteps.io")
    module.get_method = lambda name, kind: importer if name == "fake_gif" else None
    package = types.ModuleType("pysteps")
    package.io = module
    monkeypatch.setitem(sys.modules, "pysteps", package)
    monkeypatch.setitem(sys.modules, "pysteps.io", module)


def test_pysteps_importer_regrids_from_metres_and_keeps_no_data(monkeypatch, tmp_path):
    fields = {}
    for step in range(5):  # every 5 min; the model wants every 10 min
        name = f"AQC{(START + datetime.timedelta(minutes=5 * step)):%Y%m%d%H%M}.gif"
        field = np.full((80, 64), 0.5 * (step + 1), np.float32)  # 40 x 32 km at 500 m
        field[8:16, :8] = np.nan  # 4 x 4 km without data -> 2 x 2 recipe pixels
        fields[name] = field
        (tmp_path / name).write_bytes(b"")
    fake_pysteps(monkeypatch, fields)
    archive = RadarArchive("fake_gif", {"product": "AQC"}, filename_pattern="AQC%Y%m%d%H%M")
    frames = read_radar_archive(str(tmp_path), archive, 16, RAIN, 3)
    assert frames.shape == (3, 16, 16, 1)  # 20 x 16 recipe pixels -> rows 2..17
    pixels = units.rain_rate_to_pixels(np.array([0.5, 1.5, 2.5]))  # steps 0, 2, 4
    expected = np.broadcast_to(pixels[:, None, None, None], frames.shape).copy()
    expected[:, :2, :2] = units.NO_DATA_PIXEL  # source rows 8-15, columns 0-7
    np.testing.assert_allclose(frames * 255.0, expected, atol=1e-4)


def test_pysteps_importer_grid_reaches_the_georeference_in_one_read(monkeypatch, tmp_path):
    """The corners and yorigin of pysteps' metadata give the frame's map coordinates (what
    the netCDF writer reads) from the one read of each file: no second read to find them."""
    reads = []
    fields = {}
    for step in range(3):
        name = f"AQC{(START + datetime.timedelta(minutes=10 * step)):%Y%m%d%H%M}.gif"
        fields[name] = np.full((80, 64), 1.0 + step, np.float32)  # 40 x 32 km at 500 m
        (tmp_path / name).write_bytes(b"")

    def importer(path, **kwargs):
        reads.append(os.path.basename(path))
        info = {"unit": "mm/h", "transform": None, "accutime": 5.0, "xpixelsize": 500.0,
                "ypixelsize": 500.0, "projection": "+proj=somerc +units=m",
                "x1": 255000.0, "y1": -160000.0, "x2": 255000.0 + 64 * 500.0,
                "y2": -160000.0 + 80 * 500.0, "yorigin": "upper", "cartesian_unit": "m"}
        return fields[os.path.basename(path)], None, info

    install_pysteps_importer(monkeypatch, importer)
    archive = RadarArchive("fake_gif", {}, filename_pattern="AQC%Y%m%d%H%M")
    sequence = read_radar_sequence(str(tmp_path), archive, 16, RAIN, 3, patch_size=4)
    assert sorted(reads) == sorted(fields)  # each file once
    grid = sequence.georeference
    assert (grid.height, grid.width) == sequence.pixels.shape[1:3] == (20, 16)
    assert (grid.x1, grid.y1, grid.x2, grid.y2) == (255000.0, -160000.0, 287000.0, -120000.0)
    assert grid.yorigin == "upper" and grid.xpixelsize == grid.ypixelsize == 2000.0
    assert grid.pysteps_metadata()["projection"] == "+proj=somerc +units=m"


def test_float_npy_of_a_rain_rate_model_is_mm_per_hour(tmp_path):
    mapping = units.rain_rate_mapping()
    rates = np.full((3, 16, 16), 2.0, np.float32)
    rates[0, 0, 0], rates[1, 0, 0] = np.nan, 0.0
    np.save(tmp_path / "rates.npy", rates)
    frames = load_frames(str(tmp_path / "rates.npy"), mapping)
    assert frames[0, 0, 0, 0, 0] == 0.0  # no data
    assert frames[0, 1, 0, 0, 0] == pytest.approx(units.NO_RAIN_PIXEL / 255.0)
    np.testing.assert_allclose(to_physical(frames, mapping)[0, 2], 2.0, rtol=1e-6)
    np.save(tmp_path / "negative.npy", -rates)
    assert "negative rain rates" in one_line_error(load_frames, str(tmp_path / "negative.npy"),
                                                   mapping)


def test_units_come_from_the_data_card_when_the_dataset_is_gone(tmp_path):
    workdir = str(tmp_path / "run")
    work = WorkDir(workdir)
    work.write_data_card(RAIN, "fmi")
    work.save_config(Config(dataset_name="fmi", data_dir=str(tmp_path / "gone")))
    metadata = forecaster.workdir_metadata(work)
    assert metadata["value_mapping"] == units.rain_rate_mapping()
    assert metadata["grid"]["interval_minutes"] == 10.0 and metadata["units_from"] == "workdir"
    card = work.data_card
    assert forecaster.export_metadata({"data_card": card})["grid"]["pixel_km"] == 2.0
    assert forecaster.export_metadata({"workdir": workdir})["value_mapping"]["transform"] == "dBR"
    assert forecaster.export_metadata({"value_mapping": None}) is None
