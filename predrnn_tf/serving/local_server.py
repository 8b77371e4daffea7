"""A local stand-in for TF Serving's REST API on an exported SavedModel (stdlib HTTP only).

For trying and testing exports without Docker. It speaks the parts of TF Serving's REST API
that ``tools/serving_client.py`` uses, with TF Serving's JSON formats and error bodies:

- ``POST /v1/models/NAME[/versions/N]:predict`` with ``{"inputs": ...}`` (columnar) or
  ``{"instances": ...}`` (rows), optional ``"signature_name"``; answers ``{"outputs": ...}``
  or ``{"predictions": [...]}``;
- ``GET /v1/models/NAME[/versions/N]``: the model status (``model_version_status``);
- ``GET /v1/models/NAME[/versions/N]/metadata``: ``{"model_spec": ..., "metadata":
  {"signature_def": {"signature_def": {NAME: {"inputs", "outputs", "method_name"}}}}}``, the
  JSON of TF Serving's ``GetModelMetadataResponse`` read from the version's saved_model.pb
  (input and output names, dtypes such as ``DT_FLOAT``, shapes with ``"size": "-1"`` for
  any).

Like TF Serving's default policy it serves the newest version folder of
``EXPORT_DIR/NAME``. Requests larger than ``max_request_bytes`` get 413, malformed ones 400
with a one-line ``{"error": ...}``, unknown models or versions 404; an unexpected failure is
a 500 with one line, never a dead server. Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import os
import re
import threading
import time
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from predrnn_tf import files
from predrnn_tf.errors import ConfigError, ExportError, RequestError
from predrnn_tf.serving import publishing

PATH_PATTERN = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict|/metadata)?$")
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FRAME_SIZE = 1024  # pixels per side: a whole national composite
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
DISCARD_LIMIT_BYTES = 256 * 1024 * 1024
CONTENT_LENGTH = re.compile(r"^[0-9]{1,19}$")
MAX_ERROR_CHARACTERS = RequestError.MAX_CHARACTERS
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServedModel:
    """The newest version of one exported model, loaded."""

    name: str
    version: int
    path: str
    signatures: Any
    signature_defs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def check_version(self, version: int) -> None:
        """404 as TF Serving words it unless ``version`` is 0 (newest) or the served one."""
        if version not in (0, self.version):
            raise RequestError(404, f"Servable not found for request: Specific({self.name}, "
                                    f"{version})")


def load_newest_version(export_dir: str, model_name: str) -> ServedModel:
    """Loads the newest intact version of ``EXPORT_DIR/MODEL_NAME`` (as TF Serving would).

    Staging folders of killed exports are removed first; a damaged newer version is passed
    over with a warning naming its file.

    Raises:
      ConfigError: a bad name, a missing model, or no intact version (one line each).
    """
    problem = publishing.model_name_problem(model_name)
    if problem:
        raise ConfigError(f"--model_name={model_name!r} {problem}")
    base = os.path.join(export_dir, model_name)
    if not os.path.isdir(base):
        present = sorted(os.listdir(export_dir)) if os.path.isdir(export_dir) else []
        raise ConfigError(f"--export_dir={export_dir} has no model {model_name!r} "
                          f"(folders: {', '.join(present) or 'none'})")
    publishing.remove_abandoned_staging(base)
    if not files.saved_model_versions(base):
        raise ConfigError(f"{base} holds no version folder with a saved_model.pb "
                          f"(export with predrnn-export)")
    try:
        version, path, loaded = publishing.load_newest_intact(base, tf.saved_model.load)
    except ExportError as error:
        raise ConfigError(str(error)) from None
    return ServedModel(model_name, version, path, loaded.signatures,
                       read_signature_defs(path))


def read_signature_defs(version_path: str) -> dict[str, Any]:
    """The SignatureDefs of ``VERSION/saved_model.pb`` as TF Serving's JSON (proto3 JSON with
    the default fields printed, as its REST metadata answer has them)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(version_path, "saved_model.pb"), "rb") as stream:
        saved_model.ParseFromString(stream.read())
    signature_defs = saved_model.meta_graphs[0].signature_def
    return {name: json_format.MessageToDict(signature_defs[name],
                                            always_print_fields_with_no_presence=True,
                                            preserving_proto_field_name=True)
            for name in sorted(signature_defs)}


def _as_inputs(value: Any, keys: list[str], what: str) -> dict[str, Any]:
    """A columnar value or one instance: a dict of named inputs, or the single input bare."""
    if isinstance(value, dict):
        return value
    if len(keys) != 1:
        raise RequestError(400, f"{what} must name the inputs {keys}")
    return {keys[0]: value}


