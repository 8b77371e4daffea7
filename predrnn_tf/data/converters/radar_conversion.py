"""Radar archive -> TFRecords (behind ``tools/make_radar.py``): frozen options in, metadata out.

Two storages (``--storage``):

- ``rain_rate`` (the real-radar recipe, ``configs/radar_real_data.flags``): every source
  (dBZ, mm/h, mm over any interval) becomes rain rate in mm/h, is area-averaged to the
  recipe's ``--pixel_km`` grid, sampled at the recipe's ``--interval_minutes`` and cut
  into ``--image_size`` tiles; stored in dBR with pixel 0 = no data
  (:func:`predrnn_tf.units.rain_rate_mapping`). Nothing depends on one source's grid
  size, units, interval or no-data value: those come from the importer (or the source's
  flags) and are checked.
- ``hko7_dbz`` (the original converter): dBZ in the HKO-7 mapping, no-data painted as no
  echo, the largest centred square resized to ``--image_size``.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import math
import os
import re
from typing import Any

import numpy as np
from absl import logging

from predrnn_tf import units
from predrnn_tf.data.converters import checks, imaging, publishing, radar, whole_frames, windows
from predrnn_tf.errors import ConfigError, DataError

STORAGES = ("hko7_dbz", "rain_rate")
SCHEMA_VERSION_NO_DATA = 2  # datasets whose value_mapping has a no-data pixel value
MAX_MINUTES = 1440.0  # --timestep_minutes / --interval_minutes: at most one day
MAX_PIXEL_KM = 1000.0


@dataclasses.dataclass(frozen=True)
class RadarOptions:
    """Radar archive conversion (importers: :mod:`radar`; units: :mod:`predrnn_tf.units`).

    ``timestep_minutes`` is the source's interval; ``interval_minutes`` the recipe's
    (``rain_rate`` storage: must be a whole multiple of the source's, frames in between are
    skipped; 0 = the source's). ``pixel_km`` is the recipe's grid spacing; the source's
    comes from the importer's metadata or ``source_pixel_km``. ``whole_test_frames``
    (``rain_rate``): the test split holds whole composites whose height and width are
    multiples of ``whole_frame_multiple`` (:mod:`.whole_frames`) instead of tiles.
    """

    input_glob: str
    output_dir: str
    filename_pattern: str
    name: str = "radar"
    importer: str = "fmi_pgm"
    importer_kwargs: str = "{}"
    use_pysteps: bool = False
    timestep_minutes: float = 5.0
    image_size: int = 128
    crop: tuple[int, int, int, int] | None = None
    total_length: int = 20
    stride: int = 1
    test_after: datetime.datetime | None = None
    test_fraction: float = 0.2
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    no_data_pixel: int | None = None
    pixel_unit: str = "dBZ"
    zr_a: float = units.ZR_A
    zr_b: float = units.ZR_B
    sequences_per_shard: int = 500
    storage: str = "hko7_dbz"
    pixel_km: float = 2.0
    source_pixel_km: float = 0.0
    interval_minutes: float = 0.0
    tile_stride: int = 0
    min_valid_fraction: float = 0.5
    min_wet_fraction: float = 0.0
    whole_test_frames: bool = False
    whole_frame_multiple: int = 16


def list_radar_files(options: RadarOptions) -> tuple[list[str], list[datetime.datetime]]:
    """The matching files and their time stamps, sorted by time (duplicates refused)."""
    paths = sorted(glob.glob(options.input_glob, recursive=True))
    paths = [path for path in paths if os.path.isfile(path)]
    if not paths:
        raise DataError(f"--input_glob={options.input_glob!r} matches no file")
    pattern = radar.FilenamePattern(options.filename_pattern)
    stamped = sorted((pattern.timestamp(path), path) for path in paths)
    for (time_a, path_a), (time_b, path_b) in zip(stamped, stamped[1:], strict=False):
        if time_a == time_b:
            raise DataError(f"two files have the time stamp {time_a:%Y-%m-%d %H:%M}: "
                            f"{path_a} and {path_b}")
    return [path for _, path in stamped], [time for time, _ in stamped]


def time_factor(options: RadarOptions) -> int:
    """Source frames per recipe interval; ConfigError when not a whole number."""
    if options.storage != "rain_rate" or not options.interval_minutes:
        return 1
    ratio = options.interval_minutes / options.timestep_minutes
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
        raise ConfigError(
            f"--timestep_minutes={options.timestep_minutes:g}: the recipe's "
            f"--interval_minutes={options.interval_minutes:g} is not a whole multiple of it "
            f"(frames are sub-sampled in time, never interpolated)")
    return int(round(ratio))


def span_length(options: RadarOptions) -> int:
    """Source frames one stored sequence spans."""
    return (options.total_length - 1) * time_factor(options) + 1


def convert_radar(options: RadarOptions) -> dict[str, Any]:
    """Converts a time-stamped radar archive; returns the metadata written."""
    check_radar_options(options)
    importer = radar.make_importer(
        options.importer, radar.parse_importer_kwargs(options.importer_kwargs),
        use_pysteps=options.use_pysteps, pixel_scale=options.pixel_scale,
        pixel_offset=options.pixel_offset, no_data_pixel=options.no_data_pixel,
        pixel_unit=options.pixel_unit)
    paths, times = list_radar_files(options)
    test_after, segments, expected = plan_radar_windows(options, times)
    with publishing.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        if options.storage == "rain_rate":
            writer = _RainRateWriter(options, importer)
            stats = writer.write(staging, paths, times, segments, sum(expected.values()))
            size = options.image_size
        else:
            stats = {"no_data_pixels": _write_hko7_windows(
                staging, options, importer, paths, times, segments, sum(expected.values()))}
            size = options.image_size
        source = f"{options.importer} files {options.input_glob}"
        metadata = publishing.common_metadata(size, size, 1, source, False, "make_radar")
        metadata["no_data_pixels"] = stats.pop("no_data_pixels")
        metadata["details"] = radar_details(options, paths, times, test_after, segments)
        if options.storage == "rain_rate":
            metadata["value_mapping"] = units.rain_rate_mapping()
            metadata["schema_version"] = SCHEMA_VERSION_NO_DATA
            metadata["grid"] = stats.pop("grid")
            metadata.update(stats.pop("whole_frames"))
            metadata["details"].update(stats)
        else:
            metadata["value_mapping"] = units.hko7_mapping()
        lengths = {"train": options.total_length, "test": options.total_length}
        return staging.commit(metadata, lengths)


def check_radar_options(options: RadarOptions) -> None:
    """ConfigError naming the first flag whose value is out of range (before any file)."""
    checks.output(options.output_dir, options.name, options.sequences_per_shard)
    checks.integer("image_size", options.image_size, 1, checks.MAX_IMAGE_SIZE)
    checks.integer("total_length", options.total_length, 1, checks.MAX_FRAMES)
    checks.integer("stride", options.stride, 1, checks.MAX_STRIDE)
    checks.integer("tile_stride", options.tile_stride, 0, checks.MAX_IMAGE_SIZE)
    checks.integer("whole_frame_multiple", options.whole_frame_multiple, 1, 256)
    if options.no_data_pixel is not None:
        checks.integer("no_data_pixel", options.no_data_pixel, 0, 65535)
    if options.storage not in STORAGES:
        raise ConfigError(f"--storage must be one of {', '.join(STORAGES)}, got "
                          f"{options.storage!r}")
    _check_radar_numbers(options)
    time_factor(options)
    radar.FilenamePattern(options.filename_pattern)  # ConfigError naming --filename_pattern


def _check_radar_numbers(options: RadarOptions) -> None:
    """The float flags: finite, inside physically sensible ranges."""
    checks.number("timestep_minutes", options.timestep_minutes, 0.0, MAX_MINUTES,
                  low_open=True)
    checks.number("interval_minutes", options.interval_minutes, 0.0, MAX_MINUTES)
    checks.number("test_fraction", options.test_fraction, 0.0, 0.99, low_open=True)
    checks.number("pixel_scale", options.pixel_scale, 0.0, 1000.0, low_open=True)
    checks.number("pixel_offset", options.pixel_offset, -10_000.0, 10_000.0)
    checks.number("zr_a", options.zr_a, 0.0, 10_000.0, low_open=True)
    checks.number("zr_b", options.zr_b, 0.0, 10.0, low_open=True)
    checks.number("pixel_km", options.pixel_km, 0.0, MAX_PIXEL_KM, low_open=True)
    checks.number("source_pixel_km", options.source_pixel_km, 0.0, MAX_PIXEL_KM)
    checks.number("min_valid_fraction", options.min_valid_fraction, 0.0, 1.0)
    checks.number("min_wet_fraction", options.min_wet_fraction, 0.0, 1.0)


def plan_radar_windows(options: RadarOptions, times: list[datetime.datetime]
                       ) -> tuple[datetime.datetime, list[windows.Segment], dict[str, int]]:
    """(split time, gap-free segments, windows per split); DataError if no window fits."""
    timestep = datetime.timedelta(minutes=options.timestep_minutes)
    test_after = options.test_after or windows.default_split_time(times, options.test_fraction)
    segments = windows.split_segments(times, timestep, test_after)
    span = span_length(options)
    expected = windows.count_windows(segments, span, options.stride)
    if not sum(expected.values()):
        longest = max(segment.length for segment in segments)
        raise DataError(f"no window of --total_length={options.total_length} frames fits "
                        f"({span} source frames): the longest gap-free event on one side "
                        f"of the split has {longest} frames ({len(times)} files, "
                        f"--timestep_minutes={options.timestep_minutes:g})")
    for split, count in expected.items():
        if not count:
            logging.warning("The %s split gets no window (split at %s); check --test_after.",
                            split, test_after)
    return test_after, segments, expected


def source_pixel_km(options: RadarOptions, info: dict[str, Any], path: str) -> float:
    """The source's grid spacing in km: ``--source_pixel_km``, else the importer's metadata.

    pysteps' ``xpixelsize`` is in the projection's unit: metres, unless the projection
    says ``+units=km`` or gives the earth's radius in km (``+a=6378.137``).
    """
    if options.source_pixel_km > 0:
        return float(options.source_pixel_km)
    if info.get("pixel_km"):
        return float(info["pixel_km"])
    size = info.get("xpixelsize")
    if not size:
        raise DataError(f"{path}: the importer does not state the grid spacing: pass "
                        f"--source_pixel_km")
    projection = str(info.get("projection") or "")
    radius = re.search(r"\+a=([0-9.eE+-]+)", projection)
    in_km = "+units=km" in projection or (radius is not None and float(radius.group(1)) < 1e5)
    return float(size) if in_km else float(size) / 1000.0


class _RainRateWriter:
    """Writes the ``rain_rate`` storage: recipe grid, recipe interval, tiles, dBR pixels."""

    def __init__(self, options: RadarOptions, importer: radar.Importer):
        self.options = options
        self.importer = importer
        self.unit: str | None = None
        self.first_path = ""
        self.factor = 0.0
        self.source_km = 0.0
        self.no_data = 0
        self.valid_seen = 0
        self.kept = {"train": 0, "test": 0}
        self.dropped = 0
        self.field_shape: tuple[int, int] | None = None
        self.whole = whole_frames.WholeFrameCutter(
            options.whole_frame_multiple, options.min_valid_fraction,
            options.min_wet_fraction) if options.whole_test_frames else None

    def load(self, path: str) -> np.ndarray:
        """One file -> rain rate on the recipe grid (checks units and spacing)."""
        values, info = self.importer(path)
        unit = units.field_unit(info)
        if self.unit is None:
            self.unit, self.first_path = unit, path
            self.source_km = source_pixel_km(self.options, info, path)
            self.factor = self.options.pixel_km / self.source_km
        elif unit != self.unit:
            raise DataError(f"mixed units in one dataset: {path} holds {unit} but "
                            f"{self.first_path} holds {self.unit}")
        field = imaging.prepare_rain_rate_field(values, info, self.factor, self.options.crop,
                                                self.options.zr_a, self.options.zr_b)
        self.no_data += int(np.isnan(field).sum())
        self.valid_seen += int(np.isfinite(field).sum())
        self.field_shape = field.shape
        return field

    def write(self, staging: publishing.DatasetStaging, paths: list[str],
              times: list[datetime.datetime], segments: list[windows.Segment],
              total: int) -> dict[str, Any]:
        """Writes every kept tile of every window; returns statistics for the metadata."""
        options = self.options
        step = time_factor(options)
        for split in ("train", "test"):
            staging.writer(split)  # an empty split still gets metadata
        stream = windows.stream_windows(paths, segments, span_length(options), options.stride,
                                        self.load)
        with publishing.ProgressBar(total, f"{options.name} windows") as progress:
            for split, first, frames in stream:
                window = np.stack(frames[::step])  # [T, H, W] mm/h, NaN = no data
                if split == "test" and self.whole is not None:
                    self._write_whole(staging, window, times[first])
                else:
                    self._write_tiles(staging, split, window, times[first])
                progress.update()
        if not self.valid_seen:
            raise DataError(f"--input_glob={options.input_glob!r}: no valid pixel in any frame "
                            f"(every value is no data)")
        if not sum(self.kept.values()):
            raise DataError(f"no tile of --image_size={options.image_size} kept: fields are "
                            f"{self.field_shape} pixels at --pixel_km={options.pixel_km:g}, "
                            f"--min_valid_fraction={options.min_valid_fraction:g}, "
                            f"--min_wet_fraction={options.min_wet_fraction:g}")
        return {"no_data_pixels": self.no_data, "tiles_kept": dict(self.kept),
                "tiles_dropped": self.dropped, "source_pixel_km": self.source_km,
                "whole_frames": self.whole.metadata() if self.whole is not None else {},
                "grid": {"pixel_km": options.pixel_km,
                         "interval_minutes": options.timestep_minutes * step,
                         "source_timestep_minutes": options.timestep_minutes,
                         "frames_skipped_between": step - 1}}

    def _write_whole(self, staging: publishing.DatasetStaging, window: np.ndarray,
                     start: datetime.datetime) -> None:
        frames = self.whole(window)  # [T, h, w] or None (dropped)
        if frames is None:
            self.dropped += 1
            return
        pixels = units.rain_rate_to_pixels(frames)[..., np.newaxis]  # [T, h, w, 1]
        staging.writer("test").write(pixels, f"{start:%Y%m%d%H%M}:whole")
        self.kept["test"] += 1

    def _write_tiles(self, staging: publishing.DatasetStaging, split: str, window: np.ndarray,
                     start: datetime.datetime) -> None:
        options = self.options
        size = options.image_size
        stride = options.tile_stride or size
        boxes = imaging.tile_boxes(window.shape[1], window.shape[2], size, stride)
        if not boxes:
            raise DataError(f"{self.first_path}: the field is {window.shape[1]}x"
                            f"{window.shape[2]} pixels at --pixel_km={options.pixel_km:g}, "
                            f"smaller than one --image_size={size} tile")
        for top, left in boxes:
            tile = window[:, top:top + size, left:left + size]  # [T, S, S]
            valid = np.isfinite(tile)
            wet = np.nan_to_num(tile, nan=0.0) >= 0.1
            valid_share = valid.mean()
            wet_share = wet.sum() / max(valid.sum(), 1)
            if valid_share < options.min_valid_fraction or wet_share < options.min_wet_fraction:
                self.dropped += 1
                continue
            pixels = units.rain_rate_to_pixels(tile)[..., np.newaxis]  # [T, S, S, 1]
            staging.writer(split).write(pixels, f"{start:%Y%m%d%H%M}:{top}:{left}")
            self.kept[split] += 1


def _write_hko7_windows(staging: publishing.DatasetStaging, options: RadarOptions,
                        importer: radar.Importer, paths: list[str],
                        times: list[datetime.datetime], segments: list[windows.Segment],
                        total: int) -> int:
    """Writes every window into ``staging``; returns the no-data pixels of the frames used."""
    no_data = [0]

    def load(path: str) -> np.ndarray:
        values, info = importer(path)
        frame, missing = imaging.prepare_radar_frame(values, info, options.image_size,
                                                     options.crop, options.zr_a, options.zr_b)
        no_data[0] += missing
        return frame

    for split in ("train", "test"):
        staging.writer(split)  # an empty split still gets metadata
    stream = windows.stream_windows(paths, segments, options.total_length, options.stride, load)
    with publishing.ProgressBar(total, f"{options.name} windows") as progress:
        for split, first, frames in stream:
            sequence = np.stack(frames)[..., np.newaxis]  # [T, H, W, 1]
            staging.writer(split).write(sequence, f"{times[first]:%Y%m%d%H%M}")
            progress.update()
    return no_data[0]


def radar_details(options: RadarOptions, paths: list[str], times: list[datetime.datetime],
                  test_after: datetime.datetime, segments: list[windows.Segment]) -> dict:
    """The ``details`` field of the metadata: importer, files, times, split, segments."""
    details = {
        "importer": options.importer, "importer_kwargs": options.importer_kwargs,
        "filename_pattern": options.filename_pattern, "files": len(paths),
        "first_time": f"{times[0]:%Y-%m-%dT%H:%M}", "last_time": f"{times[-1]:%Y-%m-%dT%H:%M}",
        "timestep_minutes": options.timestep_minutes, "stride": options.stride,
        "test_after": f"{test_after:%Y-%m-%dT%H:%M}",
        "segments": [[segment.split, f"{times[segment.start]:%Y-%m-%dT%H:%M}", segment.length]
                     for segment in segments],
        "crop": list(options.crop) if options.crop else "centred square",
        "zr_a": options.zr_a, "zr_b": options.zr_b, "storage": options.storage,
        "no_data": "no-data pixels are stored as no echo (pixel 0); counted at source "
                   "resolution over the frames used"}
    if options.storage == "rain_rate":
        details.update({
            "crop": list(options.crop) if options.crop else "whole field",
            "tile_stride": options.tile_stride or options.image_size,
            "min_valid_fraction": options.min_valid_fraction,
            "min_wet_fraction": options.min_wet_fraction,
            "no_data": "pixel 0 = no data (NaN from the importer, or a recipe pixel less than "
                       "min 50% covered); counted on the recipe grid over the frames loaded",
            "interval_rule": f"{math.floor(time_factor(options)) - 1} source frame(s) skipped "
                             f"between stored frames"})
    return details
