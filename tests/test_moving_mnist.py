"""Moving MNIST: IDX/npz readers, the bouncing generator, importers and the converter."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from predrnn_tf.data import schema
from predrnn_tf.data.converters import convert, moving_mnist
from predrnn_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist", "t10k-images-idx3-ubyte.gz")


def write_idx_images(path: str, images: np.ndarray, gzipped: bool = True) -> str:
    header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, *images.shape)
    content = header + images.astype(np.uint8).tobytes()
    with (gzip.open if gzipped else open)(path, "wb") as handle:
        handle.write(content)
    return path


read_split = schema.read_split


def constant_digits(count: int, value: int) -> np.ndarray:
    digits = np.zeros((count, 28, 28), np.uint8)
    digits[:, 4:24, 8:20] = value
    return digits


def test_read_idx_round_trip_gzipped_and_plain(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for gzipped in (True, False):
        path = write_idx_images(str(tmp_path / f"images{gzipped}.idx"), images, gzipped)
        np.testing.assert_array_equal(moving_mnist.read_idx_images(path), images)


def test_read_idx_rejects_truncated_and_bad_magic(tmp_path):
    images = np.ones((4, 28, 28), np.uint8)
    path = write_idx_images(str(tmp_path / "full.gz"), images)
    with gzip.open(path) as handle:
        content = handle.read()
    truncated = tmp_path / "truncated.gz"
    with gzip.open(truncated, "wb") as handle:
        handle.write(content[:-100])
    with pytest.raises(DataError, match="truncated.gz: truncated IDX data"):
        moving_mnist.read_idx(str(truncated))
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x12\x34\x08\x03" + content[4:])
    with pytest.raises(DataError, match="bad.idx: not an IDX file"):
        moving_mnist.read_idx(str(bad))


def test_read_idx_labels_file_is_not_images(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    np.testing.assert_array_equal(moving_mnist.read_idx(str(path)), [1, 2, 3])
    with pytest.raises(DataError, match="a labels file"):
        moving_mnist.read_idx_images(str(path))


def test_bouncing_trajectory_stays_inside_and_keeps_speed():
    rng = np.random.default_rng(3)
    for _ in range(20):
        corners = moving_mnist.bouncing_trajectory(rng, 50, travel=36, step_length=0.1)
        assert corners.min() >= 0 and corners.max() <= 36
        steps = np.abs(np.diff(corners, axis=0))
        # Constant speed: each axis moves by at most 3.6 px (+1 for integer truncation).
        assert steps.max() <= 5
    # A long straight run eventually reverses direction on some axis (bounce).
    corners = moving_mnist.bouncing_trajectory(np.random.default_rng(1), 200, 36, 0.1)
    signs = np.sign(np.diff(corners[:, 1]))
    assert (signs > 0).any() and (signs < 0).any()


def test_generate_sequence_shape_digits_and_determinism():
    digits = constant_digits(3, 77)
    first = moving_mnist.generate_sequence(digits, np.random.default_rng(5), num_frames=12)
    second = moving_mnist.generate_sequence(digits, np.random.default_rng(5), num_frames=12)
    assert first.shape == (12, 64, 64, 1) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, second)
    # Two 20x12 digits combined with max: every frame shows between one and two blocks.
    lit = (first > 0).reshape(12, -1).sum(axis=1)
    assert ((lit >= 240) & (lit <= 480)).all()
    assert set(np.unique(first)) <= {0, 77}


def test_render_font_digits_is_seeded_and_not_empty():
    glyphs = moving_mnist.render_font_digits(6, seed=1)
    assert glyphs.shape == (6, 28, 28) and glyphs.dtype == np.uint8
    assert ((glyphs > 128).reshape(6, -1).sum(axis=1) > 20).all()
    np.testing.assert_array_equal(glyphs, moving_mnist.render_font_digits(6, seed=1))
    assert not np.array_equal(glyphs, moving_mnist.render_font_digits(6, seed=2))


def test_convert_uses_train_digits_for_train_and_test_digits_for_test(tmp_path):
    train = write_idx_images(str(tmp_path / "train.gz"), constant_digits(10, 100))
    test = write_idx_images(str(tmp_path / "test.gz"), constant_digits(10, 200))
    out = str(tmp_path / "out")
    metadata = convert.convert_moving_mnist(convert.MovingMnistOptions(
        output_dir=out, train_images=train, test_images=test, num_train=7, num_test=5,
        total_length=6, sequences_per_shard=3, seed=1))
    train_records = read_split(out, "mnist", "train")
    test_records = read_split(out, "mnist", "test")
    assert len(train_records) == 7 and len(test_records) == 5
    assert len(schema.shard_paths(out, "mnist", "train")) == 3
    assert all(frames.shape == (6, 64, 64, 1) for frames, _ in train_records + test_records)
    assert {int(frames.max()) for frames, _ in train_records} == {100}
    assert {int(frames.max()) for frames, _ in test_records} == {200}
    written = schema.read_metadata(out, "mnist")
    assert written == metadata
    assert (written["num_train"], written["num_test"]) == (7, 5)
    assert (written["train_shards"], written["test_shards"]) == (3, 2)
    assert (written["image_height"], written["image_width"], written["channels"]) == (64, 64, 1)
    assert written["sequence_length"] == written["test_sequence_length"] == 6
    assert written["synthetic"] is False and written["converter"] == "make_moving_mnist"
    assert not [name for name in os.listdir(out) if name.startswith(".")]


def test_split_test_digits_divides_one_file(tmp_path):
    digits = np.concatenate([constant_digits(6, 50), constant_digits(4, 250)])
    path = write_idx_images(str(tmp_path / "t10k.gz"), digits)
    out = str(tmp_path / "out")
    convert.convert_moving_mnist(convert.MovingMnistOptions(
        output_dir=out, test_images=path, split_test_digits=6, num_train=4, num_test=4,
        total_length=3))
    assert {int(f.max()) for f, _ in read_split(out, "mnist", "train")} == {50}
    assert {int(f.max()) for f, _ in read_split(out, "mnist", "test")} == {250}
    with pytest.raises(ValueError, match="--split_test_digits=10"):
        convert.convert_moving_mnist(convert.MovingMnistOptions(
            output_dir=out, test_images=path, split_test_digits=10))


def test_synthetic_glyphs_are_marked_synthetic(tmp_path):
    metadata = convert.convert_moving_mnist(convert.MovingMnistOptions(
        output_dir=str(tmp_path), num_train=2, num_test=2, total_length=4))
    assert metadata["synthetic"] is True and "not MNIST" in metadata["source"]


def test_import_npy_and_official_npz_complete_one_dataset(tmp_path):
    rng = np.random.default_rng(0)
    test_seq = rng.integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)  # time first
    np.save(tmp_path / "mnist_test_seq.npy", test_seq)
    frames = rng.uniform(0, 1, (40, 1, 64, 64)).astype(np.float32)
    clips = np.zeros((2, 2, 2), np.int32)
    clips[0, :, 0], clips[1, :, 0] = [0, 20], [10, 30]  # input starts, output starts
    clips[:, :, 1] = 10
    np.savez(tmp_path / "official.npz", clips=clips, dims=np.array([[1, 64, 64]]),
             input_raw_data=frames)
    out = str(tmp_path / "out")
    convert.import_moving_mnist(convert.MovingMnistImportOptions(
        output_dir=out, split="test", from_npy=str(tmp_path / "mnist_test_seq.npy")))
    partial = schema.read_metadata(out, "mnist")
    assert (partial["num_train"], partial["num_test"]) == (0, 3)
    metadata = convert.import_moving_mnist(convert.MovingMnistImportOptions(
        output_dir=out, split="train", from_official_npz=str(tmp_path / "official.npz")))
    assert (metadata["num_train"], metadata["num_test"]) == (2, 3)
    assert metadata["sequence_length"] == metadata["test_sequence_length"] == 20
    assert set(metadata["sources"]) == {"train", "test"}
    test_records = read_split(out, "mnist", "test")
    np.testing.assert_array_equal(test_records[1][0][..., 0], test_seq[:, 1])
    train_records = read_split(out, "mnist", "train")
    expected = np.concatenate([frames[20:30], frames[30:40]])[:, 0]
    np.testing.assert_array_equal(train_records[1][0][..., 0],
                                  np.rint(expected * 255).astype(np.uint8))


def test_import_rejects_other_image_size_than_existing_split(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((20, 2, 64, 64), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((20, 2, 32, 32), np.uint8))
    out = str(tmp_path / "out")
    convert.import_moving_mnist(convert.MovingMnistImportOptions(
        output_dir=out, split="test", from_npy=str(tmp_path / "a.npy")))
    with pytest.raises(DataError, match="image_height=64 .* image_height=32"):
        convert.import_moving_mnist(convert.MovingMnistImportOptions(
            output_dir=out, split="train", from_npy=str(tmp_path / "b.npy")))
    # The failed call published nothing and left the first split intact.
    assert schema.read_metadata(out, "mnist")["num_test"] == 2
    assert schema.shard_paths(out, "mnist", "train") == []


def test_failure_mid_conversion_leaves_previous_dataset_and_no_partial_shard(tmp_path,
                                                                               monkeypatch):
    out = str(tmp_path)
    options = convert.MovingMnistOptions(output_dir=out, num_train=6, num_test=2,
                                            total_length=3, sequences_per_shard=2)
    convert.convert_moving_mnist(options)
    before = sorted(os.listdir(out))
    original = moving_mnist.generate_sequences

    def failing(*args, **kwargs):
        for index, sequence in enumerate(original(*args, **kwargs)):
            if index == 3:
                raise KeyboardInterrupt
            yield sequence

    monkeypatch.setattr(moving_mnist, "generate_sequences", failing)
    with pytest.raises(KeyboardInterrupt):
        convert.convert_moving_mnist(dataclasses.replace(options, num_train=50))
    assert sorted(os.listdir(out)) == before
    assert schema.read_metadata(out, "mnist")["num_train"] == 6


def run_tool(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_moving_mnist.py"),
                           *arguments], capture_output=True, text=True, timeout=300)


def test_tool_generates_and_prints_summary(tmp_path):
    result = run_tool(f"--output_dir={tmp_path}", "--name=demo", "--num_train=3",
                      "--num_test=2", "--total_length=4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(
        "wrote demo: 3 train sequences of 4 frames (1 shards), 2 test sequences")
    assert "demo train: [" in result.stderr and "SYNTHETIC" in result.stderr
    assert schema.read_metadata(str(tmp_path), "demo")["num_test"] == 2


@pytest.mark.skipif(not os.path.exists(SHARED_MNIST), reason="shared MNIST data absent")
def test_real_mnist_test_digits_read():
    images = moving_mnist.read_idx_images(SHARED_MNIST)
    assert images.shape == (10000, 28, 28)


# ------------------------------------------------------------------ Fig. 9 intensity modes


def frame_brightness(sequence):
    return sequence.reshape(sequence.shape[0], -1).max(axis=1).astype(float)


def test_constant_intensity_draws_nothing_extra_and_keeps_the_recipe():
    digits = constant_digits(3, 200)
    plain = moving_mnist.generate_sequence(digits, np.random.default_rng(1), num_frames=8)
    same = moving_mnist.generate_sequence(digits, np.random.default_rng(1), num_frames=8,
                                          intensity_mode="constant")
    np.testing.assert_array_equal(plain, same)


def test_sudden_intensity_drops_once_in_the_middle_half():
    digits = constant_digits(3, 200)
    for seed in range(5):
        sequence = moving_mnist.generate_sequence(
            digits, np.random.default_rng(seed), num_frames=20, intensity_mode="sudden",
            sudden_factor=0.5)
        brightness = frame_brightness(sequence)
        change = int(np.argmax(brightness < 200))
        assert 5 <= change < 15
        assert (brightness[:change] == 200).all() and (brightness[change:] == 100).all()


def test_periodic_intensity_follows_one_of_the_periods():
    digits = constant_digits(3, 200)
    periods = set()
    for seed in range(12):
        sequence = moving_mnist.generate_sequence(
            digits, np.random.default_rng(seed), num_frames=40, intensity_mode="periodic",
            intensity_periods=(4.0, 10.0))
        brightness = frame_brightness(sequence) / 200.0
        assert brightness.min() >= 0.29 and brightness.max() <= 1.0
        spectrum = np.abs(np.fft.rfft(brightness - brightness.mean()))
        periods.add(round(40 / int(np.argmax(spectrum))))
    assert periods == {4, 10}


def test_bad_intensity_flags_are_one_line_errors(tmp_path):
    result = run_tool(f"--output_dir={tmp_path}", "--num_train=2", "--num_test=2",
                      "--intensity_mode=periodic", "--intensity_periods=5,x")
    assert result.returncode == 2 and "--intensity_periods must be numbers" in result.stderr
    result = run_tool(f"--output_dir={tmp_path}", "--num_train=2", "--num_test=2",
                      "--intensity_mode=sudden", "--sudden_factor=1.5")
    assert result.returncode == 2
    assert "--sudden_factor=1.5 must be a finite number in (0, 1]" in result.stderr
    assert not os.path.exists(tmp_path / "mnist-metadata.json")


def test_evaluation_plots_mean_intensity_per_frame(tmp_path):
    from predrnn_tf.evaluation import evaluator

    rng = np.random.default_rng(0)
    frames = rng.random((4, 6, 8, 8, 1)).astype(np.float32)
    frames[:, 3:] *= np.array([1.0, 0.5, 0.25])[None, :, None, None, None]

    def halve(inputs):  # forecasts every frame at half the last input's brightness
        last = np.asarray(inputs)[:, -1:]
        return np.repeat(last * 0.5, 3, axis=1)

    options = evaluator.EvaluationOptions(input_length=3, output_length=3, name="half")
    result = evaluator.evaluate(halve, [frames[:2], frames[2:]], str(tmp_path), options)
    curves = result["mean_intensity"]
    np.testing.assert_allclose(curves["truth"], frames[:, 3:].mean(axis=(0, 2, 3, 4)),
                               rtol=1e-6)
    persistence = frames[:, 2].mean()
    np.testing.assert_allclose(curves["persistence"], [persistence] * 3, rtol=1e-6)
    np.testing.assert_allclose(curves["prediction"], [persistence / 2] * 3, rtol=1e-6)
    assert (tmp_path / curves["plot"]).stat().st_size > 1000


def test_a_canvas_smaller_than_the_digits_is_refused_before_any_write(tmp_path):
    from predrnn_tf.data.converters import convert
    from predrnn_tf.errors import ConfigError

    output = tmp_path / "out"
    with pytest.raises(ConfigError, match="--image_size=16 must be at least the digits' size 28"):
        convert.convert_moving_mnist(convert.MovingMnistOptions(
            output_dir=str(output), num_train=1, num_test=1, image_size=16))
    assert not output.exists()


def scrambled_official_npz(path, num_sequences: int = 5) -> dict[str, np.ndarray]:
    """An official-layout npz whose frame k holds the value k/255 everywhere, with the
    input and output parts of each sequence stored apart and the sequences out of order."""
    rng = np.random.default_rng(3)
    frames = (np.arange(20 * num_sequences) % 256).astype(np.float32) / 255.0
    frames = np.broadcast_to(frames[:, None, None, None], (len(frames), 1, 8, 8)).copy()
    frames[:, :, 0, 1] = 1.0  # not symmetric: a swapped height and width would show
    blocks = rng.permutation(2 * num_sequences)  # 10-frame blocks, shuffled
    clips = np.zeros((2, num_sequences, 2), np.int32)
    clips[0, :, 0], clips[1, :, 0] = 10 * blocks[::2], 10 * blocks[1::2]
    clips[:, :, 1] = 10
    np.savez(path, clips=clips, dims=np.array([[1, 8, 8]], np.int32), input_raw_data=frames)
    return {"clips": clips, "input_raw_data": frames}


def test_official_npz_batch_is_the_official_input_then_output_frames(tmp_path):
    from predrnn_tf.analysis import fidelity

    content = scrambled_official_npz(tmp_path / "official.npz")
    batch = fidelity.official_npz_batch(content, [3, 0])
    assert batch.shape == (2, 20, 8, 8, 1) and batch.dtype == np.float32
    for row, index in enumerate([3, 0]):
        first_in, first_out = content["clips"][0, index, 0], content["clips"][1, index, 0]
        expected = np.concatenate([np.arange(first_in, first_in + 10),
                                   np.arange(first_out, first_out + 10)]) % 256 / 255.0
        np.testing.assert_array_equal(batch[row, :, 3, 5, 0], expected.astype(np.float32))
        np.testing.assert_array_equal(batch[row, :, 0, 1, 0], 1.0)
        np.testing.assert_array_equal(batch[row, :, 1, 0, 0], expected.astype(np.float32))


def test_our_reading_of_the_official_npz_is_what_the_official_loader_feeds(tmp_path):
    """--from_official_npz then our readers: the official batches, sequence by sequence."""
    from predrnn_tf.analysis import fidelity
    from predrnn_tf.data import reader

    content = scrambled_official_npz(tmp_path / "official.npz")
    out = str(tmp_path / "out")
    for split in ("train", "test"):
        convert.import_moving_mnist(convert.MovingMnistImportOptions(
            output_dir=out, split=split, from_official_npz=str(tmp_path / "official.npz"),
            sequences_per_shard=2))
    official = fidelity.official_npz_batch(content, range(5))
    tool = fidelity.load_split(out, "mnist", "test", 20)  # what tools/fidelity.py scores
    np.testing.assert_array_equal(tool.astype(np.float32) / 255.0, official)
    stream = reader.make_dataset(out, "mnist", "train", 1, 20, shuffle=False, repeat=False,
                                 deterministic=True)
    trained = np.concatenate(list(stream.as_numpy_iterator()))
    # Three shards read interleaved, so match by content: the frame values name the frames.
    keys = [tuple(sequence[:, 3, 5, 0]) for sequence in official]
    assert len(trained) == 5
    for sequence in trained:
        match = official[keys.index(tuple(np.float32(np.rint(sequence[:, 3, 5, 0] * 255)
                                                     / np.float32(255.0))))]
        np.testing.assert_allclose(sequence, match, rtol=0, atol=6e-8)  # x * (1/255): 1 ulp
