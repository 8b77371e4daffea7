"""SavedModel export for TF Serving: float32 in and out, compute in the chosen precision.

``export_workdir(workdir, export_dir)`` restores a trained model and writes the TF Serving
layout ``EXPORT_DIR/MODEL_NAME/VERSION/`` (``saved_model.pb``, ``variables/`` and
``assets.extra/`` with the warm-up requests and ``export_info.json``). Signatures:

- ``serving_default``: ``frames`` float32 ``[batch, input_length, H, W, C]`` in [0, 1] ->
  ``predictions`` float32 ``[batch, output_length, H, W, C]`` clipped to [0, 1]. Batch is
  dynamic; H and W are dynamic (any multiple of ``patch_size``) unless the model has
  size-bound weights (``layer_norm``, ConvLSTM peepholes).
- ``predict_dbz`` (datasets whose metadata maps pixels to dBZ): ``frames_dbz`` ->
  ``predictions_dbz``, the same forecast through the dataset's value mapping.

The version folder is written under a hidden temporary name and renamed when complete,
because TF Serving loads every new numeric folder it sees; an existing version is never
overwritten. Under a mixed precision the layers compute in float16/bfloat16 while the
signatures keep float32 inputs and outputs (Keras 3 ``model.export`` would declare
half-precision tensors), and the relative L2 difference to the float32 model is logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf import checkpoints
from predrnn_tf.config import PRECISIONS, Config, ConfigError, load_config
from predrnn_tf.data import schema, synthetic_radar
from predrnn_tf.errors import DataError, ExportError
from predrnn_tf.models.predrnn import PredRNN

SERVING_SIGNATURE = "serving_default"
DBZ_SIGNATURE = "predict_dbz"
INPUT_KEY = "frames"
OUTPUT_KEY = "predictions"
DBZ_INPUT_KEY = "frames_dbz"
DBZ_OUTPUT_KEY = "predictions_dbz"
ASSETS_EXTRA = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"
EXPORT_INFO_FILENAME = "export_info.json"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")




# --- the serving module ----------------------------------------------------------------------
def spatial_size_is_dynamic(config: Config) -> bool:
    """Whether the model accepts frame sizes other than ``img_width`` (no size-bound weights)."""
    size_bound = config.layer_norm or (config.model_name == "convlstm"
                                       and config.conv_lstm_peephole)
    return not size_bound


def dbz_mapping(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metadata's ``value_mapping`` if it maps pixels to dBZ, else None."""
    mapping = (metadata or {}).get("value_mapping")
    if mapping and str(mapping.get("units", "")).lower() == "dbz":
        return dict(mapping)
    return None


class ForecastModule(tf.Module):
    """The exported object: the model's variables and its float32 serving functions.

    The Keras model itself is not an attribute (SavedModel would trace its default
    ``call`` signature, which needs a mask). Its variables are tracked as the underlying
    ``tf.Variable`` objects, not as Keras variables: a Keras 3 variable exports a second
    copy of itself that the SavedModel's restore op fills while the functions read the
    original, so graph-mode loaders (TF Serving, ``saved_model_cli run``) would fail with
    "Could not find variable".

    Args:
      model: a built :class:`PredRNN` (any precision policy).
      config: its configuration (input length, channels, frame size, patch size).
      value_mapping: a dBZ ``value_mapping`` to add the ``predict_dbz`` function, or None.
    """

    def __init__(self, model: PredRNN, config: Config,
                 value_mapping: dict[str, Any] | None = None):
        super().__init__(name="predrnn_forecast")
        self.model_variables = [tensorflow_variable(variable) for variable in model.variables]
        size = None if spatial_size_is_dynamic(config) else config.img_width
        shape = [None, config.input_length, size, size, config.img_channel]

        def serve(frames):
            return {OUTPUT_KEY: clipped_forecast(model, frames)}

        self.serve = tf.function(serve,
                                 input_signature=[tf.TensorSpec(shape, tf.float32, INPUT_KEY)])
        self.serve_dbz = None
        if value_mapping:
            metadata = {"value_mapping": dict(value_mapping)}

            def serve_dbz(frames_dbz):
                pixels = tf.clip_by_value(schema.units_to_pixels(frames_dbz, metadata), 0.0, 1.0)
                predictions = clipped_forecast(model, pixels)
                return {DBZ_OUTPUT_KEY: schema.pixels_to_units(predictions, metadata)}

            self.serve_dbz = tf.function(
                serve_dbz, input_signature=[tf.TensorSpec(shape, tf.float32, DBZ_INPUT_KEY)])

    def signatures(self) -> dict[str, Any]:
        """The signature functions to pass to ``tf.saved_model.save``."""
        signatures = {SERVING_SIGNATURE: self.serve.get_concrete_function()}
        if self.serve_dbz is not None:
            signatures[DBZ_SIGNATURE] = self.serve_dbz.get_concrete_function()
        return signatures


