"""KTH action: finding the clips, decoding them to grayscale frames, the official split.

Two source layouts are recognised anywhere under the input folder:

- the original videos ``personXX_ACTION_dY_uncomp.avi`` (160x120, 25 fps), decoded with
  ``cv2.VideoCapture``;
- the official pre-extracted frames ``ACTION/personXX_ACTION_dY/image_NNNN.png``.

The official PredRNN selection: persons 1-16 train, 17-25 test; windows of consecutive
frames, non-overlapping for boxing, handclapping, handwaving and walking, every 3 frames for
jogging and running.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

import cv2
import numpy as np

from predrnn_tf.data.converters import imaging
from predrnn_tf.data.converters.windows import window_starts
from predrnn_tf.errors import DataError

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
FAST_ACTIONS = ("jogging", "running")
TRAIN_PERSONS = tuple(range(1, 17))
TEST_PERSONS = tuple(range(17, 26))

_VIDEO_NAME = re.compile(r"^person(\d+)_([a-z]+)_d(\d+)_uncomp\.avi$", re.IGNORECASE)
_FOLDER_NAME = re.compile(r"^person(\d+)_([a-z]+)_d(\d+)(?:_uncomp)?$", re.IGNORECASE)
_FRAME_NAME = re.compile(r"^image[_-]?(\d+)\.png$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Clip:
    """One KTH recording.

    Attributes:
      person: 1..25.
      action: one of :data:`ACTIONS`.
      scenario: 1..4 (the ``dY`` part).
      path: the AVI file or the folder of PNG frames.
    """

    person: int
    action: str
    scenario: int
    path: str

    @property
    def clip_id(self) -> str:
        """``personXX_ACTION_dY``."""
        return f"person{self.person:02d}_{self.action}_d{self.scenario}"

    @property
    def is_video(self) -> bool:
        """True for an AVI file, False for a folder of frames."""
        return self.path.lower().endswith(".avi")


def find_clips(root: str) -> list[Clip]:
    """All clips under ``root``, sorted by id (frame folders win over videos of the same id).

    Raises:
      DataError: if ``root`` is not a folder or holds no clip.
    """
    if not os.path.isdir(root):
        raise DataError(f"--input_dir={root} is not a folder")
    clips: dict[str, Clip] = {}
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for filename in sorted(files):
            match = _VIDEO_NAME.match(filename)
            if match:
                clip = _make_clip(match, os.path.join(folder, filename))
                clips.setdefault(clip.clip_id, clip)
        match = _FOLDER_NAME.match(os.path.basename(folder))
        if match and any(_FRAME_NAME.match(filename) for filename in files):
            clip = _make_clip(match, folder)
            clips[clip.clip_id] = clip
    if not clips:
        raise DataError(f"--input_dir={root} holds no KTH clip (personXX_ACTION_dY_uncomp.avi "
                        f"or ACTION/personXX_ACTION_dY/image_NNNN.png)")
    return [clips[key] for key in sorted(clips)]


def read_video_frames(path: str, image_size: int) -> np.ndarray:
    """Decodes an AVI to grayscale uint8 ``[T, image_size, image_size]``.

    Raises:
      DataError: naming the file if it cannot be opened or has no frame.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataError(f"{path}: cannot open as a video")
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(imaging.resize_frame(imaging.to_grayscale(frame), image_size))
    finally:
        capture.release()
    if not frames:
        raise DataError(f"{path}: no decodable frame")
    return np.stack(frames)


def read_frame_folder(folder: str, image_size: int) -> list[np.ndarray]:
    """Reads ``image_NNNN.png`` frames as runs of consecutive numbers.

    A missing frame number starts a new run, so that no window spans the hole.

    Returns:
      One grayscale uint8 ``[T, image_size, image_size]`` array per run.
    """
    numbered = []
    for filename in os.listdir(folder):
        match = _FRAME_NAME.match(filename)
        if match:
            numbered.append((int(match.group(1)), filename))
    numbered.sort()
    runs: list[list[np.ndarray]] = []
    previous = None
    for number, filename in numbered:
        path = os.path.join(folder, filename)
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{path}: cannot decode as an image")
        if previous is None or number != previous + 1:
            runs.append([])
        runs[-1].append(imaging.resize_frame(imaging.to_grayscale(image), image_size))
        previous = number
    return [np.stack(run) for run in runs]


def read_clip(clip: Clip, image_size: int) -> list[np.ndarray]:
    """The clip's frames as runs of consecutive frames (one run for a video)."""
    if clip.is_video:
        return [read_video_frames(clip.path, image_size)]
    return read_frame_folder(clip.path, image_size)


def clip_split(clip: Clip, train_persons: tuple[int, ...],
               test_persons: tuple[int, ...]) -> str | None:
    """``"train"``, ``"test"`` or None (person in neither list)."""
    if clip.person in train_persons:
        return "train"
    if clip.person in test_persons:
        return "test"
    return None


def action_stride(action: str, window_length: int, fast_stride: int, other_stride: int) -> int:
    """Window stride: ``fast_stride`` for jogging/running, else ``other_stride``.

    A stride of 0 means non-overlapping windows (stride = ``window_length``).
    """
    stride = fast_stride if action in FAST_ACTIONS else other_stride
    return window_length if stride == 0 else stride


def iterate_windows(runs: list[np.ndarray], window_length: int,
                    stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(first_frame, uint8 [window_length, H, W, 1])`` from consecutive runs."""
    offset = 0
    for run in runs:
        for start in window_starts(len(run), window_length, stride):
            yield offset + start, run[start:start + window_length, :, :, np.newaxis]
        offset += len(run)


def _make_clip(match: re.Match, path: str) -> Clip:
    action = match.group(2).lower()
    if action not in ACTIONS:
        raise DataError(f"{path}: unknown KTH action {action!r} (expected one of "
                        f"{', '.join(ACTIONS)})")
    return Clip(int(match.group(1)), action, int(match.group(3)), path)
