"""The serving client against in-test TF Serving stand-ins that run the exported SavedModel.

The gRPC server implements ``tensorflow.serving.PredictionService/Predict`` and the HTTP
handler ``POST /v1/models/NAME[/versions/N]:predict`` with TF Serving's JSON formats and
error bodies, so the client's real wire formats are exercised (loopback only).
"""

import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from concurrent import futures

import cv2
import numpy as np
import pytest
import tensorflow as tf

grpc = pytest.importorskip("grpc")
pytest.importorskip("tensorflow_serving.apis")
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from predrnn_tf.config import Config  # noqa: E402
from predrnn_tf.data import synthetic_radar  # noqa: E402
from predrnn_tf.models.builder import build_model  # noqa: E402
from predrnn_tf.serving import exporter  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tools", "serving_client.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)
MODEL = "tiny"
C_TYPE_NAMES = {"float32": "float", "float64": "double"}  # TF Serving's dtype wording
DBZ = {"units": "dBZ", "scale": synthetic_radar.DBZ_SCALE, "offset": synthetic_radar.DBZ_OFFSET}


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["serving_client"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


client = load_client()


class ServedModel:
    """Runs the SavedModel's signatures as TF Serving would, raising ServedError on misuse."""

    def __init__(self, path: str, name: str, version: int):
        self.loaded = tf.saved_model.load(path)
        self.name, self.version = name, version

    def predict(self, name: str, version: int, signature: str, inputs: dict) -> dict:
        if name != self.name or version not in (0, self.version):
            label = f"Specific({name}, {version})" if version else f"Latest({name})"
            raise ServedError("NOT_FOUND", f"Servable not found for request: {label}")
        signature = signature or "serving_default"
        if signature not in self.loaded.signatures:
            raise ServedError("INVALID_ARGUMENT",
                              f'Serving signature name: "{signature}" not found in signature def')
        function = self.loaded.signatures[signature]
        specs = function.structured_input_signature[1]
        if sorted(inputs) != sorted(specs):
            raise ServedError("INVALID_ARGUMENT", f"input keys {sorted(inputs)} do not match "
                                                  f"the signature's {sorted(specs)}")
        for key, value in inputs.items():
            if tf.as_dtype(value.dtype) != specs[key].dtype:
                wanted, given = (C_TYPE_NAMES.get(dtype.name, dtype.name)
                                 for dtype in (specs[key].dtype, tf.as_dtype(value.dtype)))
                raise ServedError("INVALID_ARGUMENT",
                                  f"Expects arg[0] to be {wanted} but {given} is provided")
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except (tf.errors.OpError, TypeError, ValueError) as error:
            raise ServedError("INVALID_ARGUMENT", str(error)) from None
        return {key: value.numpy() for key, value in outputs.items()}


class ServedError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, served: ServedModel):
        self.served = served

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        try:
            outputs = self.served.predict(request.model_spec.name,
                                          request.model_spec.version.value,
                                          request.model_spec.signature_name, inputs)
        except ServedError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.served.name
        response.model_spec.version.value = self.served.version
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def make_rest_handler(served: ServedModel):
    path_pattern = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):  # noqa: N802 (http.server method name)
            match = path_pattern.match(self.path)
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if match is None:
                return self.reply(404, {"error": f"Malformed request: POST {self.path}"})
            name, version = match.group(1), int(match.group(2) or 0)
            signature = request.get("signature_name", "serving_default")
            try:
                if "instances" in request:
                    rows = request["instances"]
                    keys = rows[0].keys() if isinstance(rows[0], dict) else ["frames"]
                    inputs = {key: np.asarray([row[key] if isinstance(row, dict) else row
                                               for row in rows], np.float32) for key in keys}
                else:
                    columns = request["inputs"]
                    inputs = {key: np.asarray(value, np.float32)
                              for key, value in columns.items()}
                outputs = served.predict(name, version, signature, inputs)
            except ServedError as error:
                return self.reply(404 if error.code == "NOT_FOUND" else 400,
                                  {"error": error.message})
            (value,) = outputs.values()  # single output: TF Serving leaves it unnamed
            if "instances" in request:
                return self.reply(200, {"predictions": value.tolist()})
            return self.reply(200, {"outputs": value.tolist()})

    return Handler


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = build_model(TINY)
    export_dir = str(tmp_path_factory.mktemp("exports"))
    summary = exporter.export_model(model, TINY, export_dir, MODEL, 1, value_mapping=DBZ,
                                      warmup=False)
    return ServedModel(summary["path"], MODEL, 1)