def tensorflow_variable(variable) -> tf.Variable:
    """The ``tf.Variable`` behind a Keras 3 variable (TensorFlow backend)."""
    value = getattr(variable, "value", variable)
    if not isinstance(value, tf.Variable):
        raise ExportError(f"variable {variable.path!r} is not backed by a tf.Variable "
                          f"(got {type(value).__name__}); export needs the TensorFlow backend")
    return value


def clipped_forecast(model: PredRNN, frames: tf.Tensor) -> tf.Tensor:
    """[B, input_length, H, W, C] float32 -> the forecast in float32, clipped to [0, 1].

    A graph-side check turns a wrong frame count or channel count, or a frame size that is
    not a multiple of ``patch_size``, into a clear InvalidArgument error for the client (a
    graph-mode server feeds the placeholder without checking its declared shape, and the
    unrolled model would otherwise answer a wrong-length request with a wrong forecast).
    """
    shape = tf.shape(frames)
    valid = tf.reduce_all([
        tf.equal(tf.size(shape), 5),
        tf.equal(shape[1], model.input_length),
        tf.equal(shape[-1], model.img_channel),
        tf.reduce_all(tf.equal(tf.math.floormod(shape[2:4], model.patch_size), 0)),
    ])
    expected = (f"frames must be [batch, {model.input_length}, H, W, {model.img_channel}] with "
                f"H and W multiples of patch_size={model.patch_size}; received shape")
    check = tf.debugging.Assert(valid, [expected, shape])
    with tf.control_dependencies([check]):
        frames = tf.identity(frames)
    predictions = model.forecast(frames)
    return tf.clip_by_value(tf.cast(predictions, tf.float32), 0.0, 1.0)


