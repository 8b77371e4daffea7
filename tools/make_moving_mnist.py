r"""Makes the Moving MNIST TFRecord dataset (generated, or imported from existing files).

Generate with the paper's recipe (2 digits bouncing on a 64x64 canvas, 20 frames; train
digits from MNIST train, test digits from MNIST test; 10,000 / 5,000 sequences):

  python tools/make_moving_mnist.py --train_images=train-images-idx3-ubyte.gz \
      --test_images=t10k-images-idx3-ubyte.gz --output_dir=data/moving_mnist

With the MNIST test split only (t10k-images-idx3-ubyte.gz), split its 10,000 digits:

  python tools/make_moving_mnist.py --test_images=/path/to/t10k-images-idx3-ubyte.gz \
      --split_test_digits=8000 --output_dir=data/moving_mnist

Without any file, synthetic OpenCV-font digits are drawn (for tests and demos; logged).
Import one split from a file you already have; a second call adds the other split:

  python tools/make_moving_mnist.py --from_npy=mnist_test_seq.npy --split=test \
      --output_dir=data/moving_mnist
  python tools/make_moving_mnist.py --from_official_npz=moving-mnist-train.npz --split=train \
      --output_dir=data/moving_mnist
"""

from __future__ import annotations

import time

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf.data.converters import convert, publishing

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the shards and metadata.",
                                  required=True)
_NAME = flags.DEFINE_string("name", "mnist",
                            "Dataset name (file prefix); configs/mnist.flags reads mnist.")
_TRAIN_IMAGES = flags.DEFINE_string("train_images", "", "MNIST train images, IDX (.gz ok).")
_TEST_IMAGES = flags.DEFINE_string("test_images", "", "MNIST test images, IDX (.gz ok).")
_MNIST_NPZ = flags.DEFINE_string("mnist_npz", "", "Keras mnist.npz (x_train, x_test).")
_SPLIT_TEST_DIGITS = flags.DEFINE_integer(
    "split_test_digits", 0,
    "If > 0: the first N digits of --test_images (or of x_test in --mnist_npz) draw the train "
    "sequences and the rest the test sequences (when MNIST train is not at hand).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 10000, "Train sequences to generate.")
_NUM_TEST = flags.DEFINE_integer("num_test", 5000, "Test sequences to generate.")
_TOTAL_LENGTH = flags.DEFINE_integer("total_length", 20, "Frames per sequence.")
_NUM_DIGITS = flags.DEFINE_integer("num_digits", 2, "Digits per sequence.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Canvas side in pixels.")
_STEP_LENGTH = flags.DEFINE_float(
    "step_length", 0.1, "Speed: fraction of the free range (image_size - 28) per frame.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of digit choice, positions and directions.")
_FROM_NPY = flags.DEFINE_string(
    "from_npy", "", "Import mnist_test_seq.npy (uint8 [20, N, 64, 64], time first) as --split.")
_FROM_OFFICIAL_NPZ = flags.DEFINE_string(
    "from_official_npz", "",
    "Import the official PyTorch code's npz (clips, dims, input_raw_data) as --split.")
_SPLIT = flags.DEFINE_enum("split", None, ["train", "test"],
                           "Split written by --from_npy / --from_official_npz.")
_SEQUENCES_PER_SHARD = flags.DEFINE_integer("sequences_per_shard", 1000, "Records per shard.")
_INTENSITY_MODE = flags.DEFINE_enum(
    "intensity_mode", "constant", ["constant", "sudden", "periodic"],
    "Brightness over time (the paper's Fig. 9): constant (the recipe), sudden (drops to "
    "--sudden_factor at a random frame of the middle half), periodic (a cosine whose period "
    "is drawn from --intensity_periods).")
_INTENSITY_PERIODS = flags.DEFINE_list("intensity_periods", ["5", "10", "20"],
                                       "Periods in frames for --intensity_mode=periodic.")
_SUDDEN_FACTOR = flags.DEFINE_float("sudden_factor", 0.5,
                                    "Brightness after the change, --intensity_mode=sudden.")


def intensity_periods() -> tuple[float, ...]:
    """--intensity_periods as numbers (a one-line error otherwise)."""
    try:
        return tuple(float(value) for value in _INTENSITY_PERIODS.value)
    except ValueError:
        raise ValueError(f"--intensity_periods must be numbers, got "
                         f"{','.join(_INTENSITY_PERIODS.value)}") from None


def run_conversion() -> None:
    """Runs the generation or the import and prints the summary line."""
    start = time.monotonic()
    if _FROM_NPY.value or _FROM_OFFICIAL_NPZ.value:
        if _SPLIT.value is None:
            raise ValueError("--split=train|test is required with --from_npy / "
                             "--from_official_npz")
        metadata = convert.import_moving_mnist(convert.MovingMnistImportOptions(
            output_dir=_OUTPUT_DIR.value, name=_NAME.value, split=_SPLIT.value,
            from_npy=_FROM_NPY.value, from_official_npz=_FROM_OFFICIAL_NPZ.value,
            sequences_per_shard=_SEQUENCES_PER_SHARD.value))
    else:
        metadata = convert.convert_moving_mnist(convert.MovingMnistOptions(
            output_dir=_OUTPUT_DIR.value, name=_NAME.value, train_images=_TRAIN_IMAGES.value,
            test_images=_TEST_IMAGES.value, mnist_npz=_MNIST_NPZ.value,
            split_test_digits=_SPLIT_TEST_DIGITS.value, num_train=_NUM_TRAIN.value,
            num_test=_NUM_TEST.value, total_length=_TOTAL_LENGTH.value,
            num_digits=_NUM_DIGITS.value, image_size=_IMAGE_SIZE.value,
            step_length=_STEP_LENGTH.value, seed=_SEED.value,
            sequences_per_shard=_SEQUENCES_PER_SHARD.value,
            intensity_mode=_INTENSITY_MODE.value,
            intensity_periods=intensity_periods(), sudden_factor=_SUDDEN_FACTOR.value))
    print(publishing.format_summary(metadata, _OUTPUT_DIR.value, time.monotonic() - start))


if __name__ == "__main__":
    flag_parsing.run_tool(run_conversion, errors=(ValueError, OSError, ImportError))
