"""Physical units of radar data: the one owner of every unit transform (numpy only).

A dataset stores frames as uint8 pixels ``p`` in 0..255; its metadata's ``value_mapping``
says what they mean::

    {"units": "dBZ", "scale": a, "offset": b, ...}     physical = a * p + b

and the model sees ``p / 255`` in [0, 1]. This module converts between those pixels and
physical units, and between radar quantities (reflectivity in dBZ, rain rate in mm/h,
accumulation in mm over an interval) through a Z-R relation ``Z = zr_a * R ** zr_b``.
It imports nothing of TensorFlow. :func:`pixels_to_units` / :func:`units_to_pixels` are the
one linear pixels <-> units pair of the package: they work on numpy arrays, Python numbers and
TensorFlow tensors alike (only ``*``, ``+``, ``-`` and ``/`` with Python floats, so a float
tensor keeps its dtype); the other functions here are numpy only.
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
    """[0, 1] pixels -> ``scale * 255 * pixels01 + offset`` of a linear ``value_mapping``.

    Args:
      pixels01: a numpy array, a number or a float TensorFlow tensor (any float dtype; the
        result keeps it).
      metadata: dataset metadata holding a ``value_mapping``, or a value mapping itself.

    Raises:
      DataError: when ``metadata`` has no value mapping.
    """
    mapping = _require_mapping(metadata)
    return pixels01 * (255.0 * float(mapping["scale"])) + float(mapping["offset"])


def units_to_pixels(values: Any, metadata: dict[str, Any] | None) -> Any:
    """Inverse of :func:`pixels_to_units`, not clipped: physical values -> [0, 1] pixels.

    Works on numpy arrays, numbers and float TensorFlow tensors alike.
    """
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


# ----------------------------------------------------------------------------- rain rate
#
# The radar recipe's training scale: rain rate R in mm/h stored in dBR = 10 log10(R).
#   pixel 0        no data (outside coverage): ignored by the loss, the metrics, the baselines
#   pixel 1        no rain (R below RAIN_RATE_FLOOR, stored as R = 0)
#   pixel p >= 2   dBR = scale * p + offset, linear from DBR_MIN (pixel 1) to DBR_MAX (255)
# The model sees p / 255, so it is trained on a log scale of the rain rate.
NO_DATA_PIXEL = 0
NO_RAIN_PIXEL = 1
# Pixels (0..255, also continuous forecasts) below this read as 0 mm/h: half a pixel above the
# no-rain pixel, so that a float32 1 / 255 * 255 (a hair above 1) is still no rain.
NO_RAIN_MARGIN = 0.5
DRY_BELOW_PIXEL = NO_RAIN_PIXEL + NO_RAIN_MARGIN
DBR_MIN = -10.0  # 0.1 mm/h
DBR_MAX = 23.0  # ~200 mm/h
DBR_SCALE = (DBR_MAX - DBR_MIN) / 254.0
DBR_OFFSET = DBR_MIN - DBR_SCALE * NO_RAIN_PIXEL
RAIN_RATE_FLOOR = 10.0 ** (DBR_MIN / 10.0)
RAIN_RATE_TRANSFORM = "dBR"


def rain_rate_mapping() -> dict[str, Any]:
    """The recipe's storage mapping (rain rate in dBR, pixel 0 = no data) as a value_mapping."""
    return {"units": "mm/h", "transform": RAIN_RATE_TRANSFORM, "scale": DBR_SCALE,
            "offset": DBR_OFFSET, "no_data_pixel": NO_DATA_PIXEL,
            "no_rain_pixel": NO_RAIN_PIXEL, "min": 0.0, "max": 10.0 ** (DBR_MAX / 10.0),
            "note": "dBR = 10 log10(R [mm/h]) = scale * pixel + offset for pixel >= 2; "
                    "pixel 1 = no rain (R < 0.1 mm/h, taken as 0); pixel 0 = no data"}


def is_rain_rate_mapping(metadata: dict[str, Any] | None) -> bool:
    """True if the (metadata's) value_mapping stores rain rate through the dBR transform."""
    mapping = mapping_of(metadata)
    return bool(mapping) and mapping.get("transform") == RAIN_RATE_TRANSFORM


def no_data_pixel(metadata: dict[str, Any] | None) -> int | None:
    """The uint8 pixel value meaning "no data", or None if the dataset has none."""
    mapping = mapping_of(metadata)
    value = (mapping or {}).get("no_data_pixel")
    return None if value is None else int(value)


