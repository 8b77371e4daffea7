"""A radar archive -> the model's [0, 1] input frames, converted like its training data.

The files are read through the importers of ``tools/make_radar.py``
(:func:`predrnn_tf.data.converters.radar.make_importer`: the built-ins, or any
``pysteps.io`` importer by name, pysteps imported only then) and converted exactly as the
converter converted the model's training data, as the dataset metadata (or the work
directory's data card) records it:

- ``rain_rate`` storage (a dBR ``value_mapping`` and a ``grid``): each field becomes rain
  rate in mm/h (the recorded Z-R relation), is cropped at source resolution when
  ``crop`` is given, area-averaged to the recorded km/pixel; the frame is the whole
  composite's valid extent cut to a multiple of the patch size (``read_radar_sequence``
  with ``patch_size``, ``predrnn-predict``'s default) or, with ``crop`` or without
  ``patch_size``, the centred ``image_size`` square; it is stored in dBR; frames are picked every
  recorded ``interval_minutes`` back from the newest file (time stamps from
  ``filename_pattern``; a missing time is refused, never interpolated).
- ``hko7_dbz`` storage (a dBZ ``value_mapping``): dBZ, the largest centred square (or
  ``crop``) area-averaged to ``image_size``, in the model's dBZ mapping; with
  ``filename_pattern`` frames are sorted by time (else by name).

No-data rule (the converters' rule): a no-data (NaN) value of the importer is pixel 0,
which is "no data" in the rain-rate storage (as in training) and "no echo" in the dBZ
storage; both are counted in one warning. An archive without one valid pixel is refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import logging
import os
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.errors import InputError
from predrnn_tf.inference import radar_grid

# what the radar archive reading catches from the importers (DataError is a ValueError)
IMPORT_ERRORS = (ValueError, OSError, KeyError)


@dataclasses.dataclass(frozen=True)
class RadarArchive:
    """How to read a radar archive (the options of ``tools/make_radar.py``).

    Attributes:
      importer: ``fmi_pgm``, ``knmi_hdf5``, ``npy``, ``pgm``, ``png`` or a ``pysteps.io``
        importer name.
      importer_kwargs: the importer's keyword arguments.
      filename_pattern: strftime pattern of the file names, to sort by time (default: by
        name; needed for data recorded with an interval, the rain-rate storage).
      crop: ``(top, left, height, width)`` in source pixels, or None (the converter's
        default: the whole field for rain rate, the largest centred square for dBZ).
      source_pixel_km: the files' grid spacing in km (0: from the importer's metadata, else
        the training data's when it used the same importer).
      pixel_scale: ``pgm``/``png`` importers: ``units = pixel_scale * pixel + pixel_offset``.
      pixel_offset: see ``pixel_scale``.
      no_data_pixel: ``pgm``/``png`` importers: the pixel value meaning no data, or None.
      pixel_unit: ``pgm``/``png`` importers: ``dBZ``, ``mm/h`` or ``mm``.
    """

    importer: str
    importer_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    filename_pattern: str | None = None
    crop: tuple[int, int, int, int] | None = None
    source_pixel_km: float = 0.0
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    no_data_pixel: int | None = None
    pixel_unit: str = "dBZ"


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What the converter did to the model's training data (from its metadata).

    Attributes:
      value_mapping: the stored pixels' meaning.
      storage: ``rain_rate`` or ``hko7_dbz``.
      pixel_km: the recorded grid spacing (rain rate), or None.
      interval_minutes: the recorded time between frames, or None.
      zr_a: Z-R relation ``Z = zr_a * R ** zr_b``: a.
      zr_b: b.
      importer: the importer of the training archive, or None.
      source_pixel_km: that archive's grid spacing, or None.
    """

    value_mapping: dict[str, Any]
    storage: str
    pixel_km: float | None = None
    interval_minutes: float | None = None
    zr_a: float = units.ZR_A
    zr_b: float = units.ZR_B
    importer: str | None = None
    source_pixel_km: float | None = None


