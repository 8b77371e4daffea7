"""The dataset conversions behind ``tools/make_*.py``: frozen options in, metadata out.

Each ``convert_*`` function reads the raw source through the per-dataset modules
(:mod:`moving_mnist`, :mod:`kth`, :mod:`radar`), cuts windows with :mod:`windows`, writes
shards through :class:`publishing.DatasetStaging` (atomic publish) and returns the metadata
it wrote. Input problems raise :class:`predrnn_tf.errors.DataError` or ``ValueError``
with a one-line message naming the flag, file or value.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
from absl import logging

from predrnn_tf.data.converters import checks, kth, moving_mnist, parallel, publishing
from predrnn_tf.errors import ConfigError, DataError

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
    intensity_mode: str = "constant"  # Fig. 9: constant | sudden | periodic
    intensity_periods: tuple[float, ...] = (5.0, 10.0, 20.0)
    sudden_factor: float = 0.5

    def __post_init__(self):
        checks.output(self.output_dir, self.name, self.sequences_per_shard)
        for flag in ("num_train", "num_test"):
            checks.integer(flag, getattr(self, flag), 1, checks.MAX_SEQUENCES)
        checks.integer("total_length", self.total_length, 1, checks.MAX_FRAMES)
        checks.integer("num_digits", self.num_digits, 1, 100)
        checks.integer("image_size", self.image_size, 1, checks.MAX_IMAGE_SIZE)
        checks.integer("split_test_digits", self.split_test_digits, 0, checks.MAX_SEQUENCES)
        checks.integer("seed", self.seed, 0, 2**63 - 1)
        checks.number("step_length", self.step_length, 0.0, 1.0, low_open=True)
        checks.number("sudden_factor", self.sudden_factor, 0.0, 1.0, low_open=True)
        if not self.intensity_periods:
            raise ConfigError("--intensity_periods must list at least one period")
        for period in self.intensity_periods:
            checks.number("intensity_periods", period, 0.0, checks.MAX_FRAMES, low_open=True)
        if self.mnist_npz and (self.train_images or self.test_images):
            raise ConfigError("--train_images / --test_images cannot be combined with "
                              "--mnist_npz (it holds both splits): give one source")
        checks.dataset_size(self.num_train + self.num_test, self.total_length,
                            self.image_size)


@dataclasses.dataclass(frozen=True)
class MovingMnistImportOptions:
    """Import of one split from ``mnist_test_seq.npy`` or the official npz."""

    output_dir: str
    split: str
    name: str = "mnist"
    from_npy: str = ""
    from_official_npz: str = ""
    sequences_per_shard: int = 1000

    def __post_init__(self):
        checks.output(self.output_dir, self.name, self.sequences_per_shard)


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
    train_digits, test_digits, source, synthetic = load_digit_sources(options)
    _check_digits_fit(train_digits, test_digits, options.image_size)
    train_seed, test_seed = (int(seed.generate_state(1)[0])
                             for seed in np.random.SeedSequence(options.seed).spawn(2))
    plan = (("train", train_digits, options.num_train, train_seed),
            ("test", test_digits, options.num_test, test_seed))
    generator_kwargs = dict(num_frames=options.total_length, num_digits=options.num_digits,
                            image_size=options.image_size, step_length=options.step_length,
                            intensity_mode=options.intensity_mode,
                            intensity_periods=tuple(options.intensity_periods),
                            sudden_factor=options.sudden_factor)
    moving_mnist.intensity_scales(np.random.default_rng(0), options.total_length,
                                  options.intensity_mode, options.intensity_periods,
                                  options.sudden_factor)  # bad values fail before any write
    with publishing.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        for split, digits, count, seed in plan:
            writer = staging.writer(split)
            sequences = moving_mnist.generate_sequences(digits, count, seed, **generator_kwargs)
            with publishing.ProgressBar(count, f"{options.name} {split}") as progress:
                for index, sequence in enumerate(sequences):
                    writer.write(sequence, f"{split}-{index:06d}")
                    progress.update()
        metadata = publishing.common_metadata(options.image_size, options.image_size, 1, source,
                                              synthetic, "make_moving_mnist")
        metadata["details"] = {
            "generator": "bouncing digits (Srivastava et al. 2015)", **generator_kwargs,
            "seed": options.seed, "train_digits": len(train_digits),
            "test_digits": len(test_digits)}
        lengths = {"train": options.total_length, "test": options.total_length}
        return staging.commit(metadata, lengths)


def _check_digits_fit(train: np.ndarray, test: np.ndarray, image_size: int) -> None:
    """ConfigError naming --image_size if the digits do not fit the canvas."""
    side = max(train.shape[1], train.shape[2], test.shape[1], test.shape[2])
    if side > image_size:
        raise ConfigError(f"--image_size={image_size} must be at least the digits' size "
                          f"{side} (they bounce inside the canvas)")


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
    with publishing.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        writer = staging.writer(options.split)
        with publishing.ProgressBar(count, f"{options.name} {options.split}") as progress:
            for index, sequence in enumerate(sequences):
                writer.write(sequence, f"{options.split}-{index:06d}")
                progress.update()
        metadata = publishing.common_metadata(height, width, channels, source, False,
                                              "make_moving_mnist")
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
    num_workers: int = 1  # processes decoding clips (0 = one per core); output unchanged

    def __post_init__(self):
        checks.output(self.output_dir, self.name, self.sequences_per_shard)
        parallel.check_num_workers(self.num_workers)
        checks.integer("image_size", self.image_size, 1, checks.MAX_IMAGE_SIZE)
        for flag in ("total_length", "test_total_length"):
            checks.integer(flag, getattr(self, flag), 1, checks.MAX_FRAMES)
        for flag in ("fast_stride", "other_stride"):  # 0 = non-overlapping
            checks.integer(flag, getattr(self, flag), 0, checks.MAX_STRIDE)
        unknown = sorted(set(self.actions) - set(kth.ACTIONS))
        if unknown or not self.actions:
            raise ConfigError(f"--actions={','.join(self.actions)} must list some of "
                              f"{','.join(kth.ACTIONS)}")
        for flag in ("train_persons", "test_persons"):
            if not getattr(self, flag):
                raise ConfigError(f"--{flag} must name at least one person, e.g. 1-16")
        overlap = sorted(set(self.train_persons) & set(self.test_persons))
        if overlap:
            raise ConfigError(f"--train_persons and --test_persons share persons {overlap}")


def convert_kth(options: KthOptions) -> dict[str, Any]:
    """Converts KTH videos or frame folders; returns the metadata written."""
    clips = [clip for clip in kth.find_clips(options.input_dir)
             if clip.action in options.actions
             and kth.clip_split(clip, options.train_persons, options.test_persons)]
    if not clips:
        raise DataError(f"--input_dir={options.input_dir}: no clip of the selected actions and "
                        f"persons")
    lengths = {"train": options.total_length, "test": options.test_total_length}
    with publishing.DatasetStaging(options.output_dir, options.name,
                                   options.sequences_per_shard) as staging:
        decoded = parallel.ordered_map(functools.partial(kth.read_clip,
                                                         image_size=options.image_size),
                                       clips, options.num_workers)
        with publishing.ProgressBar(len(clips), f"{options.name} clips") as progress:
            for clip, runs in zip(clips, decoded, strict=True):
                split = kth.clip_split(clip, options.train_persons, options.test_persons)
                length = lengths[split]
                stride = kth.action_stride(clip.action, length, options.fast_stride,
                                           options.other_stride)
                writer = staging.writer(split)
                for start, window in kth.iterate_windows(runs, length, stride):
                    writer.write(np.ascontiguousarray(window), f"{clip.clip_id}:{start}")
                progress.update()
        for split in ("train", "test"):
            staging.writer(split)  # an empty split still gets metadata
        source = f"KTH action {'videos' if clips[0].is_video else 'frames'} {options.input_dir}"
        metadata = publishing.common_metadata(options.image_size, options.image_size, 1, source,
                                              False, "make_kth")
        metadata["details"] = {
            "clips": len(clips), "actions": list(options.actions),
            "train_persons": list(options.train_persons),
            "test_persons": list(options.test_persons),
            "fast_actions": list(kth.FAST_ACTIONS), "fast_stride": options.fast_stride,
            "other_stride": options.other_stride or "non-overlapping"}
        return staging.commit(metadata, lengths)
