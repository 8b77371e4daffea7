"""The radar conversion in whole, independent shards: parallel, resumable, engine-neutral.

:func:`plan` cuts the windows of :func:`radar_conversion.plan_radar_windows` into
:class:`resumable.ShardTask` s of ``sequences_per_shard`` windows, each carrying the file
paths its windows span. :class:`RadarShardWriter` (picklable) writes one task: it loads
each file once per shard (a rolling cache of one window's frames: memory flat in the
archive's length), cuts the windows as the single-process converter does (HKO-7 dBZ
frames, or rain-rate tiles on the recipe grid) and stores each record's ``wet_fraction``
(:mod:`predrnn_tf.data.wetness`). :func:`convert` runs the tasks with ``num_workers``
processes (:mod:`resumable`) and publishes; :mod:`beam_pipeline` runs the same tasks on
Apache Beam. Per-file statistics (no-data pixels) are counted by the shard that owns the
file, so they do not depend on the shard layout.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.data import schema, wetness
from predrnn_tf.data.converters import (
    imaging,
    parallel,
    publishing,
    radar,
    radar_conversion,
    resumable,
    shard_metadata,
    whole_frames,
)
from predrnn_tf.errors import DataError

STAMP = "%Y%m%d%H%M"


def plan(options: radar_conversion.RadarOptions, paths: list[str],
         times: list[datetime.datetime]) -> tuple[list[resumable.ShardTask], dict[str, Any]]:
    """The shard tasks of a conversion and the facts the metadata needs."""
    test_after, segments, _ = radar_conversion.plan_radar_windows(options, times)
    span = radar_conversion.span_length(options)
    starts: dict[str, list[int]] = {"train": [], "test": []}
    for segment in segments:
        for offset in range(0, segment.length - span + 1, options.stride):
            starts[segment.split].append(segment.start + offset)
    tasks = []
    size = options.sequences_per_shard
    for split, firsts in starts.items():
        chunks = [firsts[begin:begin + size] for begin in range(0, len(firsts), size)]
        for index, chunk in enumerate(chunks):
            low, high = chunk[0], chunk[-1] + span
            owned_end = chunks[index + 1][0] if index + 1 < len(chunks) else high
            windows = tuple((first - low, f"{times[first]:{STAMP}}") for first in chunk)
            tasks.append(resumable.ShardTask(split, index, windows, tuple(paths[low:high]),
                                             min(owned_end, high) - low))
    return tasks, {"test_after": test_after, "segments": segments}


@dataclasses.dataclass(frozen=True)
class RadarShardWriter:
    """Writes one :class:`resumable.ShardTask` of a radar conversion (picklable).

    Attributes:
      options: the conversion's options.
      whole_box: ``--whole_test_frames``: the box found on the first test window
        (:func:`first_test_box`), shared by every test shard; None otherwise.
      footprint_pixels: the composite's footprint on that window.
    """

    options: radar_conversion.RadarOptions
    whole_box: whole_frames.Box | None = None
    footprint_pixels: int = 0

    def __call__(self, task: resumable.ShardTask, path: str) -> dict[str, Any]:
        """Writes the task's records to the TFRecord file ``path``; returns its statistics."""
        options = self.options
        loader = _FrameLoader(options, make_importer(options), task)
        cutter = _RainRateTiles(options) if options.storage == "rain_rate" else None
        if cutter and task.split == "test" and self.whole_box is not None:
            cutter = _WholeFrames(options, self.whole_box, self.footprint_pixels)
        span = radar_conversion.span_length(options)
        step = radar_conversion.time_factor(options)
        stats: dict[str, Any] = {}
        fractions: list[float] = []
        with tf.io.TFRecordWriter(path) as writer:
            for offset, stamp in task.windows:
                frames = loader.window(offset, span)[::step]
                records = (cutter.records(frames, stamp) if cutter
                           else [_hko7(frames, stamp, options)])
                for pixels, sequence_id, fraction in records:
                    writer.write(schema.serialize_sequence(pixels, sequence_id, fraction))
                    fractions.append(fraction)
        stats["records"] = len(fractions)
        stats["wet_histogram"] = wetness.histogram(fractions)
        stats.update(loader.stats())
        if cutter:
            stats.update(cutter.stats())
        return stats


def make_importer(options: radar_conversion.RadarOptions) -> radar.Importer:
    """The importer the options name (built in each worker: importers are not picklable)."""
    return radar.make_importer(
        options.importer, radar.parse_importer_kwargs(options.importer_kwargs),
        use_pysteps=options.use_pysteps, pixel_scale=options.pixel_scale,
        pixel_offset=options.pixel_offset, no_data_pixel=options.no_data_pixel,
        pixel_unit=options.pixel_unit)


