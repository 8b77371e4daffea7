"""Whole radar composites for the test split (``--whole_test_frames``).

A forecaster nowcasts a whole composite, so the test split can hold whole frames instead of
tiles: the composite's valid extent on the recipe grid (the bounding box of the pixels valid
in any frame of the first test window), grown to a multiple of ``multiple`` pixels (the
model's patch size must divide it) by adding no-data pixels around it, so every valid pixel
is kept. Every test window is cut to that one box (the TFRecord reader needs one frame
shape per split); the dataset metadata records it as ``test_image_height`` /
``test_image_width`` and ``whole_test_frames``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from predrnn_tf.errors import DataError


@dataclasses.dataclass(frozen=True)
class Box:
    """A rectangle of the recipe grid (may reach outside the field: filled with no data)."""

    top: int
    left: int
    height: int
    width: int

    def as_dict(self) -> dict[str, int]:
        """The box as metadata."""
        return dataclasses.asdict(self)


def grow_to_multiple(start: int, length: int, multiple: int) -> tuple[int, int]:
    """``(start, length)`` grown symmetrically to the next multiple of ``multiple``."""
    grown = -(-length // multiple) * multiple
    return start - (grown - length) // 2, grown


def valid_extent(window: np.ndarray, multiple: int) -> tuple[Box, np.ndarray]:
    """The box of the pixels valid in any frame, grown to ``multiple``; and that footprint.

    Args:
      window: ``[T, H, W]`` rain rate with NaN for no data.
      multiple: the box's height and width are multiples of it.

    Returns:
      The box and the boolean footprint ``[H, W]`` (valid in some frame).
    """
    footprint = np.isfinite(window).any(axis=0)  # [H, W]
    rows = np.flatnonzero(footprint.any(axis=1))
    columns = np.flatnonzero(footprint.any(axis=0))
    if not rows.size:
        raise DataError("the first test window has no valid pixel: cannot find the "
                        "composite's extent for --whole_test_frames")
    top, height = grow_to_multiple(int(rows[0]), int(rows[-1] - rows[0] + 1), multiple)
    left, width = grow_to_multiple(int(columns[0]), int(columns[-1] - columns[0] + 1),
                                   multiple)
    return Box(top, left, height, width), footprint


def cut(window: np.ndarray, box: Box) -> np.ndarray:
    """``window[:, box]`` ``[T, box.height, box.width]``, NaN where the box leaves the field."""
    frames, height, width = window.shape
    out = np.full((frames, box.height, box.width), np.nan, np.float32)
    row_start, column_start = max(box.top, 0), max(box.left, 0)
    row_end = min(box.top + box.height, height)
    column_end = min(box.left + box.width, width)
    out[:, row_start - box.top:row_end - box.top, column_start - box.left:
        column_end - box.left] = window[:, row_start:row_end, column_start:column_end]
    return out


class WholeFrameCutter:
    """Cuts every test window to the box found on the first one; decides which to keep.

    A window is kept when its valid pixels are at least ``min_valid_fraction`` of the
    composite's footprint (a radar missing from the composite drops it) and at least
    ``min_wet_fraction`` of them have 0.1 mm/h or more.

    Args:
      multiple: height and width are multiples of it (the model's patch size divides it).
      min_valid_fraction: as ``--min_valid_fraction``, relative to the footprint.
      min_wet_fraction: as ``--min_wet_fraction``.
    """

    def __init__(self, multiple: int, min_valid_fraction: float, min_wet_fraction: float):
        self.multiple = multiple
        self.min_valid_fraction = min_valid_fraction
        self.min_wet_fraction = min_wet_fraction
        self.box: Box | None = None
        self.footprint_pixels = 0

    def __call__(self, window: np.ndarray) -> np.ndarray | None:
        """The whole-frame window ``[T, h, w]`` (NaN = no data), or None if dropped."""
        if self.box is None:
            self.box, footprint = valid_extent(window, self.multiple)
            self.footprint_pixels = int(footprint.sum())
        frames = cut(window, self.box)
        valid = np.isfinite(frames)
        wet = np.nan_to_num(frames, nan=0.0) >= 0.1
        valid_share = valid.sum() / (self.footprint_pixels * len(frames))
        wet_share = wet.sum() / max(valid.sum(), 1)
        if valid_share < self.min_valid_fraction or wet_share < self.min_wet_fraction:
            return None
        return frames

    def metadata(self) -> dict[str, Any]:
        """``test_image_height`` / ``test_image_width`` and the box (empty before any window)."""
        if self.box is None:
            return {}
        return {"test_image_height": self.box.height, "test_image_width": self.box.width,
                "whole_test_frames": {"box_on_recipe_grid": self.box.as_dict(),
                                      "multiple": self.multiple,
                                      "footprint_pixels": self.footprint_pixels}}
