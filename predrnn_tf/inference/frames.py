"""``load_frames``: a user's files -> ``[B, T, H, W, C]`` float32 in [0, 1] (numpy only).

Sources:

- a ``.npy`` of ``[T, H, W]``, ``[T, H, W, C]`` (C = the model's channels) or
  ``[B, T, H, W, C]``. uint8 arrays are stored pixels (0..255). Float arrays are in the
  physical units of the model's ``value_mapping`` (e.g. dBZ) when it has one, else in
  [0, 1]; ``input_units="pixels"`` reads floats as [0, 1] pixels whatever the mapping.
- a folder of PNG frames (sorted by file name), stored pixels 0..255, gray or RGB.
- a radar archive: a glob of radar files read through the converters' importers
  (``tools/make_radar.py``'s ``--importer``), converted like the model's training data
  (:mod:`predrnn_tf.inference.radar_input`: units, grid spacing, interval, frame size).

Float physical values of a rain-rate (dBR) model are rain rates in mm/h, of others the
linear mapping's unit (e.g. dBZ).

No-data rule (the converters' rule): NaN in physical units becomes pixel 0 ("no data" of
the rain-rate storage, "no echo" of dBZ) and is counted in a warning; in [0, 1] pixels NaN
or infinity is refused.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.errors import InputError
from predrnn_tf.inference.radar_input import RadarArchive, read_radar_archive

INPUT_UNITS = ("auto", "physical", "pixels")


def add_batch_axis(array: np.ndarray, channels: int | None, source: str) -> np.ndarray:
    """``[T, H, W]`` / ``[T, H, W, C]`` / ``[B, T, H, W, C]`` -> ``[B, T, H, W, C]``."""
    if array.ndim == 3:
        return array[None, ..., None]  # [1, T, H, W, 1]
    if array.ndim == 4:
        if channels is not None and array.shape[-1] != channels:
            raise InputError(f"{source} has shape {array.shape}: a 4-D array is [T, H, W, C] "
                             f"with C = {channels} (the model's channels)")
        return array[None]  # [1, T, H, W, C]
    if array.ndim == 5:
        return array
    raise InputError(f"{source} must be [T, H, W], [T, H, W, C] or [B, T, H, W, C], received "
                     f"shape {array.shape}")


def physical_to_pixels(values: np.ndarray, mapping: dict[str, Any], source: str
                       ) -> np.ndarray:
    """Physical values -> [0, 1] pixels (clipped); NaN -> no echo (pixel 0), counted."""
    values = np.asarray(values, np.float64)
    if np.isinf(values).any():
        raise InputError(f"{source} holds infinite values; mark no-data pixels as NaN")
    missing = np.isnan(values)
    finite = values[~missing]
    rain_rate = units.is_rain_rate_mapping(mapping)
    if rain_rate and finite.size and finite.min() < 0:
        raise InputError(f"{source} holds negative rain rates (min {finite.min():g} mm/h)")
    if (not rain_rate and float(mapping["offset"]) < 0 and finite.size and finite.min() >= 0
            and finite.max() <= 1):
        raise InputError(f"{source} values are all in [0, 1]: these look like pixels, not "
                         f"{mapping.get('units', 'physical units')} (pass "
                         f"input_units='pixels', --input_units=pixels)")
    if missing.any():
        logging.getLogger(__name__).warning(
            "%s: %d no-data (NaN) values read as pixel 0", source, int(missing.sum()))
    if rain_rate:
        pixels = units.rain_rate_to_unit_pixels(np.where(missing, 0.0, values))
        return np.where(missing, 0.0, pixels).astype(np.float32)
    pixels = units.units_to_pixels(np.where(missing, float(mapping["offset"]), values), mapping)
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def scale_to_pixels(array: np.ndarray, mapping: dict[str, Any] | None, input_units: str,
                    source: str) -> np.ndarray:
    """Stored uint8 pixels, physical floats or [0, 1] floats -> float32 [0, 1] pixels."""
    if input_units not in INPUT_UNITS:
        raise InputError(f"input_units must be one of {INPUT_UNITS}, received {input_units!r}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{source} has dtype {array.dtype}: give uint8 pixels (0..255) or "
                         f"floats ({'physical units' if mapping else '[0, 1]'})")
    if mapping and input_units != "pixels":
        return physical_to_pixels(array, mapping, source)
    if input_units == "physical":
        raise InputError(f"{source}: input_units='physical' but the model has no value_mapping")
    if not np.isfinite(array).all():
        raise InputError(f"{source} holds NaN or infinite values: replace no-data pixels by 0")
    if array.size and (array.min() < 0 or array.max() > 1):
        hint = " (0-255 values? divide by 255)" if array.max() <= 255 else ""
        raise InputError(f"{source} must be in [0, 1], received values in "
                         f"[{array.min():g}, {array.max():g}]{hint}")
    return array.astype(np.float32)


def read_npy(path: str) -> np.ndarray:
    """``np.load`` without pickles; InputError naming the file when it is not an array."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"--input={path} is not a readable .npy array: "
                         f"{' '.join(str(error).split())[:200]}") from None


