"""Windowing and time splitting rules shared by the converters."""

from __future__ import annotations

import datetime

import pytest

from predrnn_tf.data.converters import windows

MINUTE = datetime.timedelta(minutes=1)
START = datetime.datetime(2020, 1, 1)


def stamps(minutes: list[int]) -> list[datetime.datetime]:
    return [START + minute * MINUTE for minute in minutes]


def test_window_starts():
    assert windows.window_starts(10, 4, 4) == [0, 4]
    assert windows.window_starts(10, 4, 3) == [0, 3, 6]
    assert windows.window_starts(3, 4, 1) == []
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        windows.window_starts(10, 4, 0)


def test_split_segments_cut_at_gaps_and_split():
    # 5-minute archive: 0..25, a missing frame at 30, 35..60, then a new event at 200..220.
    times = stamps(list(range(0, 30, 5)) + list(range(35, 65, 5)) + list(range(200, 225, 5)))
    segments = windows.split_segments(times, 5 * MINUTE, START + 50 * MINUTE)
    described = [(s.split, times[s.start], s.length) for s in segments]
    assert described == [
        ("train", START, 6),
        ("train", START + 35 * MINUTE, 3),
        ("test", START + 50 * MINUTE, 3),
        ("test", START + 200 * MINUTE, 5),
    ]


def test_stream_windows_never_cross_gaps_or_split_and_load_each_frame_once():
    times = stamps(list(range(0, 10)) + list(range(11, 20)) + list(range(20, 30)))
    segments = windows.split_segments(times, MINUTE, START + 20 * MINUTE)
    loaded = []

    def load(index):
        loaded.append(index)
        return index

    produced = list(windows.stream_windows(range(len(times)), segments, 4, 2, load))
    for split, first, frames in produced:
        frame_times = [times[index] for index in frames]
        assert frames[0] == first and len(frames) == 4
        assert all(b - a == MINUTE for a, b in zip(frame_times, frame_times[1:], strict=False))
        assert split == ("test" if frame_times[0] >= START + 20 * MINUTE else "train")
        assert (frame_times[-1] < START + 20 * MINUTE) == (split == "train")
    assert len(loaded) == len(set(loaded))
    counts = windows.count_windows(segments, 4, 2)
    assert counts == {"train": sum(s == "train" for s, _, _ in produced),
                      "test": sum(s == "test" for s, _, _ in produced)}
    assert counts == {"train": 4 + 3, "test": 4}


def test_default_split_time_is_last_fifth():
    times = stamps([0, 100])
    assert windows.default_split_time(times) == START + 80 * MINUTE


def test_parse_range_list():
    assert windows.parse_range_list("1-3,7, 5") == [1, 2, 3, 5, 7]
    with pytest.raises(ValueError, match="'3-1'"):
        windows.parse_range_list("3-1")
