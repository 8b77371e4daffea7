"""Radar converter: FMI/KNMI/PGM/NPY importers, dBZ conversion, gap-free windows, split."""

from __future__ import annotations

import datetime
import glob
import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from predrnn_tf.data import schema
from predrnn_tf.data.converters import imaging, radar, radar_conversion
from predrnn_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_FMI = os.path.join(REPO, "..", "shared", "data", "radar", "fmi_pgm")
FMI_PATTERN = "%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1"


def fmi_pixel_for(minute_index: int) -> int:
    """Frame k of a test archive is uniformly FMI pixel 60 + 2k (dBZ = k - 2)."""
    return 60 + 2 * minute_index


def write_fmi_pgm(path: str, pixels: np.ndarray, obstime: str) -> None:
    header = (f"P5\n# obstime {obstime}\n# projection_name SUOMI1\n"
              f"{pixels.shape[1]} {pixels.shape[0]}\n255\n").encode()
    with gzip.open(path, "wb") as handle:
        handle.write(header + pixels.astype(np.uint8).tobytes())


def write_fmi_archive(root: str, events: dict[str, list[int]]) -> list[str]:
    """Writes FMI-layout files: ``root/YYYYmmdd/YYYYmmddHHMM_fmi...pgm.gz``.

    ``events`` maps an event start ``YYYYmmddHHMM`` to the 5-minute slot numbers present.
    Each frame is 40 rows x 30 columns, the last 10 rows no data (255).
    """
    paths = []
    for start_text, slots in events.items():
        start = datetime.datetime.strptime(start_text, "%Y%m%d%H%M")
        folder = os.path.join(root, start_text[:8])
        os.makedirs(folder, exist_ok=True)
        for slot in slots:
            stamp = (start + datetime.timedelta(minutes=5 * slot)).strftime("%Y%m%d%H%M")
            pixels = np.full((40, 30), fmi_pixel_for(slot), np.uint8)
            pixels[30:] = 255
            path = os.path.join(folder, f"{stamp}_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz")
            write_fmi_pgm(path, pixels, stamp)
            paths.append(path)
    return paths


read_split = schema.read_split


def radar_options(tmp_path, **changes) -> radar_conversion.RadarOptions:
    values = dict(input_glob=str(tmp_path / "fmi" / "*" / "*.pgm.gz"),
                  output_dir=str(tmp_path / "out"), filename_pattern=FMI_PATTERN, name="fmi",
                  importer="fmi_pgm", importer_kwargs='{"gzipped": true}', image_size=16,
                  crop=(0, 0, 30, 30), total_length=4, stride=1)
    values.update(changes)
    return radar_conversion.RadarOptions(**values)


# ----------------------------------------------------------------------------- readers, frames