@pytest.fixture(scope="module")
def grpc_server(served):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(served), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture(scope="module")
def rest_server(served):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_rest_handler(served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def frames_01(batch=1, length=3, size=16, seed=0):
    return np.random.default_rng(seed).random((batch, length, size, size, 1), dtype=np.float32)


def expected(served, frames, signature="serving_default", key="frames"):
    (value,) = served.predict(MODEL, 0, signature, {key: frames}).values()
    return value


def run_client(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, \
        result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_rest_cli_writes_predictions_pictures_and_latency(served, rest_server, tmp_path):
    frames = frames_01()
    np.save(tmp_path / "frames.npy", frames[0])  # [T, H, W, C]: the client adds the batch axis
    result = run_client(f"--server={rest_server}", f"--model_name={MODEL}",
                        f"--input={tmp_path / 'frames.npy'}", f"--output_dir={tmp_path / 'out'}",
                        "--repeats=2")
    assert result.returncode == 0, result.stderr
    assert "latency over 2 requests: p50" in result.stdout
    predictions = np.load(tmp_path / "out" / "predictions.npy")
    np.testing.assert_allclose(predictions, expected(served, frames), atol=1e-6)
    image = cv2.imread(str(tmp_path / "out" / "predictions.png"))
    assert image is not None and image.shape[1] > 6 * 16
    if os.path.exists(tmp_path / "out" / "predictions.gif"):
        assert os.path.getsize(tmp_path / "out" / "predictions.gif") > 0


def test_rest_instances_format_with_png_folder(served, rest_server, tmp_path):
    pixels = (frames_01(length=5, seed=1)[0] * 255).astype(np.uint8)  # [5, 16, 16, 1]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, frame in enumerate(pixels):
        cv2.imwrite(str(folder / f"frame_{index:02d}.png"), frame[..., 0])
    options = client.ClientOptions(server=rest_server, model_name=MODEL,
                                   request_format="instances", model_version=1)
    frames = client.prepare_frames(client.read_frames(str(folder)), "serving_default",
                                   last_frames=3)
    np.testing.assert_array_equal(frames[0], pixels[-3:] / np.float32(255))
    predictions = client.predict(frames, options)
    np.testing.assert_allclose(predictions, expected(served, frames), atol=1e-6)


def test_grpc_cli_round_trip_and_dbz_signature(served, grpc_server, tmp_path):
    frames = frames_01(batch=2, seed=2)
    np.save(tmp_path / "frames.npy", frames)
    result = run_client("--protocol=grpc", f"--server={grpc_server}", f"--model_name={MODEL}",
                        "--model_version=1", f"--input={tmp_path / 'frames.npy'}",
                        f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    assert "latency:" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "out" / "predictions.npy"),
                               expected(served, frames), atol=1e-6)
    # predict_dbz: dBZ in, dBZ out, through the client's library functions.
    dbz = (frames * 255 * DBZ["scale"] + DBZ["offset"]).astype(np.float32)
    options = client.ClientOptions(server=grpc_server, model_name=MODEL, protocol="grpc",
                                   signature="predict_dbz", input_key="frames_dbz",
                                   output_key="predictions_dbz")
    predictions = client.predict(client.prepare_frames(dbz, "predict_dbz"), options)
    np.testing.assert_allclose(predictions, expected(served, frames) * 255 * DBZ["scale"]
                               + DBZ["offset"], atol=1e-3)


def test_rest_errors_are_one_line(rest_server, tmp_path):
    np.save(tmp_path / "frames.npy", frames_01()[0])
    np.save(tmp_path / "four.npy", frames_01(length=4)[0])
    common = [f"--server={rest_server}", f"--output_dir={tmp_path / 'out'}"]
    missing = run_client(*common, "--model_name=nope", f"--input={tmp_path / 'frames.npy'}")
    assert_one_line_error(missing, "HTTP 404", "Servable not found", "nope")
    shape = run_client(*common, f"--model_name={MODEL}", f"--input={tmp_path / 'four.npy'}")
    assert_one_line_error(shape, "HTTP 400")
    assert not os.path.exists(tmp_path / "out" / "predictions.npy")  # nothing half-written


def test_grpc_errors_are_one_line(grpc_server, tmp_path):
    options = client.ClientOptions(server=grpc_server, model_name=MODEL, protocol="grpc")
    cases = [
        (frames_01(length=4), options, "INVALID_ARGUMENT"),  # 4 frames, the model takes 3
        (frames_01().astype(np.float64), options, "to be float but double is provided"),
        (frames_01(), client.ClientOptions(server=grpc_server, model_name="nope",
                                           protocol="grpc"), "NOT_FOUND"),
    ]
    for frames, case_options, fragment in cases:
        with pytest.raises(client.ServingError) as raised:
            client.predict(frames, case_options)
        assert fragment in str(raised.value) and "\n" not in str(raised.value)
    np.save(tmp_path / "frames64.npy", frames_01().astype(np.float64))
    result = run_client("--protocol=grpc", f"--server={grpc_server}", f"--model_name={MODEL}",
                        f"--input={tmp_path / 'frames64.npy'}", "--keep_dtype")
    assert_one_line_error(result, "gRPC INVALID_ARGUMENT", "double")


def test_unreachable_server_and_bad_input_are_one_line(tmp_path):
    np.save(tmp_path / "frames.npy", frames_01()[0])
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    np.save(tmp_path / "dbz.npy", np.full((3, 16, 16), 35.0))
    closed = run_client("--server=127.0.0.1:9", f"--model_name={MODEL}",
                        f"--input={tmp_path / 'frames.npy'}", "--timeout=5")
    assert_one_line_error(closed, "cannot reach")
    assert_one_line_error(run_client(f"--model_name={MODEL}", f"--input={tmp_path / 'flat.npy'}"),
                          "[T, H, W]", "(4, 4)")
    assert_one_line_error(run_client(f"--model_name={MODEL}", f"--input={tmp_path / 'dbz.npy'}",
                                     "--signature=serving_default"), "[0, 1]", "predict_dbz")
    assert client.choose_signature(np.full((3, 16, 16), 35.0)) == "predict_dbz"  # auto
    assert client.choose_signature(frames_01()) == "serving_default"
    assert_one_line_error(run_client(f"--model_name={MODEL}", "--input=/nonexistent.npy"),
                          "does not exist")


def test_response_formats_and_one_line():
    options = client.ClientOptions(server="x", model_name=MODEL)
    np.testing.assert_array_equal(client.parse_rest_response({"outputs": [[1.0]]}, options),
                                  [[1.0]])
    np.testing.assert_array_equal(
        client.parse_rest_response({"outputs": {"predictions": [2.0], "other": [3.0]}}, options),
        [2.0])
    np.testing.assert_array_equal(
        client.parse_rest_response({"predictions": [{"predictions": [4.0]}]}, options), [[4.0]])
    with pytest.raises(client.ServingError, match="no outputs/predictions"):
        client.parse_rest_response({"result": 1}, options)
    assert client.one_line("a\n  b\tc") == "a b c"
    assert len(client.one_line("x" * 1000)) == client.MAX_MESSAGE_CHARACTERS
    assert client.rest_url(client.ClientOptions(server="h:1", model_name="m", model_version=3)) \
        == "http://h:1/v1/models/m/versions/3:predict"


def test_rain_rate_models_get_mm_per_hour_without_hand_conversion():
    rates = np.full((3, 16, 16), 0.4, np.float32)  # light rain: every value in [0, 1]
    rates[:, :2, :2] = np.nan  # no data
    served = {"serving_default", "predict_mm_per_hour"}
    assert client.choose_signature(rates, served) == "predict_mm_per_hour"
    assert client.choose_signature(rates) == "predict_dbz"  # no metadata: as before
    sent = client.prepare_frames(rates, "predict_mm_per_hour")
    assert sent.shape == (1, 3, 16, 16, 1) and np.isnan(sent[0, :, :2, :2]).all()
    with pytest.raises(client.ServingError, match="predict_mm_per_hour"):
        client.prepare_frames(rates, "serving_default")
