"""Moving MNIST: digit sources, the bouncing-digits generator and importers.

Digit sources (each returns uint8 ``[N, 28, 28]`` images):

- :func:`read_idx`: the MNIST IDX files as published (``*-idx3-ubyte`` or ``.gz``).
- :func:`read_keras_npz`: the Keras ``mnist.npz`` (``x_train``, ``x_test``, ...).
- :func:`render_font_digits`: digit glyphs drawn with OpenCV's Hershey fonts, for tests and
  demos when no MNIST file is at hand (synthetic, not MNIST).

The generator follows the recipe of Srivastava et al. (2015) used by PredRNN: each digit
starts at a uniformly random position of the 64x64 canvas with a uniformly random direction
and moves at a constant speed, bouncing off the edges; digits are combined with a
pixel-wise maximum.

Importers read the files users already have: ``mnist_test_seq.npy`` (uint8
``[20, N, 64, 64]``, time first) and the official PyTorch code's npz (``clips``, ``dims``,
``input_raw_data``).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator

import cv2
import numpy as np

from predrnn_tf.errors import DataError

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
DIGIT_SIZE = 28
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (optionally gzipped) into an array of its declared shape.

    Args:
      path: e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
      The array, e.g. uint8 ``[N, 28, 28]`` for an images file.

    Raises:
      DataError: naming the file, if it is missing, truncated or not IDX.
    """
    if not os.path.isfile(path):
        raise DataError(f"no such IDX file: {path}")
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    num_dims = content[3]
    header_size = 4 + 4 * num_dims
    if num_dims < 1 or len(content) < header_size:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(value) for value in np.frombuffer(content, ">u4", num_dims, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header_size < expected:
        raise DataError(f"{path}: truncated IDX data: header declares shape {shape} "
                        f"({expected} bytes) but only {len(content) - header_size} bytes follow")
    values = np.frombuffer(content, dtype, int(np.prod(shape)), offset=header_size)
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_images(path: str) -> np.ndarray:
    """Reads an IDX images file; DataError unless it holds uint8 ``[N, H, W]``."""
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8 images [N, H, W], got {images.dtype} "
                        f"{images.shape} (a labels file?)")
    return images


def read_keras_npz(path: str, split: str) -> np.ndarray:
    """Reads ``x_train`` or ``x_test`` from the Keras ``mnist.npz``."""
    key = {"train": "x_train", "test": "x_test"}[split]
    try:
        with np.load(path) as archive:
            if key not in archive:
                raise DataError(f"{path}: no array {key!r} (keys: {sorted(archive.files)}); "
                                f"expected the Keras mnist.npz")
            images = archive[key]
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as npz ({error})") from error
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{path}: {key} must be uint8 [N, H, W], got {images.dtype} "
                        f"{images.shape}")
    return images