def _rain_rate_to_raw_pixels(rate: np.ndarray, rounded: bool) -> np.ndarray:
    """Rain rate (mm/h) -> 0..255 pixels of :func:`rain_rate_mapping` (dry: the no-rain pixel)."""
    rate = np.asarray(rate, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dbr = 10.0 * np.log10(np.maximum(rate, RAIN_RATE_FLOOR))
    pixels = (dbr - DBR_OFFSET) / DBR_SCALE
    pixels = np.clip(np.round(pixels) if rounded else pixels, NO_RAIN_PIXEL, 255.0)
    return np.where(rate < RAIN_RATE_FLOOR, NO_RAIN_PIXEL, pixels)


def rain_rate_to_pixels(rate: np.ndarray) -> np.ndarray:
    """Rain rate (mm/h, NaN = no data) -> uint8 storage pixels of :func:`rain_rate_mapping`."""
    rate = np.asarray(rate, np.float64)
    pixels = _rain_rate_to_raw_pixels(rate, rounded=True)
    return np.where(np.isnan(rate), NO_DATA_PIXEL, pixels).astype(np.uint8)


def pixels_to_rain_rate(pixels01: np.ndarray, metadata: dict[str, Any] | None) -> np.ndarray:
    """[0, 1] pixels of a dBR dataset -> rain rate in mm/h (below pixel 1.5: 0 mm/h).

    No-data pixels are not special here (a forecast has none): use :func:`valid_pixels`.
    """
    mapping = _require_mapping(metadata)
    if mapping.get("transform") != RAIN_RATE_TRANSFORM:
        raise DataError(f"value_mapping {mapping.get('units')!r} is not a dBR rain-rate mapping")
    pixels01 = np.asarray(pixels01, np.float64)
    rate = np.power(10.0, pixels_to_units(pixels01, mapping) / 10.0)  # dBR -> mm/h
    dry_below = float(mapping.get("no_rain_pixel", NO_RAIN_PIXEL)) + NO_RAIN_MARGIN
    return np.where(pixels01 * 255.0 < dry_below, 0.0, rate)


def rain_rate_to_unit_pixels(rate: np.ndarray) -> np.ndarray:
    """Rain rate (mm/h) -> continuous [0, 1] pixels (inverse of :func:`pixels_to_rain_rate`)."""
    return _rain_rate_to_raw_pixels(rate, rounded=False) / 255.0


def valid_pixels(pixels01: np.ndarray, metadata: dict[str, Any] | None) -> np.ndarray:
    """Boolean mask of the pixels that hold data (all True without a no-data pixel value)."""
    pixels01 = np.asarray(pixels01)
    missing = no_data_pixel(metadata)
    if missing is None:
        return np.ones(pixels01.shape, bool)
    return np.round(pixels01 * 255.0).astype(np.int64) != missing


def pixels_to_values(pixels01: np.ndarray, metadata: dict[str, Any] | None) -> np.ndarray:
    """[0, 1] pixels -> physical values: mm/h for dBR datasets, else the linear mapping."""
    if is_rain_rate_mapping(metadata):
        return pixels_to_rain_rate(pixels01, metadata)
    return np.asarray(pixels_to_units(np.asarray(pixels01, np.float64), metadata))


def grid_spacing(metadata: dict[str, Any] | None) -> tuple[float, float]:
    """``(pixel_km, interval_minutes)`` of a dataset's metadata or data card (its ``grid`` or
    top level); ValueError when either is missing."""
    metadata = metadata or {}
    grid = {**metadata, **(metadata.get("grid") or {})}
    if "pixel_km" not in grid or "interval_minutes" not in grid:
        raise ValueError("metadata without pixel_km and interval_minutes (a data card's grid): "
                         "the grid spacing and time step are unknown")
    return float(grid["pixel_km"]), float(grid["interval_minutes"])


def rate_to_accumulation(rate: np.ndarray, minutes: float) -> np.ndarray:
    """Rain rate (mm/h) held for ``minutes`` -> accumulation in mm."""
    if minutes <= 0:
        raise ValueError(f"accumulation interval must be positive minutes, got {minutes}")
    return np.asarray(rate, np.float64) * (float(minutes) / 60.0)


def accumulation_to_rate(depth: np.ndarray, minutes: float) -> np.ndarray:
    """Accumulation in mm over ``minutes`` -> mean rain rate in mm/h."""
    if minutes <= 0:
        raise ValueError(f"accumulation interval must be positive minutes, got {minutes}")
    return np.asarray(depth, np.float64) * (60.0 / float(minutes))


def field_unit(info: dict[str, Any]) -> str:
    """A short name of an importer field's unit and transform (to detect mixed units)."""
    transform = info.get("transform")
    transform = None if transform in (None, "None") else transform
    return f"{info.get('unit')}" + (f" ({transform})" if transform else "")


def to_rain_rate(values: np.ndarray, info: dict[str, Any], zr_a: float = ZR_A,
                 zr_b: float = ZR_B) -> np.ndarray:
    """Converts an importer's field (pysteps ``unit``/``transform``/``accutime``) to mm/h.

    Reflectivity goes through ``Z = zr_a * R ** zr_b``; accumulations in mm over
    ``accutime`` minutes become their mean rate. NaN (no data) stays NaN.
    """
    unit, transform = info.get("unit"), info.get("transform")
    values = np.asarray(values, np.float64)
    if unit == "dBZ":
        with np.errstate(over="ignore", invalid="ignore"):
            rate = dbz_to_rain_rate(values, zr_a, zr_b)
        return np.where(np.isnan(values), np.nan, np.nan_to_num(rate, posinf=np.nan))
    if transform == "dB":
        values = 10.0 ** (values / 10.0)
    elif transform not in (None, "None"):
        raise DataError(f"cannot convert data with transform={transform!r} to mm/h")
    if unit == "mm":
        accutime = info.get("accutime")
        if not accutime:
            raise DataError("accumulation in mm without accutime (minutes): pass it in "
                            "--importer_kwargs")
        return accumulation_to_rate(values, float(accutime))
    if unit != "mm/h":
        raise DataError(f"cannot convert unit {unit!r} to mm/h (expected dBZ, mm/h or mm)")
    return values
