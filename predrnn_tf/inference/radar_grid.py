"""Where the model's frame lies on the radar grid: the window and its georeference.

A radar archive is read on the model's grid (the recipe's km/pixel). The frame the model
sees is a window of that grid:

- ``whole``: the composite's valid extent (the bounding box of the pixels that hold data in
  any frame read), cut symmetrically to a multiple of the model's patch size;
- ``centre``: the centred ``image_size`` square (the old default; ``--crop`` keeps it).

:class:`Georeference` is the pysteps metadata of a grid (``projection``, ``x1``, ``y1``,
``x2``, ``y2``, ``xpixelsize``, ``ypixelsize``, ``yorigin``) carried through the source
crop, the resampling and the window, so the forecast can be written with its map
coordinates (:mod:`predrnn_tf.inference.forecast_netcdf`). pysteps is imported lazily, its
start-up banner sent to stderr (stdout stays machine-readable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import sys
from typing import Any

import numpy as np

from predrnn_tf.errors import InputError

GEOREFERENCE_KEYS = ("projection", "x1", "y1", "x2", "y2", "yorigin")


def import_pysteps_quietly(module: str = "pysteps"):
    """``import module`` (a pysteps module) with pysteps' stdout banner sent to stderr.

    pysteps prints "Pysteps configuration file found at ..." on stdout when first imported,
    which would break a command whose stdout is one JSON line.

    Raises:
      ImportError: pysteps (or one of its dependencies) is not installed.
    """
    with contextlib.redirect_stdout(sys.stderr):
        return importlib.import_module(module)


@dataclasses.dataclass(frozen=True)
class Window:
    """``field[top:top + height, left:left + width]`` of a field on the model's grid."""

    top: int
    left: int
    height: int
    width: int

    def cut(self, field: np.ndarray) -> np.ndarray:
        """The window of ``field`` ``[..., H, W]``."""
        return field[..., self.top:self.top + self.height, self.left:self.left + self.width]


@dataclasses.dataclass(frozen=True)
class Georeference:
    """A grid's map coordinates (pysteps metadata names; the projection's length unit)."""

    projection: str
    x1: float
    y1: float
    x2: float
    y2: float
    yorigin: str
    height: int
    width: int
    cartesian_unit: str = "m"

    @property
    def xpixelsize(self) -> float:
        return (self.x2 - self.x1) / self.width

    @property
    def ypixelsize(self) -> float:
        return (self.y2 - self.y1) / self.height

    def window(self, window: Window) -> Georeference:
        """The georeference of ``window`` of this grid (rows count from ``yorigin``)."""
        x1 = self.x1 + window.left * self.xpixelsize
        if self.yorigin == "upper":
            y2 = self.y2 - window.top * self.ypixelsize
            y1 = y2 - window.height * self.ypixelsize
        else:
            y1 = self.y1 + window.top * self.ypixelsize
            y2 = y1 + window.height * self.ypixelsize
        return dataclasses.replace(self, x1=x1, y1=y1, x2=x1 + window.width * self.xpixelsize,
                                   y2=y2, height=window.height, width=window.width)

    def resampled(self, height: int, width: int) -> Georeference:
        """The same extent on a ``height`` x ``width`` grid."""
        return dataclasses.replace(self, height=height, width=width)

    def pysteps_metadata(self, unit: str = "mm/h") -> dict[str, Any]:
        """The pysteps metadata dict of this grid (for its exporters and plots)."""
        return {"projection": self.projection, "x1": self.x1, "y1": self.y1, "x2": self.x2,
                "y2": self.y2, "xpixelsize": self.xpixelsize, "ypixelsize": self.ypixelsize,
                "yorigin": self.yorigin, "unit": unit, "transform": None,
                "accutime": 0.0, "zerovalue": 0.0, "threshold": 0.1,
                "cartesian_unit": self.cartesian_unit}


def georeference_from(info: dict[str, Any] | None, shape: tuple[int, int]
                      ) -> Georeference | None:
    """The georeference of importer metadata holding every pysteps key, else None."""
    if not info or any(info.get(key) is None for key in GEOREFERENCE_KEYS):
        return None
    return Georeference(str(info["projection"]), float(info["x1"]), float(info["y1"]),
                        float(info["x2"]), float(info["y2"]), str(info["yorigin"]),
                        int(shape[0]), int(shape[1]), str(info.get("cartesian_unit") or "m"))


def pysteps_georeference(importer: str, path: str, kwargs: dict[str, Any],
                         shape: tuple[int, int]) -> Georeference | None:
    """The georeference pysteps' importer of the same name reads from ``path``, or None.

    Used when the converters' importer gives no map coordinates (the built-in readers).
    Any failure (no pysteps, no such importer, other keyword arguments) gives None.
    """
    try:
        io = import_pysteps_quietly("pysteps.io")
        _, _, metadata = io.get_method(importer, "importer")(path, **kwargs)
    except Exception as error:  # noqa: BLE001 - optional: any failure means "no map"
        logging.getLogger(__name__).info("no georeference from pysteps for %s: %s", path,
                                         error)
        return None
    georeference = georeference_from(metadata, shape)
    if georeference is not None and (georeference.height, georeference.width) != shape:
        return None
    return georeference


def valid_extent(fields: np.ndarray, path: str) -> Window:
    """The bounding box of the pixels that hold data in any of ``fields`` ``[T, H, W]``."""
    valid = np.isfinite(fields).any(axis=0)  # [H, W]
    rows, columns = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if not rows.size:
        raise InputError(f"--input={path!r}: no valid pixel in any frame (all no data)")
    return Window(int(rows[0]), int(columns[0]), int(rows[-1] - rows[0] + 1),
                  int(columns[-1] - columns[0] + 1))


def cut_to_multiple(window: Window, multiple: int, path: str, pixel_km: float) -> Window:
    """``window`` shrunk symmetrically to sides that are multiples of ``multiple``."""
    height = window.height - window.height % multiple
    width = window.width - window.width % multiple
    if not height or not width:
        raise InputError(f"{path}: the composite's valid extent is {window.height}x"
                         f"{window.width} pixels at {pixel_km:g} km/pixel, smaller than the "
                         f"model's patch of {multiple} pixels")
    return Window(window.top + (window.height - height) // 2,
                  window.left + (window.width - width) // 2, height, width)


def centre_window(shape: tuple[int, int], size: int, path: str, pixel_km: float) -> Window:
    """The centred ``size`` square of a field of ``shape`` (InputError if smaller)."""
    height, width = shape
    if height < size or width < size:
        raise InputError(f"{path}: the field is {height}x{width} pixels at {pixel_km:g} "
                         f"km/pixel, smaller than the model's {size}x{size} frame")
    return Window((height - size) // 2, (width - size) // 2, size, size)
