"""Radar units: the HKO-7 storage mapping, pixels <-> units round trips, Z-R conversions."""

from __future__ import annotations

import numpy as np
import pytest

from predrnn_tf import units
from predrnn_tf.data import schema
from predrnn_tf.errors import DataError

# Hand-computed: 10 log10(200) = 23.0103 dBZ (1 mm/h); 10 log10(200 * 10^1.6) = 39.0103 dBZ
# (10 mm/h); Z = 300 R^1.4 at 2 mm/h: 300 * 2.639016 = 791.705, 10 log10 = 28.9856 dBZ.
DBZ_1_MM_H = 23.0103
DBZ_10_MM_H = 39.0103
DBZ_2_MM_H_300_1_4 = 28.9856


def test_hko7_endpoints():
    mapping = units.hko7_mapping()
    assert mapping["units"] == "dBZ"
    assert mapping["scale"] == pytest.approx(70 / 255) and mapping["offset"] == -10.0
    assert (mapping["min"], mapping["max"]) == (-10.0, 60.0)
    np.testing.assert_allclose(units.pixels_to_units(np.array([0.0, 1.0]), mapping),
                               [-10.0, 60.0], atol=1e-12)
    np.testing.assert_array_equal(units.dbz_to_hko7_pixels(np.array([-10.0, 60.0])), [0, 255])
    # 0 dBZ -> round(10 * 255 / 70) = round(36.43) = 36; 10 dBZ -> round(72.86) = 73.
    np.testing.assert_array_equal(units.dbz_to_hko7_pixels(np.array([0.0, 10.0])), [36, 73])


def test_every_pixel_survives_the_round_trips():
    pixels = np.arange(256)
    metadata = {"name": "x", "value_mapping": units.hko7_mapping()}
    dbz = units.pixels_to_units(pixels / 255.0, metadata)
    np.testing.assert_array_equal(units.dbz_to_hko7_pixels(dbz), pixels)
    np.testing.assert_allclose(units.units_to_pixels(dbz, metadata) * 255.0, pixels, atol=1e-9)
    other = {"units": "mm/h", "scale": 0.5, "offset": 3.0}
    np.testing.assert_allclose(units.pixels_to_units(pixels / 255.0, other), 0.5 * pixels + 3.0)
    np.testing.assert_array_equal(units.quantize(0.5 * pixels + 3.0, 0.5, 3.0), pixels)


def test_floor_no_data_and_out_of_range():
    dbz = np.array([np.nan, -40.0, -10.0, 61.0, 1e6], np.float32)
    np.testing.assert_array_equal(units.floor_hko7_dbz(dbz), [-10.0, -10.0, -10.0, 61.0, 1e6])
    assert units.floor_hko7_dbz(dbz).dtype == np.float32
    np.testing.assert_array_equal(units.dbz_to_hko7_pixels(dbz), [0, 0, 0, 255, 255])


def test_zr_against_hand_computed_values():
    dbz = units.rain_rate_to_dbz(np.array([1.0, 10.0, 0.0, np.nan]))
    np.testing.assert_allclose(dbz[:2], [DBZ_1_MM_H, DBZ_10_MM_H], atol=1e-4)
    assert dbz[2] == -np.inf and np.isnan(dbz[3])
    np.testing.assert_allclose(units.rain_rate_to_dbz(np.array([2.0]), 300.0, 1.4),
                               [DBZ_2_MM_H_300_1_4], atol=1e-4)
    np.testing.assert_allclose(units.dbz_to_rain_rate(np.array([DBZ_1_MM_H, DBZ_10_MM_H])),
                               [1.0, 10.0], rtol=1e-4)
    rates = np.array([0.1, 0.5, 3.0, 80.0])
    np.testing.assert_allclose(units.dbz_to_rain_rate(units.rain_rate_to_dbz(rates, 300.0, 1.4),
                                                      300.0, 1.4), rates, rtol=1e-12)
    assert units.dbz_to_rain_rate(np.array([-np.inf]))[0] == 0.0


def test_zr_takes_scalars():
    """Failed before the fix: NaN was restored by item assignment, impossible on a scalar."""
    assert float(units.rain_rate_to_dbz(1.0)) == pytest.approx(DBZ_1_MM_H, abs=1e-4)
    assert np.isnan(units.rain_rate_to_dbz(float("nan")))
    assert float(units.to_dbz(np.float64(10.0), {"unit": "mm/h"})) == pytest.approx(
        DBZ_10_MM_H, abs=1e-4)