def test_read_pgm_binary_and_plain(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_fmi_pgm(str(tmp_path / "a.pgm.gz"), pixels, "201601010000")
    read, comments = radar.read_pgm(str(tmp_path / "a.pgm.gz"))
    np.testing.assert_array_equal(read, pixels)
    assert "obstime 201601010000" in comments
    (tmp_path / "b.pgm").write_text("P2\n# c\n2 2\n1000\n0 999\n5 1000\n")
    read, _ = radar.read_pgm(str(tmp_path / "b.pgm"))
    np.testing.assert_array_equal(read, [[0, 999], [5, 1000]])
    (tmp_path / "c.pgm").write_bytes(b"P5\n4 3\n255\n" + bytes(5))
    with pytest.raises(DataError, match="c.pgm: truncated PGM data"):
        radar.read_pgm(str(tmp_path / "c.pgm"))


def test_fmi_importer_mapping_and_no_data(tmp_path):
    pixels = np.array([[0, 64, 84], [255, 200, 254]], np.uint8)
    write_fmi_pgm(str(tmp_path / "f.pgm.gz"), pixels, "201601010000")
    values, info = radar.import_fmi_pgm(str(tmp_path / "f.pgm.gz"), gzipped=True)
    expected = 0.5 * pixels - 32.0
    assert np.isnan(values[1, 0]) and info["unit"] == "dBZ"
    np.testing.assert_allclose(values[0], expected[0])
    frame, no_data = imaging.prepare_radar_frame(values, info, image_size=3, crop=(0, 0, 2, 3))
    assert no_data == 1
    # dBZ -32 and the no-data pixel -> 0; 0 dBZ -> round(10 * 255 / 70) = 36; 10 dBZ -> 73.
    np.testing.assert_array_equal(frame[0], [0, 36, 73])
    assert frame[1, 0] == 0


def test_knmi_hdf5_builtin_importer(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "RAD_NL25_RAP_5min_201008260000.h5"
    raw = np.array([[0, 100], [65535, 1200]], np.uint16)
    with h5py.File(path, "w") as archive:
        image = archive.create_group("image1")
        image.create_dataset("image_data", data=raw)
        calibration = image.create_group("calibration")
        calibration.attrs["calibration_formulas"] = np.bytes_(b"GEO=0.01*PV+0.0")
        calibration.attrs["calibration_missing_data"] = np.array([65535], np.int32)
        calibration.attrs["calibration_out_of_image"] = np.array([65535], np.int32)
    values, info = radar.import_knmi_hdf5(str(path), accutime=5.0)
    np.testing.assert_allclose(values[[0, 0, 1], [0, 1, 1]], [0.0, 1.0, 12.0])
    assert np.isnan(values[1, 0]) and info == {"unit": "mm", "transform": None, "accutime": 5.0,
                                        "pixel_km": 1.0}
    frame, no_data = imaging.prepare_radar_frame(values, info, image_size=2)
    assert no_data == 1 and frame[0, 0] == 0 and frame[1, 0] == 0
    # 1 mm / 5 min = 12 mm/h -> 10 log10(200 * 12 ** 1.6) = 40.3 dBZ -> pixel 183.
    assert frame[0, 1] == round((10 * np.log10(200 * 12 ** 1.6) + 10) * 255 / 70)


def test_pysteps_importer_missing_is_clear(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysteps", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pysteps.io", None)
    with pytest.raises(ImportError, match="needs the optional package 'pysteps'"):
        radar.make_importer("mch_gif", {})  # refused before any file is read


def test_parse_timestamp():
    assert radar.parse_timestamp("201705090000") == datetime.datetime(2017, 5, 9)
    assert radar.parse_timestamp("2017-05-09T10:05") == datetime.datetime(2017, 5, 9, 10, 5)
    with pytest.raises(ValueError, match="expected a time like 201705090000"):
        radar.parse_timestamp("tomorrow")


def test_filename_pattern_with_wildcard_and_directory():
    pattern = radar.FilenamePattern("%Y%m%d/??_%H%M")
    assert pattern.timestamp("/data/20200102/xy_0345.pgm") == datetime.datetime(2020, 1, 2, 3, 45)
    with pytest.raises(DataError, match="does not match --filename_pattern"):
        pattern.timestamp("/data/20200102/xyz_0345.pgm")
    with pytest.raises(ValueError, match="unsupported code %Q"):
        radar.FilenamePattern("%Y%Q")


# ----------------------------------------------------------------------------- the converter


def test_convert_fmi_archive_windows_split_and_values(tmp_path):
    # Event 1: 12 frames with slot 5 missing; event 2 (next day): 9 frames.
    write_fmi_archive(str(tmp_path / "fmi"), {
        "201609281445": [slot for slot in range(12) if slot != 5],
        "201609291000": list(range(9)),
    })
    metadata = radar_conversion.convert_radar(radar_options(
        tmp_path, test_after=datetime.datetime(2016, 9, 29, 10, 20)))
    out = str(tmp_path / "out")
    train, test = read_split(out, "fmi", "train"), read_split(out, "fmi", "test")
    # Train: slots 0-4 (2 windows), 6-11 (3 windows) of event 1, slots 0-3 of event 2 (1).
    # Test: slots 4-8 of event 2 (2 windows); nothing straddles 10:20.
    train_ids = [sequence_id for _, sequence_id in train]
    assert train_ids == ["201609281445", "201609281450", "201609281515", "201609281520",
                         "201609281525", "201609291000"]
    assert [sequence_id for _, sequence_id in test] == ["201609291020", "201609291025"]
    for frames, sequence_id in train + test:
        assert frames.shape == (4, 16, 16, 1)
        start = datetime.datetime.strptime(sequence_id, "%Y%m%d%H%M")
        event_start = datetime.datetime(2016, 9, 28, 14, 45) if start.day == 28 else \
            datetime.datetime(2016, 9, 29, 10, 0)
        first_slot = int((start - event_start).total_seconds() // 300)
        for offset, frame in enumerate(frames[..., 0]):
            dbz = 0.5 * fmi_pixel_for(first_slot + offset) - 32.0
            expected = round((max(dbz, -10.0) + 10.0) * 255 / 70)
            assert set(np.unique(frame)) == {expected}
    assert (metadata["num_train"], metadata["num_test"]) == (6, 2)
    assert metadata["value_mapping"]["scale"] == pytest.approx(70 / 255)
    assert metadata["value_mapping"]["offset"] == -10.0
    # 10 no-data rows x 30 columns in each of the frames used (all but none: 20 frames).
    assert metadata["no_data_pixels"] == 300 * 20
    assert metadata["details"]["segments"][1] == ["train", "2016-09-28T15:15", 6]


def test_default_split_is_last_fifth_of_the_timeline(tmp_path):
    write_fmi_archive(str(tmp_path / "fmi"), {"201601010000": list(range(21))})
    metadata = radar_conversion.convert_radar(radar_options(tmp_path, stride=2))
    # 100 minutes: test from minute 80 = slot 16 on (5 frames -> 1 window of 4).
    assert metadata["details"]["test_after"] == "2016-01-01T01:20"
    assert (metadata["num_train"], metadata["num_test"]) == (7, 1)


def test_glob_matching_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="matches no file"):
        radar_conversion.convert_radar(radar_options(tmp_path))


def test_no_window_fits_is_a_clear_error(tmp_path):
    write_fmi_archive(str(tmp_path / "fmi"), {"201601010000": [0, 1, 2, 4, 5, 6]})
    with pytest.raises(DataError, match="no window of --total_length=4 frames fits"):
        radar_conversion.convert_radar(radar_options(tmp_path))
    assert not os.path.exists(str(tmp_path / "out" / "fmi-metadata.json"))


def test_npy_importer_in_rain_rate(tmp_path):
    os.makedirs(tmp_path / "npy")
    for minute in range(0, 50, 10):
        np.save(tmp_path / "npy" / f"rate_202001010{minute:03d}.npy", np.full((8, 8), 10.0))
    metadata = radar_conversion.convert_radar(radar_conversion.RadarOptions(
        input_glob=str(tmp_path / "npy" / "*.npy"), output_dir=str(tmp_path / "out"),
        filename_pattern="rate_%Y%m%d%H%M", importer="npy",
        importer_kwargs='{"unit": "mm/h"}', timestep_minutes=10, image_size=4, total_length=2,
        test_after=datetime.datetime(2020, 1, 1, 0, 30)))
    assert (metadata["num_train"], metadata["num_test"]) == (2, 1)
    frames, _ = read_split(str(tmp_path / "out"), "radar", "train")[0]
    expected = round((10 * np.log10(200 * 10 ** 1.6) + 10) * 255 / 70)
    assert set(np.unique(frames)) == {expected}


@pytest.mark.skipif(not os.path.isdir(SHARED_FMI), reason="shared radar data absent")
def test_real_fmi_frame_reads():
    path = sorted(glob.glob(os.path.join(SHARED_FMI, "*", "*.pgm.gz")))[0]
    values, _ = radar.import_fmi_pgm(path, gzipped=True)
    assert values.shape == (1226, 760) and 0.1 < np.isnan(values).mean() < 0.5


# ----------------------------------------------------------------------------- the tool


def run_tool(*arguments: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_radar.py"),
                           *arguments], capture_output=True, text=True, timeout=300, **kwargs)


def test_tool_bad_input_is_one_line_error(tmp_path):
    write_fmi_archive(str(tmp_path / "fmi"), {"201601010000": list(range(5))})
    common = [f"--input_glob={tmp_path}/fmi/*/*.pgm.gz", f"--output_dir={tmp_path}/out",
              f"--filename_pattern={FMI_PATTERN}"]
    cases = {
        "--importer_kwargs must be a JSON object": ["--importer_kwargs={gzipped: true}"],
    }
    for message, extra in cases.items():
        result = run_tool(*common, *extra)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode != 0, message
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not glob.glob(str(tmp_path / "out" / "*"))


def test_killed_conversion_leaves_no_finished_looking_shard(tmp_path):
    """SIGKILL mid-way (no clean-up runs): no shard or metadata under a final name."""
    slots = list(range(400))
    os.makedirs(tmp_path / "fmi" / "20160101")
    base = datetime.datetime(2016, 1, 1)
    pixels = np.full((300, 300), 100, np.uint8)
    for slot in slots:
        stamp = (base + datetime.timedelta(minutes=5 * slot)).strftime("%Y%m%d%H%M")
        write_fmi_pgm(str(tmp_path / "fmi" / "20160101" /
                          f"{stamp}_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz"), pixels, stamp)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "make_radar.py"),
         f"--input_glob={tmp_path}/fmi/*/*.pgm.gz", f"--output_dir={out}",
         f"--filename_pattern={FMI_PATTERN}", "--image_size=128", "--total_length=20",
         "--sequences_per_shard=10", "--name=fmi"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # the shard engine stages whole shards in OUT/.fmi.resumable (resumable.py)
            staged = [name for folder in glob.glob(str(out / ".fmi.resumable"))
                      for name in os.listdir(folder) if name.endswith(".tfrecord")]
            if len(staged) >= 2:
                break
            if process.poll() is not None:
                pytest.fail("the conversion finished before it could be interrupted")
            time.sleep(0.05)
        else:
            pytest.fail("no staged shard appeared")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert schema.shard_paths(str(out), "fmi", "train") == []
    assert schema.shard_paths(str(out), "fmi", "test") == []
    assert not os.path.exists(schema.metadata_path(str(out), "fmi"))
    visible = [name for name in os.listdir(out) if not name.startswith(".")]
    assert visible == []


