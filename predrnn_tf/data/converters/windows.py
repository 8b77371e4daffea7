"""Shared windowing and splitting rules for the dataset converters.

A *window* is ``window_length`` consecutive frames. Videos (KTH) are cut with
:func:`window_starts`; time-stamped archives (radar) are first cut into *segments* of frames
exactly one time step apart that lie wholly on one side of the train/test split
(:func:`split_segments`), and windows are then taken inside each segment only, so that no
window crosses a gap in the time stamps or straddles the split.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

TRAIN = "train"
TEST = "test"


def window_starts(num_frames: int, window_length: int, stride: int) -> list[int]:
    """First-frame indices of the windows ``[s, s + window_length)`` inside ``num_frames``.

    Args:
      num_frames: length of the video or segment.
      window_length: frames per window.
      stride: distance between the starts of two consecutive windows; ``stride ==
        window_length`` gives non-overlapping windows.

    Returns:
      ``[0, stride, 2 * stride, ...]`` up to the last window that fits.
    """
    if window_length < 1:
        raise ValueError(f"window_length must be positive, got {window_length}")
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    return list(range(0, num_frames - window_length + 1, stride))


@dataclasses.dataclass(frozen=True)
class Segment:
    """A run of frames exactly one time step apart, all on one side of the split.

    Attributes:
      split: ``"train"`` or ``"test"``.
      start: index of the first frame in the time-sorted frame list.
      length: number of frames.
    """

    split: str
    start: int
    length: int


def default_split_time(
    timestamps: Sequence[datetime.datetime], test_fraction: float = 0.2
) -> datetime.datetime:
    """The time after which the last ``test_fraction`` of the timeline begins.

    Args:
      timestamps: sorted frame times.
      test_fraction: share of the span first..last that goes to test.

    Returns:
      ``first + (1 - test_fraction) * (last - first)``.
    """
    if not timestamps:
        raise ValueError("no time stamps to split")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    first, last = timestamps[0], timestamps[-1]
    return first + (last - first) * (1.0 - test_fraction)


def split_segments(
    timestamps: Sequence[datetime.datetime],
    timestep: datetime.timedelta,
    test_after: datetime.datetime,
) -> list[Segment]:
    """Cuts sorted time stamps into gap-free segments on either side of ``test_after``.

    A new segment starts wherever two consecutive stamps are not exactly ``timestep``
    apart (a missing frame or a new event) and at the first frame at or after
    ``test_after``. Frames at or after ``test_after`` are test, earlier ones train.

    Args:
      timestamps: frame times, strictly increasing.
      timestep: the archive's nominal interval.
      test_after: first time that belongs to the test split.

    Returns:
      The segments in time order.
    """
    if timestep <= datetime.timedelta(0):
        raise ValueError(f"timestep must be positive, got {timestep}")
    segments: list[Segment] = []
    start = 0
    for index in range(1, len(timestamps) + 1):
        at_end = index == len(timestamps)
        if not at_end:
            previous, current = timestamps[index - 1], timestamps[index]
            if current <= previous:
                raise ValueError(
                    f"time stamps must be strictly increasing, got {previous} then {current}")
            gap = current - previous != timestep
            crosses_split = previous < test_after <= current
        if at_end or gap or crosses_split:
            split = TEST if timestamps[start] >= test_after else TRAIN
            segments.append(Segment(split, start, index - start))
            start = index
    return segments


def stream_windows(
    items: Iterable[Any],
    segments: Sequence[Segment],
    window_length: int,
    stride: int,
    load: Callable[[Any], Any],
) -> Iterator[tuple[str, int, list[Any]]]:
    """Yields ``(split, first_index, frames)`` windows while loading each frame once.

    Frames are loaded in order with ``load(item)`` and kept only in a rolling buffer of
    ``window_length`` frames, so memory stays bounded whatever the archive's length.
    Frames of segments too short for one window are not loaded at all.

    Args:
      items: one entry per time-sorted frame (e.g. file paths), matching ``segments``.
      segments: output of :func:`split_segments` for the same frames.
      window_length: frames per window.
      stride: distance between window starts inside a segment.
      load: maps an item to its decoded frame.
    """
    items = list(items)
    for segment in segments:
        starts = set(window_starts(segment.length, window_length, stride))
        if not starts:
            continue
        buffer: deque[Any] = deque(maxlen=window_length)
        last_needed = max(starts) + window_length
        for offset in range(last_needed):
            buffer.append(load(items[segment.start + offset]))
            first = offset - window_length + 1
            if first in starts:
                yield segment.split, segment.start + first, list(buffer)


def count_windows(segments: Sequence[Segment], window_length: int, stride: int) -> dict[str, int]:
    """Number of windows per split that :func:`stream_windows` will yield."""
    counts = {TRAIN: 0, TEST: 0}
    for segment in segments:
        counts[segment.split] += len(window_starts(segment.length, window_length, stride))
    return counts


def parse_range_list(text: str) -> list[int]:
    """Parses ``"1-16"`` or ``"1,3,5-7"`` into a sorted list of ints."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                low, high = (int(bound) for bound in part.split("-", 1))
                if high < low:
                    raise ValueError(part)
                values.update(range(low, high + 1))
            else:
                values.add(int(part))
        except ValueError as error:
            raise ValueError(f"expected numbers or ranges like '1-16,20', got {text!r}") from error
    return sorted(values)