def training_data(metadata: dict[str, Any] | None) -> TrainingData:
    """The conversion recorded in dataset metadata (or a bare ``value_mapping``).

    Raises:
      InputError: the model was not trained on radar data (no dBZ or dBR mapping).
    """
    mapping = units.mapping_of(metadata)
    metadata = metadata if metadata and "value_mapping" in metadata else {}
    details = metadata.get("details") or {}
    grid = metadata.get("grid") or {}
    common = {"zr_a": float(details.get("zr_a", units.ZR_A)),
              "zr_b": float(details.get("zr_b", units.ZR_B)),
              "importer": details.get("importer"),
              "source_pixel_km": details.get("source_pixel_km")}
    if units.is_rain_rate_mapping(mapping):
        if not grid.get("pixel_km") or not grid.get("interval_minutes"):
            raise InputError("the model's rain-rate data records no grid (pixel_km, "
                             "interval_minutes): cannot convert a radar archive like it")
        return TrainingData(mapping, "rain_rate", float(grid["pixel_km"]),
                            float(grid["interval_minutes"]), **common)
    if units.dbz_mapping(mapping):
        interval = details.get("timestep_minutes")
        return TrainingData(mapping, "hko7_dbz", None,
                            float(interval) if interval else None, **common)
    raise InputError("a radar archive needs a model trained on radar data (its dataset "
                     "metadata or data card has no dBZ or dBR rain-rate value_mapping)")


def list_archive(pattern: str, archive: RadarArchive
                 ) -> tuple[list[str], list[datetime.datetime] | None]:
    """The files of ``--input`` (a glob or a folder): by time with a pattern, else by name."""
    from predrnn_tf.data.converters import radar

    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    paths = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
    if not paths:
        raise InputError(f"--input={pattern!r} matches no radar file")
    if not archive.filename_pattern:
        return paths, None
    try:
        stamps = radar.FilenamePattern(archive.filename_pattern)
        stamped = sorted((stamps.timestamp(path), path) for path in paths)
    except ValueError as error:
        raise InputError(str(error)) from None
    for (time_a, path_a), (time_b, path_b) in zip(stamped, stamped[1:], strict=False):
        if time_a == time_b:
            raise InputError(f"two files have the time stamp {time_a:%Y-%m-%d %H:%M}: "
                             f"{path_a} and {path_b}")
    return [path for _, path in stamped], [time for time, _ in stamped]


def pick_frames(paths: list[str], times: list[datetime.datetime] | None,
                interval_minutes: float | None, count: int | None) -> list[str]:
    """The newest ``count`` files (all: None), every ``interval_minutes`` when times are known.

    With an interval the newest file is the last frame and each earlier frame must exist
    exactly ``interval_minutes`` before the next (files in between are skipped, as the
    converter skips them); without ``count`` the chain stops at the first missing time.
    """
    if times is None or not interval_minutes:
        return paths if count is None else paths[-count:]
    by_time = dict(zip(times, paths, strict=True))
    step = datetime.timedelta(minutes=interval_minutes)
    picked, moment = [], times[-1]
    while count is None or len(picked) < count:
        if moment not in by_time:
            if count is None:
                break
            raise InputError(
                f"--input has no file for {moment:%Y-%m-%d %H:%M}: the model needs {count} "
                f"frames every {interval_minutes:g} min back from the newest file "
                f"({times[-1]:%Y-%m-%d %H:%M}), as it was trained")
        picked.append(by_time[moment])
        moment -= step
    return picked[::-1]


def make_archive_importer(archive: RadarArchive) -> Callable[[str], tuple[np.ndarray, dict]]:
    """``path -> (values, info)``: the converters' importer of ``archive``."""
    from predrnn_tf.data.converters import radar

    try:
        return radar.make_importer(archive.importer, dict(archive.importer_kwargs),
                                   pixel_scale=archive.pixel_scale,
                                   pixel_offset=archive.pixel_offset,
                                   no_data_pixel=archive.no_data_pixel,
                                   pixel_unit=archive.pixel_unit)
    except ValueError as error:
        raise InputError(" ".join(str(error).split())) from None


