"""Shared frame operations for the converters: grayscale, crop, resize, radar storage pixels."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from predrnn_tf import units


def to_grayscale(frame: np.ndarray) -> np.ndarray:
    """``[H, W]``, ``[H, W, 1]``, BGR ``[H, W, 3]`` or BGRA ``[H, W, 4]`` -> ``[H, W]``."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grayscale or BGR(A) image, got shape {frame.shape}")


def parse_crop(text: str) -> tuple[int, int, int, int] | None:
    """Parses ``"top,left,height,width"`` (empty -> None)."""
    if not text:
        return None
    try:
        box = tuple(int(part) for part in text.split(","))
    except ValueError as error:
        raise ValueError(f"crop must be 'top,left,height,width' integers, got {text!r}") from error
    if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
        raise ValueError(f"crop must be 'top,left,height,width' with top, left >= 0 and "
                         f"height, width >= 1, got {text!r}")
    return box  # type: ignore[return-value]


def center_square_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred square ``(top, left, side, side)`` of an image."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_frame(frame: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Crops ``frame[top:top+height, left:left+width]``; ``None`` = centred square."""
    if box is None:
        box = center_square_box(frame.shape[0], frame.shape[1])
    top, left, height, width = box
    if top + height > frame.shape[0] or left + width > frame.shape[1]:
        raise ValueError(f"crop {box} (top, left, height, width) exceeds the image of "
                         f"{frame.shape[0]}x{frame.shape[1]} pixels")
    return frame[top:top + height, left:left + width]


def resize_frame(frame: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """Resizes a 2-D frame with area averaging when shrinking, bilinear when growing."""
    width = height if width is None else width
    if frame.shape[:2] == (height, width):
        return frame
    shrinking = frame.shape[0] >= height and frame.shape[1] >= width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def prepare_radar_frame(
    values: np.ndarray,
    info: dict[str, Any],
    image_size: int,
    crop: tuple[int, int, int, int] | None = None,
    zr_a: float = units.ZR_A,
    zr_b: float = units.ZR_B,
) -> tuple[np.ndarray, int]:
    """One imported radar field -> stored uint8 ``[image_size, image_size]``, no-data count.

    The field becomes dBZ (:func:`predrnn_tf.units.to_dbz`); no-data pixels become "no
    echo" (-10 dBZ); it is cropped (default: the largest centred square), area-averaged in
    dBZ to ``image_size`` and quantised with the HKO-7 mapping of :mod:`predrnn_tf.units`.
    """
    dbz = units.to_dbz(values, info, zr_a, zr_b)
    no_data = int(np.isnan(dbz).sum())
    dbz = resize_frame(crop_frame(units.floor_hko7_dbz(dbz), crop), image_size)
    return units.dbz_to_hko7_pixels(dbz), no_data


def resample_field(values: np.ndarray, factor: float, min_valid: float = 0.5) -> np.ndarray:
    """Area-averages a field with NaN = no data to a grid ``factor`` times coarser.

    Each output pixel is the mean of the valid source values it covers (a rain rate's area
    mean), and NaN where less than ``min_valid`` of its area holds data. ``factor`` < 1
    refines the grid (bilinear).

    Args:
      values: 2-D float field, NaN where there is no data.
      factor: target spacing / source spacing (e.g. 2 km / 0.5 km = 4).
      min_valid: share of valid source area an output pixel needs.
    """
    if factor <= 0:
        raise ValueError(f"resampling factor must be positive, got {factor}")
    height = max(1, int(round(values.shape[0] / factor)))
    width = max(1, int(round(values.shape[1] / factor)))
    valid = np.isfinite(values).astype(np.float32)
    filled = np.where(valid > 0, values, 0.0).astype(np.float32)
    if (height, width) == values.shape:
        return np.where(valid > 0, filled, np.nan)
    interpolation = cv2.INTER_AREA if factor >= 1 else cv2.INTER_LINEAR
    total = cv2.resize(filled, (width, height), interpolation=interpolation)
    share = cv2.resize(valid, (width, height), interpolation=interpolation)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / share
    return np.where(share >= min_valid, mean, np.nan)


def tile_boxes(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of the ``size x size`` tiles every ``stride`` pixels, centred.

    The tile grid is centred in the field (the margin left over is split on both sides);
    a field smaller than one tile has no tile.
    """
    if size < 1 or stride < 1:
        raise ValueError(f"tile size and stride must be positive, got {size} and {stride}")
    if height < size or width < size:
        return []
    rows = list(range(0, height - size + 1, stride))
    columns = list(range(0, width - size + 1, stride))
    row_margin = (height - size - rows[-1]) // 2
    column_margin = (width - size - columns[-1]) // 2
    return [(row + row_margin, column + column_margin) for row in rows for column in columns]


def prepare_rain_rate_field(
    values: np.ndarray,
    info: dict[str, Any],
    factor: float,
    crop: tuple[int, int, int, int] | None = None,
    zr_a: float = units.ZR_A,
    zr_b: float = units.ZR_B,
) -> np.ndarray:
    """One imported field -> rain rate in mm/h on the recipe's grid (NaN = no data).

    The field becomes mm/h (:func:`predrnn_tf.units.to_rain_rate`), is cropped at source
    resolution when ``crop`` is given (no crop: the whole field) and area-averaged by
    ``factor`` (:func:`resample_field`).
    """
    rate = units.to_rain_rate(values, info, zr_a, zr_b)
    if crop is not None:
        rate = crop_frame(rate, crop)
    return resample_field(rate, factor)
