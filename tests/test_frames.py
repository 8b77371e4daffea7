"""load_frames on hostile files: PNG order, .npy headers, devices, importers (issue 31)."""

import logging
import os
import sys
import types
import zipfile

import cv2
import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.errors import InputError
from predrnn_tf.inference import frames
from predrnn_tf.inference.frames import RadarArchive, load_frames

RAIN = {"value_mapping": units.rain_rate_mapping(),
        "grid": {"pixel_km": 1.0, "interval_minutes": 5, "source_timestep_minutes": 5},
        "details": {"zr_a": 200.0, "zr_b": 1.6}}


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_png_frames_are_read_in_natural_order_and_named(tmp_path, caplog):
    for number in range(1, 11):  # 1.png ... 10.png, pixel value = the frame number
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.full((8, 8), number, np.uint8))
    with caplog.at_level(logging.WARNING):
        loaded = load_frames(str(tmp_path), None, channels=1)
    np.testing.assert_array_equal(np.round(loaded[0, :, 0, 0, 0] * 255), np.arange(1, 11))
    assert "read 10 frames, oldest to newest: 1.png, 2.png ... 10.png" in caplog.text
    assert frames.natural_key("frame2.png") < frames.natural_key("frame10.png")


def test_png_names_of_ambiguous_order_are_refused(tmp_path):
    for name in ("1.png", "01.png", "2.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError) as raised:
        load_frames(str(tmp_path), None, channels=1)
    assert "01.png and 1.png is ambiguous" in one_line(raised)


def test_an_npz_named_npy_is_named(tmp_path):
    np.savez(tmp_path / "a.npz", frames=np.zeros((3, 8, 8), np.uint8))
    os.rename(tmp_path / "a.npz", tmp_path / "a.npy")
    assert zipfile.is_zipfile(tmp_path / "a.npy")
    with pytest.raises(InputError) as raised:
        load_frames(str(tmp_path / "a.npy"), None)
    assert "is a .npz archive" in one_line(raised)


def test_a_header_claiming_ten_billion_frames_is_refused_unread(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as stream:
        np.lib.format.write_array_header_1_0(
            stream, {"descr": "|u1", "fortran_order": False, "shape": (10**10, 64, 64)})
        stream.write(b"\0" * 4096)
    with pytest.raises(InputError) as raised:
        load_frames(str(path), None)
    assert "header claims shape (10000000000, 64, 64)" in one_line(raised)
    assert "truncated or damaged" in str(raised.value)


def test_a_device_is_not_read_forever():
    with pytest.raises(InputError) as raised:
        load_frames("/dev/zero", None)
    assert "not a regular file" in one_line(raised)


def test_rain_rates_without_a_mapping_are_not_told_to_divide_by_255(tmp_path):
    np.save(tmp_path / "rain.npy", np.full((3, 8, 8), 2.5, np.float32))
    with pytest.raises(InputError) as raised:
        load_frames(str(tmp_path / "rain.npy"), None)
    assert "divide by 255" not in one_line(raised) and "data_card.json" in str(raised.value)
    np.save(tmp_path / "pixels.npy", np.full((3, 8, 8), 200.0, np.float32))
    with pytest.raises(InputError, match="divide by 255"):
        load_frames(str(tmp_path / "pixels.npy"), None)


def test_an_importer_missing_its_required_kwargs_is_one_line(monkeypatch, tmp_path):
    def importer(path, product):  # product is required, as mch_gif's is
        raise AssertionError("never reached")
    fake = types.SimpleNamespace(get_method=lambda name, kind: importer)
    monkeypatch.setitem(sys.modules, "pysteps", types.SimpleNamespace(io=fake))
    monkeypatch.setitem(sys.modules, "pysteps.io", fake)
    (tmp_path / "201705091000.gif").write_bytes(b"GIF89a")
    archive = RadarArchive("mch_gif", filename_pattern="%Y%m%d%H%M", source_pixel_km=1.0)
    with pytest.raises(InputError) as raised:
        load_frames(str(tmp_path / "*.gif"), radar_archive=archive, image_size=16,
                    metadata=RAIN)
    message = one_line(raised)
    assert "--importer=mch_gif" in message and "--importer_kwargs" in message