def source_km(archive: RadarArchive, data: TrainingData, info: dict[str, Any],
              path: str) -> float:
    """The files' grid spacing: ``source_pixel_km``, the importer's, or the training data's."""
    from predrnn_tf.data.converters.radar_conversion import source_pixel_km

    if not archive.source_pixel_km and not (info.get("pixel_km") or info.get("xpixelsize")):
        if data.source_pixel_km and archive.importer == data.importer:
            return float(data.source_pixel_km)
        raise InputError(f"{path}: the importer {archive.importer!r} does not state the grid "
                         f"spacing: pass --source_pixel_km (the model uses "
                         f"{data.pixel_km:g} km/pixel)")
    shim = types.SimpleNamespace(source_pixel_km=archive.source_pixel_km)
    return source_pixel_km(shim, info, path)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class RadarSequence:
    """The frames read from a radar archive, and where and when they lie.

    Attributes:
      pixels: ``[T, H, W, 1]`` float32 [0, 1] pixels of the model's storage.
      paths: the files used, oldest first.
      times: their UTC time stamps (from ``filename_pattern``), or None.
      skipped: files between the first and the newest used that were not used (not on
        the model's interval).
      georeference: the frame's map coordinates, or None when the importer gives none.
      window: the frame's window of the field on the model's grid (rain rate), or None.
    """

    pixels: np.ndarray
    paths: list[str]
    times: list[datetime.datetime] | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)
    georeference: radar_grid.Georeference | None = None
    window: radar_grid.Window | None = None


class _Converter:
    """One file -> a field of the training storage: rain rate on the model's grid (mm/h,
    NaN = no data), or for dBZ the stored uint8 pixels ``[S, S]``; no-data counted."""

    def __init__(self, archive: RadarArchive, data: TrainingData, image_size: int):
        self.archive, self.data, self.size = archive, data, image_size
        self.importer = make_archive_importer(archive)
        self.unit: str | None = None
        self.first_path = ""
        self.factor = 0.0
        self.no_data = 0
        self.valid = 0
        self.georeference: radar_grid.Georeference | None = None

    def __call__(self, path: str) -> np.ndarray:
        from predrnn_tf.data.converters import imaging

        try:
            values, info = self.importer(path)
            self._check_unit(info, path)
            if self.data.storage == "rain_rate":
                return self._rain_rate(values, info, path)
            pixels, missing = imaging.prepare_radar_frame(
                values, info, self.size, self.archive.crop, self.data.zr_a, self.data.zr_b)
        except IMPORT_ERRORS as error:
            raise InputError(f"{path} (--importer={self.archive.importer}): "
                             f"{' '.join(str(error).split())[:300]}") from None
        self.no_data += missing
        self.valid += int(np.size(values)) - missing
        return pixels

    def _check_unit(self, info: dict[str, Any], path: str) -> None:
        unit = units.field_unit(info)
        if self.unit is None:
            self.unit, self.first_path = unit, path
        elif unit != self.unit:
            raise InputError(f"mixed units in one archive: {path} holds {unit} but "
                             f"{self.first_path} holds {self.unit}")

    def _rain_rate(self, values: np.ndarray, info: dict[str, Any], path: str) -> np.ndarray:
        from predrnn_tf.data.converters import imaging

        if not self.factor:
            self.factor = self.data.pixel_km / source_km(self.archive, self.data, info, path)
        field = imaging.prepare_rain_rate_field(values, info, self.factor, self.archive.crop,
                                                self.data.zr_a, self.data.zr_b)
        if self.georeference is None:
            self.georeference = self._georeference(info, path, np.shape(values), field.shape)
        return field

    def _georeference(self, info: dict[str, Any], path: str, source_shape: tuple[int, ...],
                      shape: tuple[int, ...]) -> radar_grid.Georeference | None:
        """The source grid's georeference through the crop and the resampling."""
        source_shape = (int(source_shape[0]), int(source_shape[1]))
        georeference = radar_grid.georeference_from(info, source_shape) or (
            radar_grid.pysteps_georeference(self.archive.importer, path,
                                            dict(self.archive.importer_kwargs), source_shape))
        if georeference is None:
            return None
        if self.archive.crop is not None:
            georeference = georeference.window(radar_grid.Window(*self.archive.crop))
        return georeference.resampled(int(shape[0]), int(shape[1]))


