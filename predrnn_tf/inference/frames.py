"""``load_frames``: a user's files -> ``[B, T, H, W, C]`` float32 in [0, 1] (numpy only).

Sources:

- a ``.npy`` of ``[T, H, W]``, ``[T, H, W, C]`` (C = the model's channels) or
  ``[B, T, H, W, C]``. uint8 arrays are stored pixels (0..255). Float arrays are in the
  physical units of the model's ``value_mapping`` (e.g. dBZ) when it has one, else in
  [0, 1]; ``input_units="pixels"`` reads floats as [0, 1] pixels whatever the mapping.
- a folder of PNG frames, stored pixels 0..255, gray or RGB, in natural order of their
  names (``2.png`` before ``10.png``); names whose order is ambiguous (``1.png`` and
  ``01.png``) are refused, and the files used are logged.
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
import pickle
import re
import stat
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


def _range_hint(array: np.ndarray) -> str:
    """The remedy for floats outside [0, 1] when the model has no value_mapping.

    "divide by 255" only for whole numbers up to 255 (stored pixels saved as floats): for
    physical values (e.g. rain rates of a work directory that lost its data_card.json) it
    would give a wrong forecast, so the card is named instead.
    """
    card = ("; physical values? the model has no value_mapping: restore its work "
            "directory's data_card.json")
    if array.max() <= 255 and np.array_equal(array, np.round(array)):
        return f" (0-255 pixels? divide by 255{card})"
    return f" ({card[2:]})"


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
        raise InputError(f"{source} must be in [0, 1], received values in "
                         f"[{array.min():g}, {array.max():g}]{_range_hint(array)}")
    return array.astype(np.float32)


def _npy_problem(path: str) -> str | None:
    """Why ``path`` cannot be a .npy array, read from its header only; None if it may be."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return "is not a regular file (a device, pipe or socket)"
    with open(path, "rb") as stream:
        if stream.read(4) == b"PK\x03\x04":
            return "is a .npz archive (zip), not a .npy array: save one array with np.save"
        stream.seek(0)
        try:
            major, _ = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if major == 1
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(stream, max_header_size=100_000)
        except (ValueError, OSError, EOFError, SyntaxError) as error:
            return f"is not a .npy array ({' '.join(str(error).split())[:160]})"
        if dtype.hasobject:
            return "holds Python objects (pickles), which are never loaded: save numbers"
        needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = os.path.getsize(path) - stream.tell()
    if needed > available:
        return (f"header claims shape {tuple(shape)} ({needed} bytes) but the file holds "
                f"{available}: truncated or damaged")
    return None


def read_npy(path: str) -> np.ndarray:
    """``np.load`` without pickles; InputError naming the file when it is not an array.

    The header is checked first, so a .npz, a device such as ``/dev/zero`` or a header
    claiming more data than the file holds is named without reading (or allocating) it.
    """
    try:
        problem = _npy_problem(path)
        if problem is None:
            return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError) as error:
        problem = f"is not a readable .npy array: {' '.join(str(error).split())[:200]}"
    raise InputError(f"--input={path} {problem}")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key reading digit runs as numbers: ``2.png`` < ``10.png``; case folded."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name.casefold()) if part)


def png_frame_paths(folder: str) -> list[str]:
    """The folder's ``*.png`` in natural order (numbers as numbers); logs which were used.

    Raises:
      InputError: no PNG, or two names of the same place in the order (``1.png``, ``01.png``).
    """
    paths = glob.glob(os.path.join(glob.escape(folder), "*.png"))
    if not paths:
        raise InputError(f"--input={folder} holds no .png frames")
    keyed = sorted((natural_key(os.path.basename(path)), path) for path in paths)
    for (key, first), (next_key, second) in zip(keyed, keyed[1:]):
        if key == next_key:
            raise InputError(f"--input={folder}: the order of {os.path.basename(first)} and "
                             f"{os.path.basename(second)} is ambiguous: rename the frames "
                             f"so their numbers give the time order")
    ordered = [path for _, path in keyed]
    names = [os.path.basename(path) for path in ordered]
    listed = ", ".join(names) if len(names) <= 6 else f"{names[0]}, {names[1]} ... {names[-1]}"
    logging.getLogger(__name__).warning("--input=%s: read %d frames, oldest to newest: %s",
                                        folder, len(names), listed)
    return ordered


def read_png_folder(folder: str, channels: int) -> np.ndarray:
    """A folder of PNG frames (natural order of names) -> uint8 ``[T, H, W, C]``."""
    import cv2

    paths = png_frame_paths(folder)
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


def read_archive(path: str, archive: RadarArchive, image_size: int,
                 metadata: dict[str, Any] | None, last_frames: int | None) -> np.ndarray:
    """:func:`read_radar_archive`, with an importer's own errors as one InputError line.

    An importer called without its required ``--importer_kwargs`` raises TypeError, and the
    ``npy`` importer given PNG files an unpickling error; both name the importer here.
    """
    try:
        return read_radar_archive(path, archive, image_size, metadata, last_frames)
    except (TypeError, pickle.UnpicklingError, UnicodeDecodeError) as error:
        raise InputError(f"--input={path} cannot be read with --importer={archive.importer} "
                         f"({' '.join(str(error).split())[:200]}): check that the files are "
                         f"of that format and pass the importer's required --importer_kwargs"
                         ) from None


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
        return read_archive(path, radar_archive, image_size, metadata or value_mapping,
                            last_frames)[None]
    if os.path.isdir(path):
        return read_png_folder(path, channels or 1)[None].astype(np.float32) / 255.0
    if not os.path.exists(path):
        raise InputError(f"--input={path} does not exist")
    array = read_npy(path)
    return scale_to_pixels(add_batch_axis(array, channels, path), value_mapping, input_units,
                           path)
