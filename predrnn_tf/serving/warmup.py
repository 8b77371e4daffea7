"""TF Serving warm-up requests: PredictionLog encoding and the warm-up TFRecord file.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` when it loads a version, so
the first client request does not pay for the graph's start-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf import files
from predrnn_tf.config import Config
from predrnn_tf.serving.signatures import INPUT_KEY, SERVING_SIGNATURE, physical_signature

WARMUP_FILENAME = "tf_serving_warmup_requests"


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


def _encode_by_hand(model_name: str, signature_name: str, tensors: dict[str, Any]) -> bytes:
    """PredictionLog.predict_log=6 -> PredictLog.request=1 -> PredictRequest{model_spec=1
    {name=1, signature_name=3}, inputs=2 map<string, TensorProto>}."""
    model_spec = (_length_delimited(1, model_name.encode("utf-8"))
                  + _length_delimited(3, signature_name.encode("utf-8")))
    entries = b"".join(
        _length_delimited(2, _length_delimited(1, key.encode("utf-8"))
                          + _length_delimited(2, tensor.SerializeToString()))
        for key, tensor in sorted(tensors.items()))
    request = _length_delimited(1, model_spec) + entries
    return _length_delimited(6, _length_delimited(1, request))


def encode_prediction_log(model_name: str, signature_name: str,
                          inputs: dict[str, np.ndarray]) -> bytes:
    """A serialized ``tensorflow.serving.PredictionLog`` holding one PredictRequest.

    Uses ``tensorflow_serving.apis`` when installed, else encodes the same fields by hand.
    """
    tensors = {key: tf.make_tensor_proto(value) for key, value in inputs.items()}
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return _encode_by_hand(model_name, signature_name, tensors)
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
    physical = physical_signature(value_mapping)
    if physical is not None:
        signature, key, _ = physical
        dry = 0.0 if signature != "predict_dbz" else float(value_mapping["offset"])
        requests[signature] = {key: np.full(shape, dry, np.float32)}  # dry: no echo, 0 mm/h
    return requests


def write_warmup_requests(path: str, model_name: str,
                          requests: dict[str, dict[str, np.ndarray]]) -> int:
    """Writes the TF Serving warm-up TFRecord of PredictionLogs; returns the record count."""
    with files.atomic_path(path) as temporary, tf.io.TFRecordWriter(temporary) as writer:
        for signature_name, inputs in requests.items():
            writer.write(encode_prediction_log(model_name, signature_name, inputs))
    return len(requests)