def read_png_folder(folder: str, channels: int) -> np.ndarray:
    """A folder of PNG frames (sorted by name) -> uint8 ``[T, H, W, C]``."""
    import cv2

    paths = sorted(glob.glob(os.path.join(folder, "*.png")))
    if not paths:
        raise InputError(f"--input={folder} holds no .png frames")
    mode = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    frames = []
    for path in paths:
        image = cv2.imread(path, mode)
        if image is None:
            raise InputError(f"cannot read image {path}")
        image = image[..., None] if image.ndim == 2 else image[..., ::-1]  # BGR -> RGB
        if frames and image.shape != frames[0].shape:
            raise InputError(f"{path} is {image.shape[:2]}, unlike {paths[0]} "
                             f"{frames[0].shape[:2]}")
        frames.append(image)
    return np.stack(frames)  # [T, H, W, C]


def load_frames(path: str, value_mapping: dict[str, Any] | None = None, *,
                channels: int | None = None, input_units: str = "auto",
                radar_archive: RadarArchive | None = None,
                image_size: int | None = None, metadata: dict[str, Any] | None = None,
                last_frames: int | None = None) -> np.ndarray:
    """Reads frames from a .npy, a PNG folder or a radar archive (module docstring).

    Args:
      path: the .npy file, the PNG folder, or (with ``radar_archive``) a glob or folder.
      value_mapping: the model's ``value_mapping`` (physical units of float .npy files).
      channels: the model's channels (decides how a 4-D .npy and PNGs are read).
      input_units: ``auto`` (physical when there is a mapping), ``physical`` or ``pixels``.
      radar_archive: read ``path`` as radar files with these importer options.
      image_size: frame size of radar frames (the model's ``img_width``).
      metadata: the training data's metadata (``value_mapping``, ``grid``, ``details``) to
        convert a radar archive like it (default: ``value_mapping`` alone).
      last_frames: radar archives: read only the newest this many frames (default: all).

    Returns:
      ``[B, T, H, W, C]`` float32 in [0, 1].

    Raises:
      InputError: one line naming the file and the problem.
    """
    path = os.fspath(path)
    if radar_archive is not None:
        if not image_size:
            raise InputError("reading a radar archive needs image_size (the model's img_width)")
        return read_radar_archive(path, radar_archive, image_size, metadata or value_mapping,
                                  last_frames)[None]
    if os.path.isdir(path):
        return read_png_folder(path, channels or 1)[None].astype(np.float32) / 255.0
    if not os.path.exists(path):
        raise InputError(f"--input={path} does not exist")
    array = read_npy(path)
    return scale_to_pixels(add_batch_axis(array, channels, path), value_mapping, input_units,
                           path)
