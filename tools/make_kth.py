r"""Makes the KTH action TFRecord dataset from the original videos or the official frames.

  python tools/make_kth.py --input_dir=kth_raw --output_dir=data/kth

``--input_dir`` is searched recursively for ``personXX_ACTION_dY_uncomp.avi`` (160x120,
25 fps, decoded with OpenCV) and for the official pre-extracted frame folders
``ACTION/personXX_ACTION_dY/image_NNNN.png``. Frames become grayscale --image_size squares.
The official PredRNN selection is the default: persons 1-16 train, 17-25 test; windows of
--total_length (train) and --test_total_length (test) consecutive frames, non-overlapping for
boxing/handclapping/handwaving/walking and every --fast_stride=3 frames for jogging/running.
"""

from __future__ import annotations

import time

from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf.data.converters import convert, kth, publishing, windows

_INPUT_DIR = flags.DEFINE_string("input_dir", None, "Folder with the KTH videos or frames.",
                                 required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the shards and metadata.",
                                  required=True)
_NAME = flags.DEFINE_string("name", "kth", "Dataset name (file prefix).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 128, "Output frame side in pixels.")
_TOTAL_LENGTH = flags.DEFINE_integer("total_length", 20, "Frames per train sequence.")
_TEST_TOTAL_LENGTH = flags.DEFINE_integer(
    "test_total_length", 30, "Frames per test sequence (official: 10 in, 20 out).")
_TRAIN_PERSONS = flags.DEFINE_string("train_persons", "1-16", "Persons of the train split.")
_TEST_PERSONS = flags.DEFINE_string("test_persons", "17-25", "Persons of the test split.")
_FAST_STRIDE = flags.DEFINE_integer(
    "fast_stride", 3, "Window stride for jogging and running (0 = non-overlapping).")
_OTHER_STRIDE = flags.DEFINE_integer(
    "other_stride", 0,
    "Window stride for boxing, handclapping, handwaving, walking (0 = non-overlapping).")
_ACTIONS = flags.DEFINE_list("actions", list(kth.ACTIONS), "Actions to convert.")
_SEQUENCES_PER_SHARD = flags.DEFINE_integer("sequences_per_shard", 500, "Records per shard.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 1, "Processes decoding clips in parallel (0 = one per CPU core); the "
    "output does not depend on it.")


def run_conversion() -> None:
    """Runs the conversion and prints the summary line."""
    start = time.monotonic()
    options = convert.KthOptions(
        input_dir=_INPUT_DIR.value, output_dir=_OUTPUT_DIR.value, name=_NAME.value,
        image_size=_IMAGE_SIZE.value, total_length=_TOTAL_LENGTH.value,
        test_total_length=_TEST_TOTAL_LENGTH.value,
        train_persons=tuple(_parse_persons("train_persons", _TRAIN_PERSONS.value)),
        test_persons=tuple(_parse_persons("test_persons", _TEST_PERSONS.value)),
        fast_stride=_FAST_STRIDE.value, other_stride=_OTHER_STRIDE.value,
        actions=tuple(action.strip().lower() for action in _ACTIONS.value),
        sequences_per_shard=_SEQUENCES_PER_SHARD.value, num_workers=_NUM_WORKERS.value)
    metadata = convert.convert_kth(options)
    print(publishing.format_summary(metadata, _OUTPUT_DIR.value, time.monotonic() - start))


def _parse_persons(flag: str, text: str) -> list[int]:
    try:
        return windows.parse_range_list(text)
    except ValueError as error:
        raise ValueError(f"--{flag}: {error}") from error


if __name__ == "__main__":
    flag_parsing.run_tool(run_conversion, errors=(ValueError, OSError, ImportError))
