"""Up-front checks of the converters' options: one :class:`ConfigError` line naming the flag.

The options dataclasses of :mod:`convert` and :mod:`radar_conversion` call these from
``__post_init__``, so a bad value is refused before any file is read or written, whether it
came from a ``tools/make_*.py`` flag or from Python. Every range names its bounds: an
integer or float that is out of range, NaN or infinite, a dataset name that is not a plain
file prefix, or an output folder that cannot be created.
"""

from __future__ import annotations

import math
import os
import re

from predrnn_tf.errors import ConfigError

# Upper bounds that keep a typo (one zero too many) from running for days or filling a disk.
MAX_IMAGE_SIZE = 8192  # pixels per side, as Config's --img_width
MAX_FRAMES = 10_000  # frames per sequence, as Config's --total_length
MAX_SEQUENCES = 10_000_000  # sequences per split
MAX_SEQUENCES_PER_SHARD = 1_000_000
MAX_STRIDE = 1_000_000  # frames between window starts
MAX_DATASET_BYTES = 2**40  # 1 TiB of uint8 pixels
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def integer(flag: str, value: int, low: int, high: int) -> None:
    """ConfigError unless ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"--{flag}={value} must be an integer in [{low}, {high}]")


def number(flag: str, value: float, low: float, high: float, *,
           low_open: bool = False) -> None:
    """ConfigError unless ``value`` is finite and in ``[low, high]`` (``(low, high]``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (low < value if low_open else low <= value) \
        and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"--{flag}={value} must be a finite number in "
                          f"{bracket}{low:g}, {high:g}]")


def dataset_name(name: str) -> None:
    """ConfigError unless ``name`` is a plain file prefix (letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"--name={name!r} must be a file prefix: letters, digits, '_', '.' "
                          f"and '-', starting with a letter or digit (no path, no comma)")


def output_dir(path: str) -> None:
    """ConfigError unless ``path`` is an existing folder or can be created as one."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError("--output_dir must not be empty")
    parent = os.path.abspath(os.path.expanduser(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"--output_dir={path} cannot be a folder: {parent} is a file")


def output(path: str, name: str, sequences_per_shard: int) -> None:
    """The checks every converter shares: output folder, dataset name, shard size."""
    output_dir(path)
    dataset_name(name)
    integer("sequences_per_shard", sequences_per_shard, 1, MAX_SEQUENCES_PER_SHARD)


def dataset_size(sequences: int, frames: int, image_size: int, channels: int = 1) -> None:
    """ConfigError if the dataset would hold more than :data:`MAX_DATASET_BYTES` of pixels."""
    size = sequences * frames * image_size * image_size * channels
    if size > MAX_DATASET_BYTES:
        raise ConfigError(f"--num_train + --num_test = {sequences} sequences of {frames} "
                          f"frames of {image_size}x{image_size} pixels would be "
                          f"{size / 2**30:.0f} GiB, more than the {MAX_DATASET_BYTES // 2**30} "
                          f"GiB limit")
