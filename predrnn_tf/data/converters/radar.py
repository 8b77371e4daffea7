"""Radar archives: file-name time stamps and importers (decoding one file to a field).

Importers take one file and return ``(values, info)`` like pysteps' importers: ``values`` a
float 2-D field with NaN where there is no data, ``info`` a dict with at least ``unit``
(``"dBZ"``, ``"mm/h"`` or ``"mm"``), ``transform`` (None or ``"dB"``) and ``accutime``
(minutes, for ``"mm"``). Built in, without pysteps:

- ``fmi_pgm``: FMI composites, (gzipped) 8-bit PGM, dBZ = 0.5 * pixel - 32, 255 = no data.
- ``knmi_hdf5``: KNMI 5-minute accumulations (HDF5 via h5py), mm = 0.01 * value,
  65535 = no data (calibration read from the file).
- ``pgm`` / ``png``: grayscale images with ``units = pixel_scale * pixel + pixel_offset``
  and an optional no-data pixel value.
- ``npy``: one 2-D array per file, unit from the importer kwargs.

Any other name is looked up in ``pysteps.io`` (imported lazily).

Units are not converted here: :func:`predrnn_tf.units.to_dbz` turns a field into dBZ and
:func:`predrnn_tf.data.converters.imaging.prepare_radar_frame` into the stored HKO-7
pixels (``dBZ = 70 * pixel / 255 - 10``, the dataset's ``value_mapping``).
"""

from __future__ import annotations

import datetime
import gzip
import importlib
import json
import os
import re
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from predrnn_tf.data.converters import imaging
from predrnn_tf.errors import ConfigError, DataError

BUILTIN_IMPORTERS = ("fmi_pgm", "knmi_hdf5", "pgm", "png", "npy")

# What import_with_pysteps keeps of a pysteps importer's metadata: units and the grid.
PYSTEPS_INFO_KEYS = ("unit", "transform", "accutime", "xpixelsize", "ypixelsize", "projection",
                     "x1", "y1", "x2", "y2", "yorigin", "cartesian_unit")
Importer = Callable[[str], tuple[np.ndarray, dict[str, Any]]]

_PATTERN_CODES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}",
    "M": r"\d{2}", "S": r"\d{2}", "j": r"\d{3}",
}


# ----------------------------------------------------------------------------- time stamps


class FilenamePattern:
    """A pysteps ``fn_pattern``: strftime codes for the time stamp, ``?`` any one character.

    The pattern is matched at the start of the file name (the extension may follow); a
    pattern with ``/`` matches the same number of trailing path components.

    Args:
      pattern: e.g. ``"%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1"``.
    """

    def __init__(self, pattern: str):
        if not pattern:
            raise ConfigError("--filename_pattern must not be empty")
        self.pattern = pattern
        self.codes: list[str] = []
        parts = []
        index = 0
        while index < len(pattern):
            character = pattern[index]
            if character == "%":
                code = pattern[index + 1:index + 2]
                if code == "%":
                    parts.append("%")
                elif code in _PATTERN_CODES:
                    parts.append(f"({_PATTERN_CODES[code]})")
                    self.codes.append(code)
                else:
                    raise ConfigError(f"--filename_pattern={pattern!r}: unsupported code %{code} "
                                     f"(supported: {', '.join('%' + c for c in _PATTERN_CODES)})")
                index += 2
                continue
            parts.append("." if character == "?" else re.escape(character))
            index += 1
        if not {"Y", "y"} & set(self.codes):
            raise ConfigError(f"--filename_pattern={pattern!r} has no year (%Y or %y)")
        self.regex = re.compile("".join(parts))
        self.depth = pattern.count("/") + 1

    def timestamp(self, path: str) -> datetime.datetime:
        """The time stamp in ``path``; DataError naming the file if it does not match."""
        components = os.path.normpath(path).split(os.sep)
        name = "/".join(components[-self.depth:])
        match = self.regex.match(name)
        if not match:
            raise DataError(f"{path}: file name does not match --filename_pattern="
                            f"{self.pattern!r}")
        seen: dict[str, str] = {}
        for code, text in zip(self.codes, match.groups(), strict=True):
            seen.setdefault(code, text)
        formats = "|".join(f"%{code}" for code in seen)
        try:
            return datetime.datetime.strptime("|".join(seen.values()), formats)
        except ValueError as error:
            raise DataError(f"{path}: invalid time stamp for --filename_pattern="
                            f"{self.pattern!r} ({error})") from error