def parse_inputs(body: dict[str, Any], specs: dict[str, tf.TensorSpec]
                 ) -> tuple[dict[str, np.ndarray], bool]:
    """The request's arrays by input name, and whether it used the row format."""
    keys = sorted(specs)
    if ("inputs" in body) == ("instances" in body):
        raise RequestError(400, 'the request must have exactly one of "inputs" and '
                                '"instances"')
    rows = "instances" in body
    if rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, '"instances" must be a non-empty list')
        named = [_as_inputs(instance, keys, "each instance") for instance in instances]
        columns = {key: [instance.get(key) for instance in named] for key in named[0]}
    else:
        columns = _as_inputs(body["inputs"], keys, '"inputs"')
    if sorted(columns) != keys:
        raise RequestError(400, f"input keys {sorted(columns)} do not match the signature's "
                                f"{keys}")
    arrays = {}
    for key, value in columns.items():
        try:
            arrays[key] = np.asarray(value, specs[key].dtype.as_numpy_dtype)
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            raise RequestError(400, f"input {key!r} is not a rectangular array of float32 "
                                    f"numbers ({error})") from None
    return arrays, rows


def check_frame_size(arrays: dict[str, np.ndarray], max_frame_size: int) -> None:
    """400 at once for frames larger than ``max_frame_size`` (before any compute)."""
    for key, array in arrays.items():
        if array.ndim >= 3 and max(array.shape[-3:-1]) > max_frame_size:
            raise RequestError(400, f"input {key!r} has frames of {array.shape[-3]}x"
                                    f"{array.shape[-2]} pixels, more than this server's "
                                    f"--max_frame_size={max_frame_size}")