def render_font_digits(count: int, seed: int) -> np.ndarray:
    """Synthetic 28x28 digit glyphs drawn with OpenCV fonts (not MNIST; for tests, demos).

    Each glyph is a random digit in one of the Hershey fonts with a random scale,
    thickness, slant and position jitter, blurred slightly like a scanned digit.

    Args:
      count: number of images.
      seed: random seed.

    Returns:
      uint8 ``[count, 28, 28]``.
    """
    rng = np.random.default_rng(seed)
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
             cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)
    images = np.zeros((count, DIGIT_SIZE, DIGIT_SIZE), np.uint8)
    for index in range(count):
        canvas = np.zeros((DIGIT_SIZE * 2, DIGIT_SIZE * 2), np.uint8)
        text = str(int(rng.integers(10)))
        font = fonts[int(rng.integers(len(fonts)))]
        scale = float(rng.uniform(1.3, 1.8))
        thickness = int(rng.integers(3, 6))
        (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
        origin = ((canvas.shape[1] - width) // 2, (canvas.shape[0] + height) // 2)
        cv2.putText(canvas, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
        shear = float(rng.uniform(-0.25, 0.25))
        jitter = rng.uniform(-2.0, 2.0, size=2)
        center = DIGIT_SIZE
        transform = np.array([[0.5, 0.5 * shear, jitter[0] + DIGIT_SIZE / 2 - 0.5 * center
                               - 0.5 * shear * center],
                              [0.0, 0.5, jitter[1] + DIGIT_SIZE / 2 - 0.5 * center]], np.float32)
        glyph = cv2.warpAffine(canvas, transform, (DIGIT_SIZE, DIGIT_SIZE),
                               flags=cv2.INTER_AREA)
        images[index] = cv2.GaussianBlur(glyph, (3, 3), 0.6)
    return images


def bouncing_trajectory(
    rng: np.random.Generator, num_frames: int, travel: int, step_length: float
) -> np.ndarray:
    """Top-left corners ``[num_frames, 2]`` (row, column) of one bouncing digit.

    Position and direction are uniformly random; the digit moves ``step_length`` of the
    free range ``travel`` per frame and reflects off the edges (Srivastava et al. 2015).
    """
    position = rng.uniform(0.0, 1.0, size=2)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    velocity = np.array([np.sin(theta), np.cos(theta)])
    corners = np.zeros((num_frames, 2), np.int64)
    for frame in range(num_frames):
        corners[frame] = (position * travel).astype(np.int64)
        position = position + velocity * step_length
        for axis in range(2):
            if position[axis] <= 0.0:
                position[axis] = -position[axis]
                velocity[axis] = -velocity[axis]
            if position[axis] >= 1.0:
                position[axis] = 2.0 - position[axis]
                velocity[axis] = -velocity[axis]
    return corners


INTENSITY_MODES = ("constant", "sudden", "periodic")


def intensity_scales(rng: np.random.Generator, num_frames: int, mode: str = "constant",
                     periods: tuple[float, ...] = (5.0, 10.0, 20.0),
                     sudden_factor: float = 0.5) -> np.ndarray:
    """Per-frame brightness factors ``[num_frames]`` in (0, 1] (the paper's Fig. 9 data).

    * ``constant``: all 1 (the recipe; draws nothing from ``rng``, so the data is unchanged);
    * ``sudden``: 1 up to a change frame drawn uniformly from the middle half of the
      sequence, ``sudden_factor`` from there on;
    * ``periodic``: ``0.65 + 0.35 cos(2 pi t / P + phase)`` with the period P drawn from
      ``periods`` (several timescales across the dataset) and a uniform phase.
    """
    if mode not in INTENSITY_MODES:
        raise ValueError(f"--intensity_mode must be one of {', '.join(INTENSITY_MODES)}, "
                         f"got {mode!r}")
    if mode == "constant":
        return np.ones(num_frames)
    if mode == "sudden":
        if not 0.0 < sudden_factor <= 1.0:
            raise ValueError(f"--sudden_factor must be in (0, 1], got {sudden_factor}")
        change = int(rng.integers(num_frames // 4, max(3 * num_frames // 4, num_frames // 4 + 1)))
        return np.where(np.arange(num_frames) < change, 1.0, sudden_factor)
    if not periods or min(periods) <= 0:
        raise ValueError(f"--intensity_periods must be positive numbers, got {periods}")
    period = float(periods[int(rng.integers(len(periods)))])
    phase = float(rng.uniform(0.0, 2.0 * np.pi))
    return 0.65 + 0.35 * np.cos(2.0 * np.pi * np.arange(num_frames) / period + phase)


def generate_sequence(
    digits: np.ndarray,
    rng: np.random.Generator,
    num_frames: int = 20,
    num_digits: int = 2,
    image_size: int = 64,
    step_length: float = 0.1,
    intensity_mode: str = "constant",
    intensity_periods: tuple[float, ...] = (5.0, 10.0, 20.0),
    sudden_factor: float = 0.5,
) -> np.ndarray:
    """One Moving MNIST sequence: uint8 ``[num_frames, image_size, image_size, 1]``.

    Args:
      digits: uint8 ``[N, h, w]`` digit images to draw from.
      rng: random generator (digit choice, positions, directions).
      num_frames: frames per sequence.
      num_digits: digits per sequence.
      image_size: canvas side.
      step_length: speed as a fraction of the free range per frame (0.1 in the recipe).
      intensity_mode, intensity_periods, sudden_factor: the brightness over time, see
        :func:`intensity_scales` (``constant``: the recipe).
    """
    digit_height, digit_width = digits.shape[1:3]
    if digit_height > image_size or digit_width > image_size:
        raise ValueError(f"digits of {digit_height}x{digit_width} do not fit a canvas of "
                         f"{image_size}x{image_size}")
    travel = image_size - max(digit_height, digit_width)
    sequence = np.zeros((num_frames, image_size, image_size), np.uint8)
    for _ in range(num_digits):
        digit = digits[int(rng.integers(len(digits)))]
        corners = bouncing_trajectory(rng, num_frames, travel, step_length)
        for frame, (top, left) in enumerate(corners):
            window = sequence[frame, top:top + digit_height, left:left + digit_width]
            np.maximum(window, digit, out=window)
    if intensity_mode != "constant":
        scales = intensity_scales(rng, num_frames, intensity_mode, intensity_periods,
                                  sudden_factor)
        sequence = np.rint(sequence * scales[:, None, None]).astype(np.uint8)
    return sequence[..., np.newaxis]


def generate_sequences(
    digits: np.ndarray, count: int, seed: int, **kwargs
) -> Iterator[np.ndarray]:
    """Yields ``count`` sequences from :func:`generate_sequence` with one seeded generator."""
    if len(digits) == 0:
        raise ValueError("no digit images to draw from")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield generate_sequence(digits, rng, **kwargs)


def load_test_seq_npy(path: str) -> np.ndarray:
    """Memory-maps ``mnist_test_seq.npy``: uint8 ``[T, N, H, W]`` (time first).

    Returns the array as stored; use :func:`iterate_test_seq` for ``[T, H, W, 1]`` records.
    """
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as .npy ({error})") from error
    if array.ndim != 4 or array.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8 [T, N, H, W] like mnist_test_seq.npy "
                        f"(20, 10000, 64, 64), got {array.dtype} {array.shape}")
    return array


def iterate_test_seq(array: np.ndarray) -> Iterator[np.ndarray]:
    """Yields each sequence of a ``[T, N, H, W]`` array as uint8 ``[T, H, W, 1]``."""
    for index in range(array.shape[1]):
        yield np.ascontiguousarray(array[:, index])[..., np.newaxis]


def load_official_npz(path: str) -> dict[str, np.ndarray]:
    """Reads the official PyTorch code's npz and checks its layout.

    Returns:
      ``clips`` int ``[2, N, 2]`` ((start, length) of the input and output part per
      sequence) and ``input_raw_data`` float ``[frames, C, H, W]`` in [0, 1].
    """
    try:
        with np.load(path) as archive:
            missing = [key for key in ("clips", "input_raw_data") if key not in archive]
            if missing:
                raise DataError(f"{path}: missing {missing} (keys: {sorted(archive.files)}); "
                                f"expected the official npz with clips, dims, input_raw_data")
            clips = archive["clips"]
            frames = archive["input_raw_data"]
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as npz ({error})") from error
    if clips.ndim != 3 or clips.shape[0] != 2 or clips.shape[2] != 2:
        raise DataError(f"{path}: clips must have shape (2, N, 2), got {clips.shape}")
    if frames.ndim != 4:
        raise DataError(f"{path}: input_raw_data must be [frames, C, H, W], got {frames.shape}")
    last = int((clips[:, :, 0] + clips[:, :, 1]).max()) if clips.size else 0
    if last > frames.shape[0] or int(clips.min(initial=0)) < 0:
        raise DataError(f"{path}: clips point outside input_raw_data's {frames.shape[0]} "
                        f"frames (up to frame {last})")
    return {"clips": clips.astype(np.int64), "input_raw_data": frames}


def iterate_official_npz(content: dict[str, np.ndarray]) -> Iterator[np.ndarray]:
    """Yields each clip (input part then output part) as uint8 ``[T, H, W, C]``."""
    clips, frames = content["clips"], content["input_raw_data"]
    for index in range(clips.shape[1]):
        parts = [frames[start:start + length] for start, length in clips[:, index]]
        sequence = np.concatenate(parts, axis=0)  # [T, C, H, W]
        sequence = np.transpose(sequence, (0, 2, 3, 1))  # [T, H, W, C]
        if np.issubdtype(sequence.dtype, np.floating):
            sequence = np.clip(np.rint(sequence * 255.0), 0, 255)
        yield sequence.astype(np.uint8)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