def parse_timestamp(text: str) -> datetime.datetime:
    """Parses ``YYYYmmddHHMM`` (or ``YYYYmmdd``, ``YYYYmmddHHMMSS``, ISO 8601)."""
    for layout in ("%Y%m%d%H%M", "%Y%m%d", "%Y%m%d%H%M%S"):
        try:
            return datetime.datetime.strptime(text, layout)
        except ValueError:
            pass
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"expected a time like 201705090000 (YYYYmmddHHMM), got {text!r}") \
            from error


# ----------------------------------------------------------------------------- readers


def read_pgm(path: str, gzipped: bool | None = None) -> tuple[np.ndarray, list[str]]:
    """Reads a binary (P5) or plain (P2) PGM, optionally gzipped.

    Args:
      path: the file.
      gzipped: True/False, or None to detect from the content.

    Returns:
      The pixels (uint8, or uint16 when maxval > 255) ``[rows, columns]`` and the comment
      lines (without ``#``).
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read()
        if gzipped or (gzipped is None and content[:2] == b"\x1f\x8b"):
            content = gzip.decompress(content)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    magic = content[:2]
    if magic not in (b"P5", b"P2"):
        raise DataError(f"{path}: not a PGM file (magic {magic!r}, expected P5 or P2)")
    (width, height, maxval), comments, position = _read_pgm_header(path, content)
    if magic == b"P2":
        values = np.array(content[position:].split()[:width * height], np.int64)
        if values.size < width * height:
            raise DataError(f"{path}: truncated PGM data")
        dtype = np.uint8 if maxval < 256 else np.uint16
        return values.astype(dtype).reshape(height, width), comments
    position += 1  # the single whitespace after maxval
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    expected = width * height * dtype.itemsize
    if len(content) - position < expected:
        raise DataError(f"{path}: truncated PGM data: {height}x{width} pixels need {expected} "
                        f"bytes, {len(content) - position} present")
    pixels = np.frombuffer(content, dtype, width * height, offset=position)
    return pixels.reshape(height, width).astype(dtype.newbyteorder("=")), comments


def _read_pgm_header(path: str, content: bytes) -> tuple[tuple[int, int, int], list[str], int]:
    """((width, height, maxval), comment lines, position after maxval) of a PGM's header."""
    tokens: list[bytes] = []
    comments: list[str] = []
    position = 2
    while len(tokens) < 3:
        while position < len(content) and content[position:position + 1].isspace():
            position += 1
        if position >= len(content):
            raise DataError(f"{path}: truncated PGM header")
        if content[position:position + 1] == b"#":
            end = content.find(b"\n", position)
            end = len(content) if end < 0 else end
            comments.append(content[position + 1:end].decode("latin-1").strip())
            position = end + 1
            continue
        start = position
        while position < len(content) and not content[position:position + 1].isspace():
            position += 1
        tokens.append(content[start:position])
    try:
        width, height, maxval = (int(token) for token in tokens)
    except ValueError as error:
        raise DataError(f"{path}: bad PGM header {tokens}") from error
    if width < 1 or height < 1 or not 0 < maxval < 65536:
        raise DataError(f"{path}: bad PGM header width={width} height={height} maxval={maxval}")
    return (width, height, maxval), comments, position