def test_whole_test_frames_keep_every_valid_pixel(tmp_path):
    """Train tiles, test whole composites: valid extent grown to the multiple, read back."""
    os.makedirs(tmp_path / "npy")
    field = np.full((30, 26), np.nan)
    field[3:24, 5:22] = 2.0  # the valid extent: 21 x 17 pixels
    for minute in range(0, 60, 10):
        np.save(tmp_path / "npy" / f"rate_202001010{minute:03d}.npy", field + minute / 10)
    metadata = radar_conversion.convert_radar(radar_conversion.RadarOptions(
        input_glob=str(tmp_path / "npy" / "*.npy"), output_dir=str(tmp_path / "out"),
        filename_pattern="rate_%Y%m%d%H%M", importer="npy", importer_kwargs='{"unit": "mm/h"}',
        timestep_minutes=10, image_size=8, total_length=2, storage="rain_rate",
        pixel_km=2.0, source_pixel_km=2.0, min_valid_fraction=0.5,
        test_after=datetime.datetime(2020, 1, 1, 0, 30), whole_test_frames=True,
        whole_frame_multiple=8))
    assert (metadata["image_height"], metadata["image_width"]) == (8, 8)
    assert (metadata["test_image_height"], metadata["test_image_width"]) == (24, 24)
    assert metadata["whole_test_frames"]["box_on_recipe_grid"] == {
        "top": 2, "left": 2, "height": 24, "width": 24}
    frames, sequence_id = read_split(str(tmp_path / "out"), "radar", "test")[0]
    assert frames.shape == (2, 24, 24, 1) and sequence_id.endswith(":whole")
    assert (frames > 0).sum() == 2 * 21 * 17  # every valid pixel, nothing else
    assert frames[0, 1, 3, 0] > 0 and frames[0, 0, 3, 0] == 0 and frames[0, 1, 2, 0] == 0
    train, _ = read_split(str(tmp_path / "out"), "radar", "train")[0]
    assert train.shape == (2, 8, 8, 1)
    from predrnn_tf.data import reader
    dataset = reader.make_dataset(str(tmp_path / "out"), "radar", "test", 1, 2, shuffle=False,
                                  repeat=False, drop_remainder=False)
    assert next(iter(dataset)).shape == (1, 2, 24, 24, 1)