def rain_rate_window(fields: np.ndarray, data: TrainingData, image_size: int,
                     patch_size: int | None, crop: bool, path: str) -> radar_grid.Window:
    """The frame's window: the centred square (``crop`` or no ``patch_size``), else the
    composite's valid extent cut to a multiple of ``patch_size``."""
    if crop or not patch_size:
        return radar_grid.centre_window(fields.shape[1:], image_size, path, data.pixel_km)
    return radar_grid.cut_to_multiple(radar_grid.valid_extent(fields, path), patch_size, path,
                                      float(data.pixel_km))


def skipped_files(paths: list[str], used: list[str]) -> list[str]:
    """The files between the first and the newest used file that were not used."""
    if not used:
        return []
    first, last = paths.index(used[0]), paths.index(used[-1])
    chosen = set(used)
    return [path for path in paths[first:last + 1] if path not in chosen]


def read_radar_sequence(pattern: str, archive: RadarArchive, image_size: int,
                        metadata: dict[str, Any] | None, count: int | None = None,
                        patch_size: int | None = None) -> RadarSequence:
    """Radar files (a glob or a folder) -> frames like the training data, and their files.

    Args:
      pattern: ``--input``: a glob (``**`` allowed) or a folder of radar files.
      archive: the importer options.
      image_size: the model's frame side ``S`` (the centred square's side).
      metadata: the training data's metadata (its ``value_mapping``, ``grid`` and
        ``details``), or a bare ``value_mapping``.
      count: the newest frames to read (None: every file, or with an interval the newest
        gap-free chain).
      patch_size: rain rate without ``archive.crop``: the frame is the whole composite's
        valid extent cut to a multiple of this; None: the centred ``S`` square.

    Raises:
      InputError: one line naming the file, flag or value.
    """
    data = training_data(metadata)
    paths, times = list_archive(pattern, archive)
    if data.storage == "rain_rate" and times is None:
        raise InputError(f"--filename_pattern is required: the model was trained on frames "
                         f"every {data.interval_minutes:g} min, picked by the files' time "
                         f"stamps")
    used = pick_frames(paths, times, data.interval_minutes, count)
    convert = _Converter(archive, data, image_size)
    fields = np.stack([convert(path) for path in used])
    window = georeference = None
    if data.storage == "rain_rate":
        window = rain_rate_window(fields, data, image_size, patch_size,
                                  archive.crop is not None, pattern)
        fields = window.cut(fields)  # [T, h, w] mm/h, NaN = no data
        convert.no_data, convert.valid = int(np.isnan(fields).sum()), int(
            np.isfinite(fields).sum())
        fields = units.rain_rate_to_pixels(fields)
        if convert.georeference is not None:
            georeference = convert.georeference.window(window)
    if not convert.valid:
        raise InputError(f"--input={pattern!r}: no valid pixel in any frame (all no data)")
    if convert.no_data:
        meaning = "no data (pixel 0)" if data.storage == "rain_rate" else "no echo (pixel 0)"
        logging.getLogger(__name__).warning("%s: %d no-data pixels read as %s", pattern,
                                            convert.no_data, meaning)
    used_times = None if times is None else [times[paths.index(path)] for path in used]
    return RadarSequence(stored_to_model_pixels(fields, data)[..., None], used, used_times,
                         skipped_files(paths, used), georeference, window)


def read_radar_archive(pattern: str, archive: RadarArchive, image_size: int,
                       metadata: dict[str, Any] | None, count: int | None = None,
                       patch_size: int | None = None) -> np.ndarray:
    """The pixels ``[T, H, W, 1]`` of :func:`read_radar_sequence` (the centred ``S`` square
    unless ``patch_size`` is given)."""
    return read_radar_sequence(pattern, archive, image_size, metadata, count,
                               patch_size).pixels


def stored_to_model_pixels(stored: np.ndarray, data: TrainingData) -> np.ndarray:
    """Converter uint8 pixels -> the model's [0, 1] pixels (dBZ: re-mapped to its mapping)."""
    if data.storage == "rain_rate":
        return stored.astype(np.float32) / 255.0
    dbz = units.pixels_to_units(stored.astype(np.float64) / 255.0, units.hko7_mapping())
    return np.clip(units.units_to_pixels(dbz, data.value_mapping), 0.0, 1.0).astype(np.float32)