def run_signature(model: ServedModel, signature_name: str, body: dict[str, Any],
                  max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> dict[str, Any]:
    """One predict request against ``model``: the JSON-ready response body."""
    if signature_name not in model.signatures:
        raise RequestError(400, f'Serving signature name: "{signature_name}" not found in '
                                f"signature def (have {sorted(model.signatures)})")
    function = model.signatures[signature_name]
    specs = function.structured_input_signature[1]
    arrays, rows = parse_inputs(body, specs)
    check_frame_size(arrays, max_frame_size)
    for key, array in arrays.items():
        if specs[key].shape.rank is not None and array.ndim != specs[key].shape.rank:
            raise RequestError(400, f"input {key!r} must have rank {specs[key].shape.rank} "
                                    f"{specs[key].shape}, received shape {array.shape}")
    try:
        outputs = function(**{key: tf.constant(array) for key, array in arrays.items()})
    except tf.errors.InvalidArgumentError as error:
        raise RequestError(400, error.message) from None
    values = {key: value.numpy() for key, value in outputs.items()}
    if rows:
        if len(values) == 1:
            (value,) = values.values()
            return {"predictions": value.tolist()}
        count = len(next(iter(values.values())))
        return {"predictions": [{key: value[index].tolist() for key, value in values.items()}
                                for index in range(count)]}
    if len(values) == 1:
        (value,) = values.values()
        return {"outputs": value.tolist()}
    return {"outputs": {key: value.tolist() for key, value in values.items()}}


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """TF Serving's ``GetModelMetadata`` answer (REST ``GET .../metadata``)."""
    return {"model_spec": {"name": model.name, "signature_name": "",
                           "version": str(model.version)},
            "metadata": {"signature_def": {"signature_def": model.signature_defs}}}


def model_status(model: ServedModel) -> dict[str, Any]:
    """TF Serving's ``GetModelStatus`` answer for the served version."""
    return {"model_version_status": [{
        "version": str(model.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}


class ForecastRequestHandler(http.server.BaseHTTPRequestHandler):
    """The REST API of one loaded model (``model``, limits set by :func:`make_handler`).

    Bounds: every socket read times out after ``timeout`` seconds and a body must arrive
    within ``timeout`` seconds in all (408 otherwise); bodies are read and parsed inside the
    ``gate`` (at most ``concurrency`` at once), so memory is bounded by ``concurrency``
    times (``max_request_bytes`` + the parsed arrays); frames beyond ``max_frame_size`` get
    400 before any compute. Every error, also http.server's own, is a one-line JSON body.
    """

    server_version = "predrnn-serve"
    model: ServedModel
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    timeout: float = DEFAULT_READ_TIMEOUT_SECONDS  # StreamRequestHandler's socket timeout
    gate: threading.BoundedSemaphore

    def log_message(self, format_string, *args):  # noqa: A002 (http.server's name)
        _log.info("%s %s", self.address_string(), format_string % args)

    def reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code, message=None, explain=None):  # noqa: ARG002 (http.server's)
        """http.server's own errors (bad request line, 501 method...) as one-line JSON."""
        text = message or self.responses.get(code, ("error",))[0]
        try:
            self.reply(code, {"error": " ".join(str(text).split())[:MAX_ERROR_CHARACTERS]})
        except OSError:
            self.close_connection = True

    def route(self, predict: bool) -> str:
        """The request's verb (``:predict``, ``/metadata`` or ``""`` for the status) after
        checking the version; RequestError for a wrong path, method or model."""
        match = PATH_PATTERN.match(self.path.split("?")[0])
        if match is None or (match.group(3) == ":predict") != predict:
            raise RequestError(404, f"Malformed request: {self.command} {self.path}")
        if match.group(1) != self.model.name:
            raise RequestError(404, f"Servable not found for request: Latest({match.group(1)})")
        self.model.check_version(int(match.group(2) or 0))
        return match.group(3) or ""

    def discard_body(self, length: int) -> None:
        """Reads and drops up to ``length`` bytes of an oversized body, so the client reads
        the 413 rather than a reset (bounded: 1 MiB reads, ``timeout`` seconds in all)."""
        deadline = time.monotonic() + self.timeout
        while length > 0 and time.monotonic() < deadline:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def content_length(self) -> int:
        """The declared body size: 411 when absent, 400 when malformed, 413 when too large."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a predict request needs a Content-Length header")
        if not CONTENT_LENGTH.match(length.strip()):
            raise RequestError(400, f"malformed Content-Length {length[:40]!r}: a decimal "
                                    f"byte count")
        if int(length) > self.max_request_bytes:
            self.discard_body(min(int(length), DISCARD_LIMIT_BYTES))
            raise RequestError(413, f"request of {int(length)} bytes exceeds the limit of "
                                    f"{self.max_request_bytes} bytes (--max_request_bytes)")
        return int(length)

    def read_exactly(self, length: int) -> bytes:
        """The body, in 1 MiB reads, within ``timeout`` seconds in all (408 otherwise)."""
        deadline, chunks, remaining = time.monotonic() + self.timeout, [], length
        while remaining > 0:
            if time.monotonic() > deadline:
                raise TimeoutError
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                raise RequestError(400, f"the body ended after {length - remaining} of the "
                                        f"{length} bytes its Content-Length declares")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def read_body(self) -> dict[str, Any]:
        """The JSON object of the request body (400, 408, 411 or 413 otherwise)."""
        raw = self.read_exactly(self.content_length())
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, > 4300 digits
            raise RequestError(400, f"the request body is not JSON this server accepts: "
                                    f"{type(error).__name__}: {str(error)[:200]}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return body

    def handle_safely(self, work) -> None:
        """Replies with ``work()``, or with the error as one line (never raises)."""
        try:
            self.reply(200, work())
        except RequestError as error:
            self.reply(error.status, {"error": " ".join(error.message.split())})
        except TimeoutError:
            self.reply(408, {"error": f"the request body did not arrive within "
                                      f"{self.timeout:g} s"})
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 (a request never kills the server)
            _log.exception("request failed")
            self.reply(500, {"error": " ".join(f"{type(error).__name__}: {error}"
                                               .split())[:MAX_ERROR_CHARACTERS]})

    def do_GET(self):  # noqa: N802 (http.server's method name)
        def work():
            if self.route(predict=False) == "/metadata":
                return model_metadata(self.model)
            return model_status(self.model)

        self.handle_safely(work)

    def do_POST(self):  # noqa: N802
        def work():
            self.route(predict=True)
            with self.gate:  # read, parse and run within the concurrency limit
                body = self.read_body()
                signature = body.get("signature_name") or "serving_default"
                return run_signature(self.model, str(signature), body, self.max_frame_size)

        self.handle_safely(work)

    def refuse_method(self):
        self.reply(501, {"error": f"method {self.command} is not supported: use GET (model "
                                  f"status, /metadata) or POST (:predict)"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = refuse_method


def make_handler(model: ServedModel, max_request_bytes: int, concurrency: int = 2,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS):
    """A :class:`ForecastRequestHandler` class bound to one loaded model and its limits."""
    return type("BoundForecastRequestHandler", (ForecastRequestHandler,), {
        "model": model, "max_request_bytes": max_request_bytes,
        "max_frame_size": max_frame_size, "timeout": read_timeout_seconds,
        "gate": threading.BoundedSemaphore(concurrency)})


def make_server(model: ServedModel, host: str = "127.0.0.1", port: int = 8501,
                max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, *,
                max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
                concurrency: int = 2) -> http.server.ThreadingHTTPServer:
    """A ``ThreadingHTTPServer`` (not started; ``port=0`` picks a free port)."""
    handler = make_handler(model, max_request_bytes, concurrency, max_frame_size,
                           read_timeout_seconds)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
