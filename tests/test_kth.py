"""KTH action: clip discovery, AVI and PNG decoding, the official split and window strides."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from predrnn_tf.data import schema
from predrnn_tf.data.converters import convert, kth
from predrnn_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEVEL_STEP = 3  # gray level of frame i is 20 + LEVEL_STEP * i: the frame index is readable


def frame_level(index: int) -> int:
    return 20 + LEVEL_STEP * index


def write_avi(path: str, num_frames: int) -> None:
    """A 160x120 KTH-like video whose frame i is uniformly frame_level(i) gray."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG AVI files here")
    for index in range(num_frames):
        writer.write(np.full((120, 160, 3), frame_level(index), np.uint8))
    writer.release()


def write_png_clip(folder: str, numbers: list[int]) -> None:
    os.makedirs(folder)
    for number in numbers:
        image = np.full((120, 160, 3), frame_level(number - 1), np.uint8)
        cv2.imwrite(os.path.join(folder, f"image_{number:04d}.png"), image)


read_split = schema.read_split


def decoded_indices(frames: np.ndarray) -> list[int]:
    """Frame indices recovered from the gray levels (tolerates JPEG error)."""
    return [int(round((float(frame.mean()) - 20) / LEVEL_STEP)) for frame in frames]


@pytest.fixture(scope="module")
def avi_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kth_avi")
    for action in ("boxing", "jogging"):
        os.makedirs(root / action)
    write_avi(str(root / "boxing" / "person01_boxing_d1_uncomp.avi"), 45)
    write_avi(str(root / "jogging" / "person02_jogging_d2_uncomp.avi"), 45)
    write_avi(str(root / "boxing" / "person18_boxing_d3_uncomp.avi"), 65)
    write_avi(str(root / "jogging" / "person17_running_d1_uncomp.avi"), 45)
    write_avi(str(root / "boxing" / "person26_boxing_d1_uncomp.avi"), 45)  # in neither split
    (root / "boxing" / "README.txt").write_text("not a clip")
    return str(root)


def test_find_clips_parses_names(avi_root):
    clips = kth.find_clips(avi_root)
    assert [clip.clip_id for clip in clips] == [
        "person01_boxing_d1", "person02_jogging_d2", "person17_running_d1",
        "person18_boxing_d3", "person26_boxing_d1"]
    assert clips[1].person == 2 and clips[1].action == "jogging" and clips[1].scenario == 2
    assert all(clip.is_video for clip in clips)


def test_read_video_frames_gray_resized(avi_root):
    frames = kth.read_video_frames(
        os.path.join(avi_root, "boxing", "person01_boxing_d1_uncomp.avi"), 64)
    assert frames.shape == (45, 64, 64) and frames.dtype == np.uint8
    assert decoded_indices(frames) == list(range(45))


def test_convert_official_split_and_strides(avi_root, tmp_path):
    metadata = convert.convert_kth(convert.KthOptions(
        input_dir=avi_root, output_dir=str(tmp_path), image_size=32, total_length=20,
        test_total_length=30))
    train = read_split(str(tmp_path), "kth", "train")
    test = read_split(str(tmp_path), "kth", "test")
    by_clip: dict[str, list[int]] = {}
    for frames, sequence_id in train + test:
        clip_id, start = sequence_id.split(":")
        by_clip.setdefault(clip_id, []).append(int(start))
        # Every window is consecutive frames of its clip, starting where its id says.
        assert decoded_indices(frames) == list(range(int(start), int(start) + len(frames)))
    # boxing: non-overlapping; jogging/running: every 3 frames.
    assert by_clip["person01_boxing_d1"] == [0, 20]
    assert by_clip["person02_jogging_d2"] == list(range(0, 26, 3))
    assert by_clip["person18_boxing_d3"] == [0, 30]
    assert by_clip["person17_running_d1"] == [0, 3, 6, 9, 12, 15]
    assert "person26_boxing_d1" not in by_clip
    assert all(frames.shape == (20, 32, 32, 1) for frames, _ in train)
    assert all(frames.shape == (30, 32, 32, 1) for frames, _ in test)
    assert {sid.split(":")[0][:8] for _, sid in train} == {"person01", "person02"}
    assert (metadata["num_train"], metadata["num_test"]) == (11, 8)
    assert (metadata["sequence_length"], metadata["test_sequence_length"]) == (20, 30)
    assert metadata["image_height"] == metadata["image_width"] == 32


def test_two_workers_write_the_same_files(avi_root, tmp_path):
    for workers in (1, 2):
        convert.convert_kth(convert.KthOptions(
            input_dir=avi_root, output_dir=str(tmp_path / str(workers)), image_size=16,
            num_workers=workers))
    one, two = (sorted(os.listdir(tmp_path / str(workers))) for workers in (1, 2))
    assert one == two and len(one) == 3
    for name in one:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_stride_flags_change_the_selection(avi_root, tmp_path):
    metadata = convert.convert_kth(convert.KthOptions(
        input_dir=avi_root, output_dir=str(tmp_path), image_size=16, fast_stride=0,
        other_stride=5, actions=("boxing",), test_total_length=20))
    starts = sorted(int(sid.split(":")[1]) for _, sid in read_split(str(tmp_path), "kth", "train"))
    assert starts == [0, 5, 10, 15, 20, 25]
    assert metadata["num_test"] == len(range(0, 46, 5))  # person18, 65 frames, stride 5


def test_png_layout_windows_do_not_cross_missing_frames(tmp_path):
    root = tmp_path / "frames"
    numbers = list(range(1, 26)) + list(range(27, 50))  # image_0026 is missing
    write_png_clip(str(root / "walking" / "person05_walking_d1"), numbers)
    clips = kth.find_clips(str(root))
    assert len(clips) == 1 and not clips[0].is_video
    metadata = convert.convert_kth(convert.KthOptions(
        input_dir=str(root), output_dir=str(tmp_path / "out"), image_size=16, total_length=10))
    records = read_split(str(tmp_path / "out"), "kth", "train")
    for frames, _ in records:
        indices = decoded_indices(frames)
        assert indices == list(range(indices[0], indices[0] + 10))
    # Runs of 25 and 23 frames -> 2 + 2 non-overlapping windows of 10.
    assert metadata["num_train"] == 4 and metadata["num_test"] == 0


def test_unreadable_video_names_the_file(tmp_path):
    (tmp_path / "person03_boxing_d1_uncomp.avi").write_bytes(b"not a video")
    with pytest.raises(DataError, match="person03_boxing_d1_uncomp.avi"):
        convert.convert_kth(convert.KthOptions(input_dir=str(tmp_path),
                                                     output_dir=str(tmp_path / "out")))
    assert not os.path.exists(schema.metadata_path(str(tmp_path / "out"), "kth"))
    assert schema.shard_paths(str(tmp_path / "out"), "kth", "train") == []


def test_tool_empty_folder_is_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "make_kth.py"), f"--input_dir={tmp_path}",
         f"--output_dir={tmp_path / 'out'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"--input_dir={tmp_path} holds no KTH clip" in errors[0]
    assert "Traceback" not in result.stderr
