"""Physical units of radar data: the one owner of every unit transform (numpy only).

A dataset stores frames as uint8 pixels ``p`` in 0..255; its metadata's ``value_mapping``
says what they mean::

    {"units": "dBZ", "scale": a, "offset": b, ...}     physical = a * p + b

and the model sees ``p / 255`` in [0, 1]. This module converts between those pixels and
physical units, and between radar quantities (reflectivity in dBZ, rain rate in mm/h,
accumulation in mm over an interval) through a Z-R relation ``Z = zr_a * R ** zr_b``.
It imports nothing of TensorFlow; every function works on numpy arrays and on tensors that
support ``*`` and ``+`` (``pixels_to_units``, ``units_to_pixels``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predrnn_tf.errors import DataError

# HKO-7 storage mapping: dBZ = 70 * pixel / 255 - 10 (pixel 0 = no echo or no data).
HKO7_DBZ_MIN = -10.0
HKO7_DBZ_MAX = 60.0
HKO7_SCALE = (HKO7_DBZ_MAX - HKO7_DBZ_MIN) / 255.0
HKO7_OFFSET = HKO7_DBZ_MIN
ZR_A = 200.0  # Marshall-Palmer Z = 200 R^1.6
ZR_B = 1.6


def hko7_mapping() -> dict[str, Any]:
    """The HKO-7 dBZ storage mapping as a metadata ``value_mapping``."""
    return {"units": "dBZ", "scale": HKO7_SCALE, "offset": HKO7_OFFSET,
            "min": HKO7_DBZ_MIN, "max": HKO7_DBZ_MAX,
            "note": "dBZ = 70 * pixel / 255 - 10 (HKO-7); pixel 0 = no echo or no data"}


def mapping_of(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``value_mapping`` of dataset metadata (or of a mapping itself), or None."""
    if not metadata:
        return None
    if "scale" in metadata and "offset" in metadata:
        return dict(metadata)
    mapping = metadata.get("value_mapping")
    return dict(mapping) if mapping else None


def dbz_mapping(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metadata's ``value_mapping`` if it maps pixels to dBZ, else None."""
    mapping = mapping_of(metadata)
    if mapping and str(mapping.get("units", "")).lower() == "dbz":
        return mapping
    return None


def _require_mapping(metadata: dict[str, Any] | None) -> dict[str, Any]:
    mapping = mapping_of(metadata)
    if not mapping:
        name = (metadata or {}).get("name")
        raise DataError(f"dataset {name!r} has no value_mapping in its metadata")
    return mapping


def pixels_to_units(pixels01: Any, metadata: dict[str, Any] | None) -> Any:
    """Maps [0, 1] pixels to physical units with the metadata's (or a) ``value_mapping``."""
    mapping = _require_mapping(metadata)
    return pixels01 * (255.0 * float(mapping["scale"])) + float(mapping["offset"])


def units_to_pixels(values: Any, metadata: dict[str, Any] | None) -> Any:
    """Inverse of :func:`pixels_to_units`, not clipped: returns [0, 1]-scaled pixels."""
    mapping = _require_mapping(metadata)
    return (values - float(mapping["offset"])) / (255.0 * float(mapping["scale"]))


def quantize(values: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Physical values -> uint8 pixels with ``value = scale * pixel + offset``, clipped."""
    pixels = np.round((np.asarray(values, np.float64) - offset) / scale)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def floor_hko7_dbz(dbz: np.ndarray) -> np.ndarray:
    """dBZ with NaN (no data) and echoes below -10 dBZ set to -10 dBZ (HKO-7 "no echo")."""
    dbz = np.asarray(dbz)
    return np.where(np.isnan(dbz), HKO7_DBZ_MIN, np.maximum(dbz, HKO7_DBZ_MIN)).astype(
        np.result_type(dbz.dtype, np.float32))


def dbz_to_hko7_pixels(dbz: np.ndarray) -> np.ndarray:
    """dBZ -> HKO-7 uint8 pixels (NaN and values below -10 dBZ become 0)."""
    return quantize(floor_hko7_dbz(dbz), HKO7_SCALE, HKO7_OFFSET)


def rain_rate_to_dbz(rate: np.ndarray, zr_a: float = ZR_A, zr_b: float = ZR_B) -> np.ndarray:
    """Rain rate (mm/h) -> dBZ through ``Z = zr_a R^zr_b`` (no rain -> -inf, NaN stays)."""
    rate = np.asarray(rate, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dbz = 10.0 * np.log10(zr_a * np.power(np.maximum(rate, 0.0), zr_b))
    return np.where(np.isnan(rate), np.nan, dbz)


def dbz_to_rain_rate(dbz: np.ndarray, zr_a: float = ZR_A, zr_b: float = ZR_B) -> np.ndarray:
    """dBZ -> rain rate (mm/h), the inverse of :func:`rain_rate_to_dbz`."""
    dbz = np.asarray(dbz, np.float64)
    return np.power(np.power(10.0, dbz / 10.0) / zr_a, 1.0 / zr_b)


def to_dbz(values: np.ndarray, info: dict[str, Any], zr_a: float = ZR_A,
           zr_b: float = ZR_B) -> np.ndarray:
    """Converts an importer's field (pysteps metadata ``unit``/``transform``) to dBZ.

    NaN stays NaN; no rain becomes -inf. Rain rates use ``Z = zr_a * R ** zr_b``;
    accumulations in mm over ``accutime`` minutes are first turned into a rate in mm/h.
    """
    unit, transform = info.get("unit"), info.get("transform")
    values = np.asarray(values, np.float64)
    if unit == "dBZ":
        return values.astype(np.float32)
    if transform == "dB":
        values = 10.0 ** (values / 10.0)
    elif transform not in (None, "None"):
        raise DataError(f"cannot convert data with transform={transform!r} to dBZ")
    if unit == "mm":
        accutime = info.get("accutime")
        if not accutime:
            raise DataError("accumulation in mm without accutime (minutes): pass it in "
                            "--importer_kwargs")
        values = values * (60.0 / float(accutime))
    elif unit != "mm/h":
        raise DataError(f"cannot convert unit {unit!r} to dBZ (expected dBZ, mm/h or mm)")
    return rain_rate_to_dbz(values, zr_a, zr_b).astype(np.float32)