def _hko7(frames: list[np.ndarray], stamp: str, options) -> tuple[np.ndarray, str, float]:
    """One HKO-7 record: uint8 ``[T, H, W, 1]``, its id, its wet fraction."""
    pixels = np.stack(frames)[..., np.newaxis]
    dbz = 70.0 * pixels.astype(np.float64) / 255.0 - 10.0
    rate = units.dbz_to_rain_rate(dbz, options.zr_a, options.zr_b)
    return pixels, stamp, wetness.wet_fraction(rate)


class _FrameLoader:
    """Loads a task's frames in order through a rolling cache; counts owned statistics."""

    def __init__(self, options, importer: radar.Importer, task: resumable.ShardTask):
        self.options = options
        self.importer = importer
        self.inputs = task.inputs
        self.owned = len(task.inputs) if task.owned < 0 else task.owned
        self.cache: dict[int, np.ndarray] = {}
        self.no_data = 0
        self.valid_seen = 0
        self.unit: str | None = None
        self.source_km = 0.0
        self.field_shape: list[int] = []

    def window(self, first: int, span: int) -> list[np.ndarray]:
        """The frames ``inputs[first:first + span]`` (each file decoded once per shard)."""
        for offset in [key for key in self.cache if key < first]:
            del self.cache[offset]
        for offset in range(first, first + span):
            if offset not in self.cache:
                self.cache[offset] = self._load(offset)
        return [self.cache[offset] for offset in range(first, first + span)]

    def _load(self, offset: int) -> np.ndarray:
        path = self.inputs[offset]
        values, info = self.importer(path)
        options = self.options
        if options.storage != "rain_rate":
            frame, missing = imaging.prepare_radar_frame(
                values, info, options.image_size, options.crop, options.zr_a, options.zr_b)
            self.no_data += missing if offset < self.owned else 0
            return frame
        unit = units.field_unit(info)
        if self.unit is None:
            self.unit = unit
            self.source_km = radar_conversion.source_pixel_km(options, info, path)
        elif unit != self.unit:
            raise DataError(f"mixed units in one dataset: {path} holds {unit} but "
                            f"{self.inputs[0]} holds {self.unit}")
        field = imaging.prepare_rain_rate_field(values, info, options.pixel_km / self.source_km,
                                                options.crop, options.zr_a, options.zr_b)
        if offset < self.owned:
            self.no_data += int(np.isnan(field).sum())
            self.valid_seen += int(np.isfinite(field).sum())
        self.field_shape = list(field.shape)
        return field

    def stats(self) -> dict[str, Any]:
        """The per-file statistics of the owned files."""
        return {"no_data_pixels": self.no_data, "valid_seen": self.valid_seen,
                "unit": self.unit, "source_pixel_km": self.source_km,
                "field_shape": self.field_shape, "first_path": self.inputs[0]}


class _RainRateTiles:
    """The rain-rate storage's tiles of one window (as the single-process converter)."""

    def __init__(self, options):
        self.options = options
        self.kept = 0
        self.dropped = 0

    def records(self, frames: list[np.ndarray], stamp: str) -> list[tuple[np.ndarray, str, float]]:
        """The kept tiles of a window ``[T, H, W]`` mm/h: (pixels, id, wet fraction)."""
        options = self.options
        window = np.stack(frames)
        size = options.image_size
        boxes = imaging.tile_boxes(window.shape[1], window.shape[2], size,
                                   options.tile_stride or size)
        if not boxes:
            raise DataError(f"the field is {window.shape[1]}x{window.shape[2]} pixels at "
                            f"--pixel_km={options.pixel_km:g}, smaller than one "
                            f"--image_size={size} tile")
        kept = []
        for top, left in boxes:
            tile = window[:, top:top + size, left:left + size]
            valid = np.isfinite(tile)
            wet = np.nan_to_num(tile, nan=0.0) >= 0.1
            wet_share = wet.sum() / max(valid.sum(), 1)
            if valid.mean() < options.min_valid_fraction or wet_share < options.min_wet_fraction:
                self.dropped += 1
                continue
            pixels = units.rain_rate_to_pixels(tile)[..., np.newaxis]
            kept.append((pixels, f"{stamp}:{top}:{left}", wetness.wet_fraction(tile)))
        self.kept += len(kept)
        return kept

    def stats(self) -> dict[str, Any]:
        """Tiles kept and dropped."""
        return {"tiles_kept": self.kept, "tiles_dropped": self.dropped}


class _WholeFrames:
    """The whole-composite test records of one window (``--whole_test_frames``)."""

    def __init__(self, options, box: whole_frames.Box, footprint_pixels: int):
        self.cutter = whole_frames.WholeFrameCutter(
            options.whole_frame_multiple, options.min_valid_fraction, options.min_wet_fraction)
        self.cutter.box, self.cutter.footprint_pixels = box, footprint_pixels
        self.kept = 0
        self.dropped = 0

    def records(self, frames: list[np.ndarray], stamp: str) -> list[tuple[np.ndarray, str, float]]:
        """The window cut to the box, or nothing when the cutter drops it."""
        whole = self.cutter(np.stack(frames))
        if whole is None:
            self.dropped += 1
            return []
        self.kept += 1
        pixels = units.rain_rate_to_pixels(whole)[..., np.newaxis]
        return [(pixels, f"{stamp}:whole", wetness.wet_fraction(whole))]

    def stats(self) -> dict[str, Any]:
        """Windows kept and dropped (counted as tiles)."""
        return {"tiles_kept": self.kept, "tiles_dropped": self.dropped}


