"""The dataset conversions behind ``tools/make_*.py``: frozen options in, metadata out.

Each ``convert_*`` function reads the raw source through the per-dataset modules
(:mod:`moving_mnist`, :mod:`kth`, :mod:`radar`), cuts windows with :mod:`windows`, writes
shards through :class:`conversion.DatasetStaging` (atomic publish) and returns the metadata
it wrote. Input problems raise :class:`predrnn_tf.errors.DataError` or ``ValueError``
with a one-line message naming the flag, file or value.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import os
from typing import Any

import numpy as np
from absl import logging

from predrnn_tf import units
from predrnn_tf.data.converters import imaging, kth, moving_mnist, radar, windows
from predrnn_tf.data.converters import publishing as conversion
from predrnn_tf.errors import DataError

# ----------------------------------------------------------------------------- Moving MNIST


@dataclasses.dataclass(frozen=True)
class MovingMnistOptions:
    """Generation of Moving MNIST with the paper's recipe.

    Digit sources, in order of precedence: ``mnist_npz`` (Keras), ``train_images`` +
    ``test_images`` (IDX), ``test_images`` alone with ``split_test_digits`` = N (the first
    N digits draw the train sequences, the rest the test sequences), else synthetic glyphs
    rendered with OpenCV fonts (logged and marked ``synthetic`` in the metadata).
    """

    output_dir: str
    name: str = "mnist"
    train_images: str = ""
    test_images: str = ""
    mnist_npz: str = ""
    split_test_digits: int = 0
    num_train: int = 10000
    num_test: int = 5000
    total_length: int = 20
    num_digits: int = 2
    image_size: int = 64
    step_length: float = 0.1
    seed: int = 0
    sequences_per_shard: int = 1000


@dataclasses.dataclass(frozen=True)
class MovingMnistImportOptions:
    """Import of one split from ``mnist_test_seq.npy`` or the official npz."""

    output_dir: str
    split: str
    name: str = "mnist"
    from_npy: str = ""
    from_official_npz: str = ""
    sequences_per_shard: int = 1000


def load_digit_sources(options: MovingMnistOptions) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """Returns (train digits, test digits, description, synthetic)."""
    split_count = options.split_test_digits
    if split_count < 0:
        raise ValueError(f"--split_test_digits must be >= 0, got {split_count}")
    if options.mnist_npz:
        train = moving_mnist.read_keras_npz(options.mnist_npz, "train")
        test = moving_mnist.read_keras_npz(options.mnist_npz, "test")
        source = f"Keras mnist.npz {options.mnist_npz}"
        if split_count:
            train, test = _split_digits(test, split_count, "--mnist_npz x_test")
            source += f" (x_test split {split_count}/{len(test)})"
        return train, test, source, False
    if options.test_images and split_count:
        digits = moving_mnist.read_idx_images(options.test_images)
        train, test = _split_digits(digits, split_count, f"--test_images={options.test_images}")
        return train, test, (f"MNIST IDX {options.test_images} split {len(train)} train / "
                             f"{len(test)} test digits"), False
    if options.train_images or options.test_images:
        if not (options.train_images and options.test_images):
            raise ValueError("give both --train_images and --test_images, or --test_images "
                             "with --split_test_digits=N")
        train = moving_mnist.read_idx_images(options.train_images)
        test = moving_mnist.read_idx_images(options.test_images)
        return train, test, (f"MNIST IDX train {options.train_images}, test "
                             f"{options.test_images}"), False
    logging.warning("No MNIST file given: drawing SYNTHETIC digit glyphs rendered with "
                    "OpenCV fonts (for tests and demos, not MNIST).")
    train = moving_mnist.render_font_digits(2000, options.seed)
    test = moving_mnist.render_font_digits(1000, options.seed + 1)
    return train, test, "synthetic OpenCV font glyphs (not MNIST)", True


def convert_moving_mnist(options: MovingMnistOptions) -> dict[str, Any]:
    """Generates both splits of Moving MNIST; returns the metadata written."""
    for flag in ("num_train", "num_test", "total_length", "num_digits", "image_size"):
        if getattr(options, flag) < 1:
            raise ValueError(f"--{flag} must be positive, got {getattr(options, flag)}")
    if options.step_length <= 0:
        raise ValueError(f"--step_length must be positive, got {options.step_length}")
    train_digits, test_digits, source, synthetic = load_digit_sources(options)
    train_seed, test_seed = (int(seed.generate_state(1)[0])
                             for seed in np.random.SeedSequence(options.seed).spawn(2))
    plan = (("train", train_digits, options.num_train, train_seed),
            ("test", test_digits, options.num_test, test_seed))
    generator_kwargs = dict(num_frames=options.total_length, num_digits=options.num_digits,
                            image_size=options.image_size, step_length=options.step_length)
    with conversion.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        for split, digits, count, seed in plan:
            writer = staging.writer(split)
            sequences = moving_mnist.generate_sequences(digits, count, seed, **generator_kwargs)
            with conversion.ProgressBar(count, f"{options.name} {split}") as progress:
                for index, sequence in enumerate(sequences):
                    writer.write(sequence, f"{split}-{index:06d}")
                    progress.update()
        metadata = _common_metadata(options.image_size, options.image_size, 1, source,
                                    synthetic, "make_moving_mnist")
        metadata["details"] = {
            "generator": "bouncing digits (Srivastava et al. 2015)", **generator_kwargs,
            "seed": options.seed, "train_digits": len(train_digits),
            "test_digits": len(test_digits)}
        lengths = {"train": options.total_length, "test": options.total_length}
        return staging.commit(metadata, lengths)


def import_moving_mnist(options: MovingMnistImportOptions) -> dict[str, Any]:
    """Imports one split from an existing file; a second call completes the other split."""
    if options.split not in ("train", "test"):
        raise ValueError(f"--split must be train or test, got {options.split!r}")
    if bool(options.from_npy) == bool(options.from_official_npz):
        raise ValueError("give exactly one of --from_npy and --from_official_npz")
    if options.from_npy:
        array = moving_mnist.load_test_seq_npy(options.from_npy)
        count, length = array.shape[1], array.shape[0]
        height, width, channels = array.shape[2], array.shape[3], 1
        sequences = moving_mnist.iterate_test_seq(array)
        source = f"mnist_test_seq.npy {options.from_npy}"
    else:
        content = moving_mnist.load_official_npz(options.from_official_npz)
        clips, frames = content["clips"], content["input_raw_data"]
        count = clips.shape[1]
        lengths = set((clips[0, :, 1] + clips[1, :, 1]).tolist())
        if len(lengths) > 1:
            raise DataError(f"{options.from_official_npz}: clips have different lengths "
                            f"{sorted(lengths)}")
        length = lengths.pop() if lengths else 0
        channels, height, width = frames.shape[1:]
        sequences = moving_mnist.iterate_official_npz(content)
        source = f"official npz {options.from_official_npz}"
    if count == 0:
        raise DataError(f"{options.from_npy or options.from_official_npz} holds no sequence")
    with conversion.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        writer = staging.writer(options.split)
        with conversion.ProgressBar(count, f"{options.name} {options.split}") as progress:
            for index, sequence in enumerate(sequences):
                writer.write(sequence, f"{options.split}-{index:06d}")
                progress.update()
        metadata = _common_metadata(height, width, channels, source, False, "make_moving_mnist")
        return staging.commit(metadata, {options.split: int(length)})


def _split_digits(digits: np.ndarray, count: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < count < len(digits):
        raise ValueError(f"--split_test_digits={count} must be between 1 and {len(digits) - 1} "
                         f"for {what} ({len(digits)} digits)")
    return digits[:count], digits[count:]


# ----------------------------------------------------------------------------- KTH


@dataclasses.dataclass(frozen=True)
class KthOptions:
    """KTH action conversion (the official PredRNN selection by default)."""

    input_dir: str
    output_dir: str
    name: str = "kth"
    image_size: int = 128
    total_length: int = 20
    test_total_length: int = 30
    train_persons: tuple[int, ...] = kth.TRAIN_PERSONS
    test_persons: tuple[int, ...] = kth.TEST_PERSONS
    fast_stride: int = 3
    other_stride: int = 0
    actions: tuple[str, ...] = kth.ACTIONS
    sequences_per_shard: int = 500


def convert_kth(options: KthOptions) -> dict[str, Any]:
    """Converts KTH videos or frame folders; returns the metadata written."""
    for flag in ("image_size", "total_length", "test_total_length"):
        if getattr(options, flag) < 1:
            raise ValueError(f"--{flag} must be positive, got {getattr(options, flag)}")
    for flag in ("fast_stride", "other_stride"):
        if getattr(options, flag) < 0:
            raise ValueError(f"--{flag} must be >= 0 (0 = non-overlapping), got "
                             f"{getattr(options, flag)}")
    unknown = sorted(set(options.actions) - set(kth.ACTIONS))
    if unknown:
        raise ValueError(f"--actions: unknown {unknown}, expected some of {list(kth.ACTIONS)}")
    overlap = sorted(set(options.train_persons) & set(options.test_persons))
    if overlap:
        raise ValueError(f"--train_persons and --test_persons share persons {overlap}")
    clips = [clip for clip in kth.find_clips(options.input_dir)
             if clip.action in options.actions
             and kth.clip_split(clip, options.train_persons, options.test_persons)]
    if not clips:
        raise DataError(f"--input_dir={options.input_dir}: no clip of the selected actions and "
                        f"persons")
    lengths = {"train": options.total_length, "test": options.test_total_length}
    with conversion.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        with conversion.ProgressBar(len(clips), f"{options.name} clips") as progress:
            for clip in clips:
                split = kth.clip_split(clip, options.train_persons, options.test_persons)
                length = lengths[split]
                stride = kth.action_stride(clip.action, length, options.fast_stride,
                                           options.other_stride)
                writer = staging.writer(split)
                runs = kth.read_clip(clip, options.image_size)
                for start, window in kth.iterate_windows(runs, length, stride):
                    writer.write(np.ascontiguousarray(window), f"{clip.clip_id}:{start}")
                progress.update()
        for split in ("train", "test"):
            staging.writer(split)  # an empty split still gets metadata
        source = f"KTH action {'videos' if clips[0].is_video else 'frames'} {options.input_dir}"
        metadata = _common_metadata(options.image_size, options.image_size, 1, source, False,
                                    "make_kth")
        metadata["details"] = {
            "clips": len(clips), "actions": list(options.actions),
            "train_persons": list(options.train_persons),
            "test_persons": list(options.test_persons),
            "fast_actions": list(kth.FAST_ACTIONS), "fast_stride": options.fast_stride,
            "other_stride": options.other_stride or "non-overlapping"}
        return staging.commit(metadata, lengths)


# ----------------------------------------------------------------------------- radar


@dataclasses.dataclass(frozen=True)
class RadarOptions:
    """Radar archive conversion (importers: :mod:`radar`; units: :mod:`predrnn_tf.units`)."""

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


def convert_radar(options: RadarOptions) -> dict[str, Any]:
    """Converts a time-stamped radar archive; returns the metadata written."""
    _check_radar_options(options)
    importer = radar.make_importer(
        options.importer, radar.parse_importer_kwargs(options.importer_kwargs),
        use_pysteps=options.use_pysteps, pixel_scale=options.pixel_scale,
        pixel_offset=options.pixel_offset, no_data_pixel=options.no_data_pixel,
        pixel_unit=options.pixel_unit)
    paths, times = list_radar_files(options)
    test_after, segments, expected = plan_radar_windows(options, times)
    with conversion.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        no_data = _write_radar_windows(staging, options, importer, paths, times, segments,
                                       sum(expected.values()))
        source = f"{options.importer} files {options.input_glob}"
        metadata = _common_metadata(options.image_size, options.image_size, 1, source, False,
                                    "make_radar")
        metadata["value_mapping"] = units.hko7_mapping()
        metadata["no_data_pixels"] = no_data
        metadata["details"] = _radar_details(options, paths, times, test_after, segments)
        lengths = {"train": options.total_length, "test": options.total_length}
        return staging.commit(metadata, lengths)


def _check_radar_options(options: RadarOptions) -> None:
    for flag in ("image_size", "total_length", "stride"):
        if getattr(options, flag) < 1:
            raise ValueError(f"--{flag} must be positive, got {getattr(options, flag)}")
    if options.timestep_minutes <= 0:
        raise ValueError(f"--timestep_minutes must be positive, got {options.timestep_minutes}")


def plan_radar_windows(options: RadarOptions, times: list[datetime.datetime]
                       ) -> tuple[datetime.datetime, list[windows.Segment], dict[str, int]]:
    """(split time, gap-free segments, windows per split); DataError if no window fits."""
    timestep = datetime.timedelta(minutes=options.timestep_minutes)
    test_after = options.test_after or windows.default_split_time(times, options.test_fraction)
    segments = windows.split_segments(times, timestep, test_after)
    expected = windows.count_windows(segments, options.total_length, options.stride)
    if not sum(expected.values()):
        longest = max(segment.length for segment in segments)
        raise DataError(f"no window of --total_length={options.total_length} frames fits: the "
                        f"longest gap-free run on one side of the split has {longest} frames "
                        f"({len(times)} files, --timestep_minutes={options.timestep_minutes})")
    for split, count in expected.items():
        if not count:
            logging.warning("The %s split gets no window (split at %s); check --test_after.",
                            split, test_after)
    return test_after, segments, expected


def _write_radar_windows(staging: conversion.DatasetStaging, options: RadarOptions,
                         importer: radar.Importer, paths: list[str], times: list[datetime.datetime],
                         segments: list[windows.Segment], total: int) -> int:
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
    with conversion.ProgressBar(total, f"{options.name} windows") as progress:
        for split, first, frames in stream:
            sequence = np.stack(frames)[..., np.newaxis]  # [T, H, W, 1]
            staging.writer(split).write(sequence, f"{times[first]:%Y%m%d%H%M}")
            progress.update()
    return no_data[0]


def _radar_details(options: RadarOptions, paths: list[str], times: list[datetime.datetime],
                   test_after: datetime.datetime, segments: list[windows.Segment]) -> dict:
    return {
        "importer": options.importer, "importer_kwargs": options.importer_kwargs,
        "filename_pattern": options.filename_pattern, "files": len(paths),
        "first_time": f"{times[0]:%Y-%m-%dT%H:%M}", "last_time": f"{times[-1]:%Y-%m-%dT%H:%M}",
        "timestep_minutes": options.timestep_minutes, "stride": options.stride,
        "test_after": f"{test_after:%Y-%m-%dT%H:%M}",
        "segments": [[segment.split, f"{times[segment.start]:%Y-%m-%dT%H:%M}", segment.length]
                     for segment in segments],
        "crop": list(options.crop) if options.crop else "centred square",
        "zr_a": options.zr_a, "zr_b": options.zr_b,
        "no_data": "no-data pixels are stored as no echo (pixel 0); counted at source "
                   "resolution over the frames used"}


# ----------------------------------------------------------------------------- shared


def _common_metadata(height: int, width: int, channels: int, source: str, synthetic: bool,
                     converter: str) -> dict[str, Any]:
    return {"image_height": int(height), "image_width": int(width),
            "channels": int(channels), "value_mapping": None, "no_data_pixels": 0,
            "source": source, "synthetic": synthetic, "converter": converter}
