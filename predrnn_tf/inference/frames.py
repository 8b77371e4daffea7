"""``load_frames``: a user's files -> ``[B, T, H, W, C]`` float32 in [0, 1] (numpy only).

Sources:

- a ``.npy`` of ``[T, H, W]``, ``[T, H, W, C]`` (C = the model's channels) or
  ``[B, T, H, W, C]``. uint8 arrays are stored pixels (0..255). Float arrays are in the
  physical units of the model's ``value_mapping`` (e.g. dBZ) when it has one, else in
  [0, 1]; ``input_units="pixels"`` reads floats as [0, 1] pixels whatever the mapping.
- a folder of PNG frames (sorted by file name), stored pixels 0..255, gray or RGB.
- a radar archive: a glob of radar files read through the converters' importers
  (``tools/make_radar.py``'s ``--importer``), each cropped and resized like the converter.

No-data rule (the converters' rule): NaN in physical units becomes "no echo" (pixel 0)
and is counted in a warning; in [0, 1] pixels NaN or infinity is refused.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.errors import InputError

INPUT_UNITS = ("auto", "physical", "pixels")


@dataclasses.dataclass(frozen=True)
class RadarArchive:
    """How to read a radar archive (the options of ``tools/make_radar.py``).

    Attributes:
      importer: ``fmi_pgm``, ``knmi_hdf5``, ``npy``, ``png`` or a ``pysteps.io`` importer name.
      importer_kwargs: the importer's keyword arguments.
      filename_pattern: strftime pattern of the file names, to sort by time (default: by name).
      crop: ``(top, left, height, width)`` in source pixels, or None (centred square).
    """

    importer: str
    importer_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    filename_pattern: str | None = None
    crop: tuple[int, int, int, int] | None = None


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
    if float(mapping["offset"]) < 0 and finite.size and finite.min() >= 0 and finite.max() <= 1:
        raise InputError(f"{source} values are all in [0, 1]: these look like pixels, not "
                         f"{mapping.get('units', 'physical units')} (pass "
                         f"input_units='pixels', --input_units=pixels)")
    if missing.any():
        logging.getLogger(__name__).warning(
            "%s: %d no-data (NaN) values read as no echo (pixel 0)", source, int(missing.sum()))
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


def read_radar_archive(pattern: str, archive: RadarArchive, image_size: int,
                       mapping: dict[str, Any] | None) -> np.ndarray:
    """Radar files (a glob or a folder) -> [0, 1] pixels ``[T, S, S, 1]`` of ``mapping``."""
    from predrnn_tf.data.converters import imaging, radar

    if not units.dbz_mapping(mapping):
        raise InputError("a radar archive needs a model trained on dBZ data (its dataset "
                         "metadata has no dBZ value_mapping)")
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    paths = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
    if not paths:
        raise InputError(f"--input={pattern!r} matches no radar file")
    if archive.filename_pattern:
        stamps = radar.FilenamePattern(archive.filename_pattern)
        paths = [path for _, path in sorted((stamps.timestamp(path), path) for path in paths)]
    frames, no_data = [], 0
    for path in paths:
        try:
            importer = radar.make_importer(archive.importer, dict(archive.importer_kwargs))
            values, info = importer(path)
            pixels, missing = imaging.prepare_radar_frame(values, info, image_size,
                                                         archive.crop)
        except (ValueError, OSError, KeyError) as error:  # DataError is a ValueError
            raise InputError(f"{path} (--importer={archive.importer}): "
                             f"{' '.join(str(error).split())[:300]}") from None
        no_data += missing
        frames.append(pixels)
    if no_data:
        logging.getLogger(__name__).warning("%d no-data pixels read as no echo", no_data)
    dbz = units.pixels_to_units(np.stack(frames).astype(np.float64) / 255.0,
                                units.hko7_mapping())  # [T, S, S]
    return np.clip(units.units_to_pixels(dbz, mapping), 0.0, 1.0).astype(np.float32)[..., None]


def load_frames(path: str, value_mapping: dict[str, Any] | None = None, *,
                channels: int | None = None, input_units: str = "auto",
                radar_archive: RadarArchive | None = None,
                image_size: int | None = None) -> np.ndarray:
    """Reads frames from a .npy, a PNG folder or a radar archive (module docstring).

    Args:
      path: the .npy file, the PNG folder, or (with ``radar_archive``) a glob or folder.
      value_mapping: the model's ``value_mapping`` (physical units of float .npy files).
      channels: the model's channels (decides how a 4-D .npy and PNGs are read).
      input_units: ``auto`` (physical when there is a mapping), ``physical`` or ``pixels``.
      radar_archive: read ``path`` as radar files with these importer options.
      image_size: frame size of radar frames (the model's ``img_width``).

    Returns:
      ``[B, T, H, W, C]`` float32 in [0, 1].

    Raises:
      InputError: one line naming the file and the problem.
    """
    path = os.fspath(path)
    if radar_archive is not None:
        if not image_size:
            raise InputError("reading a radar archive needs image_size (the model's img_width)")
        return read_radar_archive(path, radar_archive, image_size, value_mapping)[None]
    if os.path.isdir(path):
        return read_png_folder(path, channels or 1)[None].astype(np.float32) / 255.0
    if not os.path.exists(path):
        raise InputError(f"--input={path} does not exist")
    array = read_npy(path)
    return scale_to_pixels(add_batch_axis(array, channels, path), value_mapping, input_units,
                           path)