def import_grayscale(
    path: str, pixel_scale: float, pixel_offset: float, no_data_pixel: int | None, unit: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """A PGM/PNG image whose pixels map to ``unit`` as ``scale * pixel + offset``."""
    if path.lower().endswith((".pgm", ".pgm.gz", ".pnm")):
        pixels, _ = read_pgm(path)
    else:
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise DataError(f"{path}: cannot decode as an image")
        pixels = imaging.to_grayscale(raw)
    values = pixels.astype(np.float32) * pixel_scale + pixel_offset
    if no_data_pixel is not None:
        values[pixels == no_data_pixel] = np.nan
    return values, {"unit": unit, "transform": None, "accutime": None}


def import_fmi_pgm(path: str, gzipped: bool | None = None, **kwargs) -> tuple[np.ndarray, dict]:
    """FMI composite PGM: dBZ = 0.5 * pixel - 32, pixel 255 = no data (pysteps-compatible)."""
    _reject_kwargs("fmi_pgm", kwargs)
    pixels, _ = read_pgm(path, gzipped)
    values = pixels.astype(np.float32) * 0.5 - 32.0
    values[pixels == 255] = np.nan
    return values, {"unit": "dBZ", "transform": "dB", "accutime": 5.0, "pixel_km": 1.0}


def import_knmi_hdf5(
    path: str, qty: str = "ACRR", accutime: float = 5.0, pixelsize: float = 1000.0, **kwargs
) -> tuple[np.ndarray, dict]:
    """KNMI radar accumulation composite (HDF5, read with h5py): mm over ``accutime``."""
    _reject_kwargs("knmi_hdf5", kwargs)
    if qty != "ACRR":
        raise ValueError(f"the built-in knmi_hdf5 importer reads qty='ACRR' only, got {qty!r}; "
                         f"install pysteps and pass --use_pysteps for others")
    if pixelsize != 1000.0:
        raise ValueError(f"the built-in knmi_hdf5 importer reads the native 1000 m grid, got "
                         f"pixelsize={pixelsize}; use --image_size to downsample")
    h5py = _import_optional("h5py", "the knmi_hdf5 importer")
    try:
        with h5py.File(path, "r") as archive:
            image = archive["image1"]
            raw = image["image_data"][...]
            calibration = image["calibration"].attrs
            formula = _attribute_text(calibration.get("calibration_formulas", b"GEO=0.01*PV+0.0"))
            missing = int(np.ravel(calibration.get("calibration_missing_data", [65535]))[0])
            outside = int(np.ravel(calibration.get("calibration_out_of_image", [65535]))[0])
    except (OSError, KeyError) as error:
        raise DataError(f"{path}: not a KNMI radar HDF5 file ({error})") from error
    gain, offset = _parse_calibration(path, formula)
    values = raw.astype(np.float32) * gain + offset
    values[(raw == missing) | (raw == outside)] = np.nan
    return values, {"unit": "mm", "transform": None, "accutime": float(accutime),
                    "pixel_km": float(pixelsize) / 1000.0}


def import_npy(path: str, unit: str = "dBZ", accutime: float = 5.0, transform: Any = None,
               **kwargs) -> tuple[np.ndarray, dict]:
    """One 2-D array per ``.npy`` file, in ``unit`` (NaN = no data)."""
    _reject_kwargs("npy", kwargs)
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise DataError(f"{path} is not a .npy array (no .npy header): --importer=npy reads "
                            f".npy files only; choose the importer of this file's format")
    try:
        values = np.load(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as .npy ({error})") from error
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2:
        raise DataError(f"{path}: expected a 2-D field, got shape {values.shape}")
    return values.astype(np.float32), {"unit": unit, "transform": transform,
                                       "accutime": accutime}


def import_with_pysteps(name: str, path: str, kwargs: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """Any ``pysteps.io`` importer by name (pysteps imported on first use).

    The info keeps the units and the grid of pysteps' metadata (``PYSTEPS_INFO_KEYS``: the
    corners ``x1, y1, x2, y2``, ``yorigin`` and the projection), so the forecast's netCDF gets
    the map coordinates from this one read.
    """
    pysteps_io = _import_optional("pysteps.io", f"the pysteps importer {name!r}",
                                  package="pysteps")
    try:
        importer = pysteps_io.get_method(name, "importer")
    except ValueError as error:
        raise ConfigError(f"--importer={name!r} is not a built-in ({', '.join(BUILTIN_IMPORTERS)})"
                         f" nor a pysteps importer ({error})") from error
    try:
        values, _, info = importer(path, **kwargs)
    except (OSError, KeyError) as error:
        raise DataError(f"{path}: pysteps importer {name!r} failed ({error})") from error
    except Exception as error:
        if type(error).__name__ == "MissingOptionalDependency":
            raise ImportError(f"the pysteps importer {name!r} needs an optional package: "
                              f"{error}") from error
        raise
    values = np.asarray(values, np.float32)
    return values, {key: info.get(key) for key in PYSTEPS_INFO_KEYS}


def check_importer_name(name: str, use_pysteps: bool = False) -> None:
    """ValueError (one line) if ``name`` is neither a built-in nor a pysteps importer."""
    if name in BUILTIN_IMPORTERS and not use_pysteps:
        return
    pysteps_io = _import_optional("pysteps.io", f"the pysteps importer {name!r}",
                                  package="pysteps")
    try:
        pysteps_io.get_method(name, "importer")
    except ValueError:
        raise ConfigError(f"--importer={name!r} is neither a built-in importer "
                         f"({', '.join(BUILTIN_IMPORTERS)}) nor a pysteps.io importer") from None


def parse_importer_kwargs(text: str) -> dict[str, Any]:
    """``--importer_kwargs`` JSON object -> dict."""
    try:
        values = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ConfigError(f"--importer_kwargs must be a JSON object, got {text!r} ({error})") \
            from error
    if not isinstance(values, dict):
        raise ConfigError(f"--importer_kwargs must be a JSON object, got {text!r}")
    return values


def make_importer(
    name: str,
    kwargs: dict[str, Any],
    *,
    use_pysteps: bool = False,
    pixel_scale: float = 1.0,
    pixel_offset: float = 0.0,
    no_data_pixel: int | None = None,
    pixel_unit: str = "dBZ",
) -> Importer:
    """Returns ``path -> (values, info)`` for ``--importer=name`` and its kwargs."""
    kwargs = dict(kwargs)
    check_importer_name(name, use_pysteps)
    if use_pysteps or name not in BUILTIN_IMPORTERS:
        return lambda path: import_with_pysteps(name, path, kwargs)
    if name == "fmi_pgm":
        return lambda path: import_fmi_pgm(path, **kwargs)
    if name == "knmi_hdf5":
        return lambda path: import_knmi_hdf5(path, **kwargs)
    if name == "npy":
        return lambda path: import_npy(path, **kwargs)
    _reject_kwargs(name, kwargs)
    return lambda path: import_grayscale(path, pixel_scale, pixel_offset, no_data_pixel,
                                         pixel_unit)


# ----------------------------------------------------------------------------- helpers


def _reject_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise ValueError(f"--importer_kwargs: the {name} importer does not take "
                         f"{sorted(kwargs)}")


def _import_optional(module: str, purpose: str, package: str | None = None) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{purpose} needs the optional package "
                          f"'{package or module}' (pip install {package or module}): "
                          f"{error}") from error


def _attribute_text(value: Any) -> str:
    value = np.ravel(value)[0] if isinstance(value, np.ndarray) else value
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _parse_calibration(path: str, formula: str) -> tuple[float, float]:
    match = re.fullmatch(r"\s*GEO\s*=\s*([-+0-9.eE]+)\s*\*\s*PV\s*([-+]\s*[0-9.eE]+)?\s*",
                         formula)
    if not match:
        raise DataError(f"{path}: unsupported calibration formula {formula!r}")
    offset = float(match.group(2).replace(" ", "")) if match.group(2) else 0.0
    return float(match.group(1)), offset