def test_to_dbz_from_decibel_rain_rate():
    # 0 dBR is 1 mm/h, 10 dBR is 10 mm/h.
    info = {"unit": "mm/h", "transform": "dB", "accutime": None}
    np.testing.assert_allclose(units.to_dbz(np.array([0.0, 10.0]), info),
                               [DBZ_1_MM_H, DBZ_10_MM_H], atol=1e-4)
    with pytest.raises(DataError, match="transform='log'"):
        units.to_dbz(np.zeros(2), {"unit": "mm/h", "transform": "log"})
    with pytest.raises(DataError, match="without accutime"):
        units.to_dbz(np.zeros(2), {"unit": "mm", "transform": None})


def test_to_dbz_rain_rate_and_accumulation():
    info_rate = {"unit": "mm/h", "transform": None, "accutime": None}
    dbz = units.to_dbz(np.array([1.0, 10.0, 0.0, np.nan]), info_rate, 200.0, 1.6)
    np.testing.assert_allclose(dbz[:2], [10 * np.log10(200), 10 * np.log10(200 * 10 ** 1.6)],
                               rtol=1e-6)
    assert dbz[2] == -np.inf and np.isnan(dbz[3])
    info_accumulation = {"unit": "mm", "transform": None, "accutime": 5.0}
    # 1 mm in 5 minutes is 12 mm/h.
    np.testing.assert_allclose(units.to_dbz(np.array([1.0]), info_accumulation),
                               units.to_dbz(np.array([12.0]), info_rate), rtol=1e-6)
    with pytest.raises(DataError, match="cannot convert unit 'K'"):
        units.to_dbz(np.zeros(2), {"unit": "K"})


def test_storage_mapping_round_trip_matches_metadata():
    dbz = np.array([-20.0, -10.0, 0.0, 35.0, 60.0, 75.0, np.nan])
    pixels = units.dbz_to_hko7_pixels(dbz)
    np.testing.assert_array_equal(pixels[[0, 1, 4, 5, 6]], [0, 0, 255, 255, 0])
    metadata = {"value_mapping": units.hko7_mapping(), "name": "x"}
    back = units.pixels_to_units(pixels / 255.0, metadata)
    np.testing.assert_allclose(back[2:4], dbz[2:4], atol=70 / 255 / 2 + 1e-9)


def test_missing_mapping_names_the_dataset():
    with pytest.raises(DataError, match="dataset 'blobs' has no value_mapping"):
        units.pixels_to_units(np.zeros(2), {"name": "blobs", "value_mapping": None})
    with pytest.raises(DataError, match="no value_mapping"):
        units.units_to_pixels(np.zeros(2), None)
    assert units.dbz_mapping({"value_mapping": {"units": "mm/h", "scale": 1, "offset": 0}}) \
        is None
    assert units.dbz_mapping(units.hko7_mapping())["offset"] == -10.0


def test_schema_names_are_the_units_functions():
    """data.schema keeps its two names for older callers, but units.py owns the code."""
    assert schema.pixels_to_units is units.pixels_to_units
    assert schema.units_to_pixels is units.units_to_pixels


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_pixels_units_pair_works_on_tensors_like_numpy(dtype):
    import tensorflow as tf

    pixels01 = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    for mapping in (units.hko7_mapping(), units.rain_rate_mapping()):
        expected = units.pixels_to_units(pixels01.astype(np.float64), mapping)
        tensor = units.pixels_to_units(tf.constant(pixels01, dtype), {"value_mapping": mapping})
        assert tensor.dtype == tf.as_dtype(dtype)  # the tensor keeps its dtype
        tolerance = 1e-4 if dtype == "float32" else 0.6  # half precision: 8 / 11 bit mantissas
        np.testing.assert_allclose(tf.cast(tensor, tf.float64).numpy(), expected,
                                   atol=tolerance)
        back = units.units_to_pixels(tf.constant(expected, tf.float32), mapping)
        np.testing.assert_allclose(back.numpy(), pixels01, atol=1e-5)


def test_rain_rate_pixels_agree_with_the_linear_pair():
    mapping = units.rain_rate_mapping()
    pixels01 = np.arange(2, 256) / 255.0
    dbr = units.pixels_to_units(pixels01, mapping)
    np.testing.assert_allclose(units.pixels_to_rain_rate(pixels01, mapping),
                               10.0 ** (dbr / 10.0), rtol=1e-12)
    rates = units.pixels_to_rain_rate(pixels01, mapping)
    np.testing.assert_allclose(units.rain_rate_to_unit_pixels(rates), pixels01, atol=1e-9)
    np.testing.assert_array_equal(units.rain_rate_to_pixels(rates), np.arange(2, 256))
    assert units.rain_rate_to_pixels(np.array([np.nan, 0.0]))[0] == units.NO_DATA_PIXEL
    assert units.rain_rate_to_unit_pixels(np.array([0.0]))[0] * 255 == units.NO_RAIN_PIXEL