# --- graph checks ----------------------------------------------------------------------------
def graph_ops(saved_model_dir: str) -> set[str]:
    """Every op type in the SavedModel's graphs and function library (function calls excluded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return ops - functions


def unregistered_ops(op_names) -> list[str]:
    """The op names not registered in this (plain) TensorFlow, sorted."""
    from tensorflow.python.framework import op_def_registry

    return sorted(name for name in op_names if op_def_registry.get(name) is None)


# --- warm-up requests ------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    """One protobuf field of wire type 2 (bytes, string, message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_prediction_log(model_name: str, signature_name: str,
                          inputs: dict[str, np.ndarray]) -> bytes:
    """A serialized ``tensorflow.serving.PredictionLog`` holding one PredictRequest.

    Uses ``tensorflow_serving.apis`` when installed, else encodes the same fields by hand
    (PredictionLog.predict_log=6 -> PredictLog.request=1 -> PredictRequest{model_spec=1
    {name=1, signature_name=3}, inputs=2 map<string, TensorProto>}).
    """
    tensors = {key: tf.make_tensor_proto(value) for key, value in inputs.items()}
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        model_spec = (_length_delimited(1, model_name.encode("utf-8"))
                      + _length_delimited(3, signature_name.encode("utf-8")))
        entries = b"".join(
            _length_delimited(2, _length_delimited(1, key.encode("utf-8"))
                              + _length_delimited(2, tensor.SerializeToString()))
            for key, tensor in sorted(tensors.items()))
        request = _length_delimited(1, model_spec) + entries
        return _length_delimited(6, _length_delimited(1, request))
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
    for key, tensor in tensors.items():
        request.inputs[key].CopyFrom(tensor)
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString()


def warmup_inputs(config: Config, value_mapping: dict[str, Any] | None,
                  batch_size: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """Per signature, the inputs of one warm-up request at the trained frame size."""
    shape = (batch_size, config.input_length, config.img_width, config.img_width,
             config.img_channel)
    requests = {SERVING_SIGNATURE: {INPUT_KEY: np.zeros(shape, np.float32)}}
    if value_mapping:
        dbz = np.full(shape, float(value_mapping["offset"]), np.float32)
        requests[DBZ_SIGNATURE] = {DBZ_INPUT_KEY: dbz}
    return requests


def write_warmup_requests(path: str, model_name: str,
                          requests: dict[str, dict[str, np.ndarray]]) -> int:
    """Writes the TF Serving warm-up TFRecord of PredictionLogs; returns the record count."""
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests.items():
            writer.write(encode_prediction_log(model_name, signature_name, inputs))
    return len(requests)


# --- comparison against float32 ---------------------------------------------------------------
def relative_l2(values: np.ndarray, reference: np.ndarray) -> float:
    """``||values - reference|| / ||reference||`` (absolute norm if the reference is zero)."""
    values = np.asarray(values, np.float64)
    reference = np.asarray(reference, np.float64)
    norm = float(np.linalg.norm(reference))
    difference = float(np.linalg.norm(values - reference))
    return difference / norm if norm > 0 else difference


def comparison_frames(config: Config, data_dir: str | None = None, count: int = 2,
                      seed: int = 0) -> tuple[np.ndarray, str]:
    """Inputs ``[count, input_length, W, W, C]`` for the precision check, and their source.

    The first test sequences of the dataset when readable at the model's frame size, else
    seeded uniform noise.
    """
    shards = schema.shard_paths(data_dir, config.dataset_name, "test") if data_dir else []
    sequences = []
    if shards:
        for record in tf.data.TFRecordDataset(shards).take(count):
            frames, _ = schema.parse_sequence_numpy(record.numpy())
            sequences.append(frames[:config.input_length])
    wanted = (config.input_length, config.img_width, config.img_width, config.img_channel)
    if sequences and all(sequence.shape == wanted for sequence in sequences):
        return np.stack(sequences).astype(np.float32) / 255.0, f"{len(sequences)} test sequences"
    rng = np.random.default_rng(seed)
    return rng.random((count,) + wanted, dtype=np.float32), f"{count} random sequences"


def keras_forecast(model: PredRNN, frames: np.ndarray) -> np.ndarray:
    """The Keras model's forecast clipped to [0, 1], as the serving signature computes it."""
    forecast = tf.function(model.forecast)
    return np.clip(forecast(tf.constant(frames)).numpy(), 0.0, 1.0)


# --- writing the version folder ---------------------------------------------------------------
def check_model_name(model_name: str) -> str:
    """Returns ``model_name`` if usable in a TF Serving path and URL, else ExportError."""
    if not MODEL_NAME_PATTERN.match(model_name or ""):
        raise ExportError(f"--model_name={model_name!r} must be letters, digits, '_', '.' or "
                          "'-' (it becomes a folder and a URL path segment)")
    return model_name


def version_path(export_dir: str, model_name: str, version: int) -> str:
    """``EXPORT_DIR/MODEL_NAME/VERSION``; ExportError if that version already exists."""
    if version < 0:
        raise ExportError(f"--version must be >= 0, got {version}")
    path = os.path.join(export_dir, check_model_name(model_name), str(version))
    if os.path.exists(path):
        raise ExportError(f"{path} already exists: TF Serving versions are never overwritten, "
                          "pass another --version (or delete that folder yourself)")
    return path


@contextlib.contextmanager
def staged_folder(final_path: str) -> Iterator[str]:
    """Yields a hidden temporary folder beside ``final_path``, renamed to it on success.

    TF Serving ignores folders whose names are not numbers, so the version appears only
    when complete. On any exception the temporary folder is removed.
    """
    parent = os.path.dirname(final_path)
    os.makedirs(parent, exist_ok=True)
    temporary = os.path.join(parent, f".tmp-{os.path.basename(final_path)}-{os.getpid()}")
    if os.path.exists(temporary):
        shutil.rmtree(temporary)
    try:
        yield temporary
        try:
            os.rename(temporary, final_path)
        except OSError as error:
            raise ExportError(f"could not publish {final_path}: {error}") from error
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)


def write_saved_model(module: ForecastModule, path: str) -> list[str]:
    """Saves ``module`` with its signatures into ``path``; returns the sorted op types.

    Raises ExportError if an op is not registered in plain TensorFlow (TF Serving has no
    custom ops).
    """
    tf.saved_model.save(module, path, signatures=module.signatures())
    ops = sorted(graph_ops(path))
    missing = unregistered_ops(ops)
    if missing:
        raise ExportError(f"the exported graph uses ops unknown to plain TensorFlow: "
                          f"{', '.join(missing)}")
    return ops


def export_model(model: PredRNN, config: Config, export_dir: str, model_name: str,
                 version: int, *, value_mapping: dict[str, Any] | None = None,
                 reference_model: PredRNN | None = None,
                 reference_frames: np.ndarray | None = None,
                 info: dict[str, Any] | None = None, warmup: bool = True) -> dict[str, Any]:
    """Writes ``EXPORT_DIR/MODEL_NAME/VERSION`` atomically and returns the export summary.

    Args:
      model: the built model, under the precision policy to serve with.
      config: its configuration.
      export_dir: the model base folder root (TF Serving's ``--model_base_path`` parent).
      model_name: the served model name (a folder under ``export_dir``).
      version: the version folder number; an existing version raises ExportError.
      value_mapping: a dBZ value mapping to add the ``predict_dbz`` signature.
      reference_model: a float32 model with the same weights; with ``reference_frames``,
        the exported signature is compared against its forecast before publishing.
      reference_frames: inputs ``[N, input_length, W, W, C]`` for that comparison.
      info: extra entries for ``assets.extra/export_info.json``.
      warmup: write ``assets.extra/tf_serving_warmup_requests``.

    Returns:
      A JSON-ready dict: path, version, precision, signatures, op count and, with a
      reference, ``max_abs_difference`` and ``relative_l2_vs_float32``.
    """
    final_path = version_path(export_dir, model_name, version)
    precision = model.dtype_policy.name
    summary = {"path": final_path, "model_name": model_name, "version": version,
               "precision": precision, **(info or {})}
    with staged_folder(final_path) as temporary:
        module = ForecastModule(model, config, value_mapping)
        ops = write_saved_model(module, temporary)
        summary["signatures"] = sorted(module.signatures())
        summary["num_op_types"] = len(ops)
        summary["spatial_size"] = "dynamic" if spatial_size_is_dynamic(config) else (
            config.img_width)
        logging.info("Exported %d op types, all registered in plain TensorFlow.", len(ops))
        assets = os.path.join(temporary, ASSETS_EXTRA)
        os.makedirs(assets, exist_ok=True)
        if warmup:
            count = write_warmup_requests(os.path.join(assets, WARMUP_FILENAME), model_name,
                                          warmup_inputs(config, value_mapping))
            summary["warmup_requests"] = count
        if reference_model is not None and reference_frames is not None:
            summary.update(compare_with_reference(temporary, reference_model, reference_frames))
        with open(os.path.join(assets, EXPORT_INFO_FILENAME), "w") as handle:
            recorded = {key: value for key, value in summary.items() if key != "path"}
            json.dump({**recorded, "config": config.to_dict()}, handle, indent=2, sort_keys=True)
            handle.write("\n")
    logging.info("Wrote %s", final_path)
    return summary


def compare_with_reference(saved_model_dir: str, reference_model: PredRNN,
                           frames: np.ndarray) -> dict[str, float]:
    """Runs the saved ``serving_default`` and the float32 Keras forecast on ``frames``."""
    loaded = tf.saved_model.load(saved_model_dir)
    served = loaded.signatures[SERVING_SIGNATURE](**{INPUT_KEY: tf.constant(frames)})
    served = served[OUTPUT_KEY].numpy()
    reference = keras_forecast(reference_model, frames)
    result = {"max_abs_difference": float(np.max(np.abs(served - reference))),
              "relative_l2_vs_float32": relative_l2(served, reference)}
    logging.info("Exported serving_default vs the float32 Keras model on %d sequences: "
                 "relative L2 %.3g, max |difference| %.3g", len(frames),
                 result["relative_l2_vs_float32"], result["max_abs_difference"])
    return result


# --- from a work directory ---------------------------------------------------------------------
def checkpoint_step(path: str) -> int:
    """The training step saved in a checkpoint (its ``step`` variable, else its suffix)."""
    try:
        return int(tf.train.load_checkpoint(path).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.NotFoundError, ValueError):
        match = re.search(r"-(\d+)$", path)
    if match is None:
        raise ExportError(f"cannot tell the step of checkpoint {path}: pass --version")
    return int(match.group(1))


def default_model_name(workdir: str, config: Config) -> str:
    """The work directory's folder name made URL-safe, else the architecture name."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(os.path.normpath(workdir)))
    return name if MODEL_NAME_PATTERN.match(name) else config.model_name


def find_dbz_mapping(config: Config, workdir: str) -> dict[str, Any] | None:
    """The dBZ mapping of the work directory's dataset, or None (with a warning if unknown)."""
    from predrnn_tf.data.sources import resolve_data_dir

    try:
        metadata = schema.read_metadata(resolve_data_dir(config, workdir), config.dataset_name)
    except (ConfigError, DataError) as error:
        if config.dataset_name == synthetic_radar.NAME:
            return {"units": "dBZ", "scale": synthetic_radar.DBZ_SCALE,
                    "offset": synthetic_radar.DBZ_OFFSET}
        logging.warning("No dataset metadata (%s): predict_dbz is not exported.", error)
        return None
    return dbz_mapping(metadata)


def export_workdir(workdir: str, export_dir: str, *, model_name: str | None = None,
                   precision: str = "float32", version: int | None = None,
                   checkpoint: str | None = None, warmup: bool = True,
                   compare: bool = True) -> dict[str, Any]:
    """Exports the model of a training work directory for TF Serving.

    Args:
      workdir: a training work directory (``config.json`` and ``checkpoints/``).
      export_dir: root of the exports; the model goes to ``EXPORT_DIR/MODEL_NAME/VERSION``.
      model_name: served model name (default: the work directory's folder name).
      precision: ``float32``, ``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (CPUs with
        AVX-512 BF16/AMX, TPUs): the compute dtype; inputs and outputs stay float32.
      version: version number (default: the checkpoint's training step).
      checkpoint: checkpoint path prefix (default: the newest in the work directory).
      warmup: write TF Serving warm-up requests.
      compare: check the exported signature against the float32 Keras model and report
        the relative L2 difference (the precision loss under a mixed policy).

    Returns:
      The export summary (see :func:`export_model`).
    """
    if precision not in PRECISIONS:
        raise ExportError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                          f"got {precision!r}")
    config = load_config(workdir)
    checkpoint = checkpoint or checkpoints.latest_checkpoint(workdir)
    if checkpoint is None:
        raise ConfigError(f"--workdir={workdir} has no checkpoint in "
                          f"{checkpoints.checkpoint_dir(workdir)}")
    if not tf.io.gfile.exists(checkpoint + ".index"):
        raise ConfigError(f"--checkpoint={checkpoint} does not exist (no {checkpoint}.index)")
    version = checkpoint_step(checkpoint) if version is None else version
    model_name = model_name or default_model_name(workdir, config)
    version_path(export_dir, model_name, version)  # fail fast before the slow work
    value_mapping = find_dbz_mapping(config, workdir)
    model, config = checkpoints.restore(workdir, checkpoint, precision=precision)
    reference_model = reference_frames = None
    if compare:
        reference_model = model
        if precision != "float32":
            reference_model, _ = checkpoints.restore(workdir, checkpoint, precision="float32")
        from predrnn_tf.data.sources import resolve_data_dir

        try:
            data_dir = resolve_data_dir(config, workdir)
        except ConfigError:
            data_dir = None
        reference_frames, source = comparison_frames(config, data_dir)
        logging.info("Comparing against the float32 model on %s.", source)
    info = {"workdir": os.path.abspath(workdir), "checkpoint": checkpoint,
            "trained_precision": config.precision}
    return export_model(model, config, export_dir, model_name, version,
                        value_mapping=value_mapping, reference_model=reference_model,
                        reference_frames=reference_frames, info=info, warmup=warmup)