def first_test_box(options: radar_conversion.RadarOptions, tasks: list[resumable.ShardTask]
                   ) -> tuple[whole_frames.Box | None, int]:
    """``--whole_test_frames``: the box and footprint of the first test window (else None)."""
    test_tasks = [task for task in tasks if task.split == "test"]
    if not (options.whole_test_frames and options.storage == "rain_rate" and test_tasks):
        return None, 0
    task = test_tasks[0]
    loader = _FrameLoader(options, make_importer(options), task)
    offset = task.windows[0][0]
    frames = loader.window(offset, radar_conversion.span_length(options))
    window = np.stack(frames[::radar_conversion.time_factor(options)])
    box, footprint = whole_frames.valid_extent(window, options.whole_frame_multiple)
    return box, int(footprint.sum())


@dataclasses.dataclass(frozen=True)
class Conversion:
    """A planned conversion: what any engine needs to write its shards and publish them.

    Attributes:
      options: the conversion's options.
      paths: the archive's files, sorted by time.
      times: their time stamps.
      tasks: every shard task.
      facts: split time and segments (for the metadata).
      folder: the staging folder (on a file system every worker sees).
      writer: the picklable shard writer.
    """

    options: radar_conversion.RadarOptions
    paths: list[str]
    times: list[datetime.datetime]
    tasks: list[resumable.ShardTask]
    facts: dict[str, Any]
    folder: str
    writer: RadarShardWriter

    def pending(self) -> list[resumable.ShardTask]:
        """The tasks whose shard is not finished yet."""
        return [task for task in self.tasks
                if resumable.finished_manifest(self.folder, self.options.name, task) is None]


def prepare(options: radar_conversion.RadarOptions) -> Conversion:
    """Checks the options, lists the files, plans the shards and opens the staging folder."""
    radar_conversion.check_radar_options(options)
    paths, times = radar_conversion.list_radar_files(options)
    tasks, facts = plan(options, paths, times)
    folder = resumable.open_staging(options.output_dir, options.name,
                                    plan_fingerprint(options, paths))
    box, footprint = first_test_box(options, tasks)
    return Conversion(options, paths, times, tasks, facts, folder,
                      RadarShardWriter(options, box, footprint))


def finish(conversion: Conversion, manifests: list[dict[str, Any]],
           sampling: wetness.WetSampling | None = None) -> dict[str, Any]:
    """Publishes the finished shards with their metadata; returns the metadata."""
    options, writer = conversion.options, conversion.writer
    metadata = shard_metadata.radar_metadata(options, conversion.paths, conversion.times,
                                             conversion.facts, manifests, sampling)
    if writer.whole_box is not None:
        box = writer.whole_box
        metadata.update({"test_image_height": box.height, "test_image_width": box.width,
                         "whole_test_frames": {"box_on_recipe_grid": box.as_dict(),
                                               "multiple": options.whole_frame_multiple,
                                               "footprint_pixels": writer.footprint_pixels}})
    lengths = {"train": options.total_length, "test": options.total_length}
    return resumable.publish(conversion.folder, options.output_dir, options.name, manifests,
                             metadata, lengths)


def convert(options: radar_conversion.RadarOptions, num_workers: int = 1,
            sampling: wetness.WetSampling | None = None) -> dict[str, Any]:
    """Converts a radar archive shard by shard with ``num_workers`` processes, resumably.

    Running the same call again after an interruption (even kill -9) keeps the finished
    shards; the published dataset is identical whatever the number of workers.

    Returns:
      The metadata written.
    """
    parallel.check_num_workers(num_workers)
    conversion = prepare(options)
    manifests = resumable.run_shards(conversion.writer, conversion.folder, options.name,
                                     conversion.tasks, num_workers, f"{options.name} windows")
    return finish(conversion, manifests, sampling)


def plan_fingerprint(options: radar_conversion.RadarOptions, paths: list[str]) -> str:
    """Identifies a conversion: its flags, its files and their sizes (not output_dir)."""
    values = dataclasses.asdict(options)
    values.pop("output_dir")
    sizes = [[path, _size(path)] for path in paths]
    return resumable.fingerprint({"options": values, "files": sizes,
                                  "converter_version": publishing.CONVERTER_VERSION})


def _size(path: str) -> int:
    try:
        return int(tf.io.gfile.stat(path).length)
    except tf.errors.OpError:
        return -1
