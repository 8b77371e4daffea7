"""Writes test sequences of a work directory's dataset as a ready TF Serving REST request.

  python tools/make_request.py --workdir=runs/quickstart --output=request.json \
      [--npy=past.npy] [--truth_npy=future.npy] [--sequences=1] [--first=0] \
      [--signature=auto|serving_default|predict_dbz|predict_mm_per_hour]
      [--request_format=inputs|instances]
  curl -d @request.json http://localhost:8501/v1/models/quickstart:predict

The request holds the first input_length frames of test sequences FIRST .. FIRST+N-1:
in [0, 1] for serving_default, in the dataset's physical units for predict_dbz (dBZ) and
predict_mm_per_hour (rain rate in mm/h, NaN = no data) (auto: the physical signature of the
dataset's value_mapping, else serving_default). --npy writes the same frames as the .npy
that predrnn-predict and tools/serving_client.py read (physical units when the dataset has
a value_mapping), --truth_npy the true future frames in the same units.
"""

from __future__ import annotations

import json

import numpy as np
from absl import flags

from predrnn_tf.cli import flag_parsing

flag_parsing.import_tensorflow_quietly()

from predrnn_tf import files, units  # noqa: I001 (after the quiet TensorFlow import)
from predrnn_tf.data import schema
from predrnn_tf.data.sources import resolve_data_dir
from predrnn_tf.errors import ConfigError, DataError
from predrnn_tf.inference.forecaster import workdir_metadata
from predrnn_tf.workdir import WorkDir

SIGNATURE_KEYS = {"serving_default": "frames", "predict_dbz": "frames_dbz",
                  "predict_mm_per_hour": "frames_mm_per_hour"}

_WORKDIR = flags.DEFINE_string("workdir", None, "Training work directory (its test split).")
_OUTPUT = flags.DEFINE_string("output", None, "The request JSON file to write.")
_NPY = flags.DEFINE_string("npy", None, "Also write the input frames as this .npy.")
_TRUTH_NPY = flags.DEFINE_string("truth_npy", None, "Also write the true future as this .npy.")
_SEQUENCES = flags.DEFINE_integer("sequences", 1, "Sequences in the request (its batch).")
_FIRST = flags.DEFINE_integer("first", 0, "Index of the first test sequence.")
_SIGNATURE = flags.DEFINE_enum(
    "signature", "auto", ["auto", *SIGNATURE_KEYS],
    "Signature of the request (auto: predict_dbz for dBZ data, predict_mm_per_hour for "
    "rain-rate data, else serving_default).")
_FORMAT = flags.DEFINE_enum("request_format", "inputs", ["inputs", "instances"],
                            "Columnar 'inputs' or row 'instances'.")


def test_sequences(workdir: str, first: int, count: int):
    """``(config, uint8 [count, T, H, W, C])`` of the work directory's test split."""
    config = WorkDir(workdir).config
    data_dir = resolve_data_dir(config, workdir)
    shards = schema.shard_paths(data_dir, config.dataset_name, "test")
    if not shards:
        raise DataError(f"no test shards of {config.dataset_name!r} in {data_dir}")
    import tensorflow as tf

    records = tf.data.TFRecordDataset(shards).skip(first).take(count)
    sequences = [schema.parse_sequence_numpy(record.numpy())[0] for record in records]
    if len(sequences) < count:
        raise ConfigError(f"--first={first} --sequences={count}: the test split of {data_dir} "
                          f"has only {first + len(sequences)} sequences")
    return config, np.stack(sequences)


def choose_signature(flag: str, mapping, dataset_name: str) -> str:
    """``--signature``, or with ``auto`` the physical signature of ``mapping`` (ConfigError
    when the asked physical signature does not fit the data)."""
    physical = ("predict_mm_per_hour" if units.is_rain_rate_mapping(mapping) else
                "predict_dbz" if units.dbz_mapping(mapping) else None)
    if flag == "auto":
        return physical or "serving_default"
    if flag != "serving_default" and physical != flag:
        raise ConfigError(f"--signature={flag}: dataset {dataset_name!r} has no "
                          f"{'dBZ' if flag == 'predict_dbz' else 'rain-rate (dBR)'} "
                          f"value_mapping")
    return flag


def physical_values(frames01: np.ndarray, mapping) -> np.ndarray:
    """[0, 1] pixels -> the mapping's physical units (mm/h with NaN = no data for rain
    rate); unchanged without a mapping."""
    if not mapping:
        return frames01
    values = units.pixels_to_values(frames01.astype(np.float64), mapping)
    values = np.where(units.valid_pixels(frames01, mapping), values, np.nan)
    return values.astype(np.float32)


def run() -> None:
    for name in ("workdir", "output"):
        if not flags.FLAGS[name].value:
            raise ConfigError(f"--{name} is required")
    if _SEQUENCES.value < 1 or _FIRST.value < 0:
        raise ConfigError(f"need --sequences >= 1 and --first >= 0, received "
                          f"--sequences={_SEQUENCES.value} --first={_FIRST.value}")
    config, pixels = test_sequences(_WORKDIR.value, _FIRST.value, _SEQUENCES.value)
    mapping = units.mapping_of(workdir_metadata(WorkDir(_WORKDIR.value)))
    signature = choose_signature(_SIGNATURE.value, mapping, config.dataset_name)
    frames01 = pixels.astype(np.float32) / 255.0
    physical = physical_values(frames01, mapping)
    past = frames01 if signature == "serving_default" else physical
    past = past[:, :config.input_length]
    key = SIGNATURE_KEYS[signature]
    body = {"signature_name": signature}
    if _FORMAT.value == "instances":
        body["instances"] = [{key: sequence.tolist()} for sequence in past]
    else:
        body["inputs"] = {key: past.tolist()}
    files.write_json(_OUTPUT.value, body, indent=None)
    written = [_OUTPUT.value]
    for path, frames in ((_NPY.value, physical[:, :config.input_length]),
                         (_TRUTH_NPY.value, physical[:, config.input_length:])):
        if path:
            with files.atomic_path(path) as temporary, open(temporary, "wb") as stream:
                np.save(stream, frames)
            written.append(path)
    print(json.dumps({"signature": signature, "shape": list(past.shape),
                      "units": (mapping or {}).get("units", "[0, 1] pixels"),
                      "written": written}))


if __name__ == "__main__":
    flag_parsing.run_tool(run)
