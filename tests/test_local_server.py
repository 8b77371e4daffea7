"""predrnn-serve's local TF Serving REST stand-in, driven over HTTP on 127.0.0.1."""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import serving_client as client
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.config import Config
from predrnn_tf.data import synthetic_radar
from predrnn_tf.errors import ConfigError
from predrnn_tf.models.builder import build_model
from predrnn_tf.serving import exporter, local_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=4, img_width=16, input_length=3,
              total_length=6)
DBZ = {"units": "dBZ", "scale": synthetic_radar.DBZ_SCALE, "offset": synthetic_radar.DBZ_OFFSET}
MODEL = "tiny"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("exports"))
    exporter.export_model(build_model(TINY), TINY, path, MODEL, 2, value_mapping=DBZ,
                          warmup=False)
    return path


@pytest.fixture(scope="module")
def served(export_dir):
    return local_server.load_newest_version(export_dir, MODEL)


def start(served, max_request_bytes=local_server.DEFAULT_MAX_REQUEST_BYTES):
    server = local_server.make_server(served, "127.0.0.1", 0, max_request_bytes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def address(served):
    server, address = start(served)
    yield address
    server.shutdown()
    server.server_close()


def frames01(batch=1, seed=0):
    return np.random.default_rng(seed).random((batch, 3, 16, 16, 1), dtype=np.float32)


def direct(served, frames, signature="serving_default", key="frames"):
    (value,) = served.signatures[signature](**{key: tf.constant(frames)}).values()
    return value.numpy()


def send(address, path, body=None, raw=None, method=None):
    """(status, decoded JSON) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_client_round_trip_both_formats_and_versions(served, address):
    frames = frames01(batch=2)
    for request_format, version in (("inputs", 0), ("instances", 2)):
        options = client.ClientOptions(server=address, model_name=MODEL, model_version=version,
                                       request_format=request_format)
        np.testing.assert_allclose(client.predict(frames, options), direct(served, frames),
                                   atol=1e-6)


def test_dbz_signature_gives_dbz_back(served, address):
    dbz = (frames01(seed=1) * 255 * DBZ["scale"] + DBZ["offset"]).astype(np.float32)
    assert client.choose_signature(dbz) == "predict_dbz"
    options = client.ClientOptions(server=address, model_name=MODEL, signature="predict_dbz",
                                   input_key="frames_dbz", output_key="predictions_dbz")
    np.testing.assert_allclose(client.predict(dbz, options),
                               direct(served, dbz, "predict_dbz", "frames_dbz"), atol=1e-4)


def test_model_status(address):
    status, body = send(address, f"/v1/models/{MODEL}")
    assert status == 200 and body["model_version_status"][0]["version"] == "2"
    assert body["model_version_status"][0]["state"] == "AVAILABLE"
    assert send(address, f"/v1/models/{MODEL}/versions/9")[0] == 404


@pytest.mark.parametrize("path,body,raw,status,fragment", [
    ("/v1/models/nope:predict", {"inputs": [[0]]}, None, 404, "Servable not found"),
    (f"/v1/models/{MODEL}/versions/7:predict", {"inputs": [[0]]}, None, 404, "Specific"),
    (f"/v1/models/{MODEL}:predict", None, b"{not json", 400, "not JSON"),
    (f"/v1/models/{MODEL}:predict", None, b"[1, 2]", 400, "JSON object"),
    (f"/v1/models/{MODEL}:predict", {"frames": []}, None, 400, "exactly one of"),
    (f"/v1/models/{MODEL}:predict", {"inputs": {"x": [1.0]}}, None, 400, "input keys"),
    (f"/v1/models/{MODEL}:predict", {"inputs": [[1.0], [1.0, 2.0]]}, None, 400, "rectangular"),
    (f"/v1/models/{MODEL}:predict", {"inputs": [[[[[0.5]]]]]}, None, 400, "frames must be"),
    (f"/v1/models/{MODEL}:predict", {"inputs": np.full((1, 3, 16, 16, 1), 200.0).tolist()},
     None, 400, "in [0, 1]"),
    (f"/v1/models/{MODEL}:predict", {"signature_name": "predict_dbz",
                                     "inputs": np.full((1, 3, 16, 16, 1), 0.5).tolist()},
     None, 400, "look like pixels"),
    (f"/v1/models/{MODEL}:predict", {"signature_name": "nope", "inputs": [0]}, None, 400,
     "not found in signature def"),
    (f"/v1/models/{MODEL}:explain", {"inputs": [0]}, None, 404, "Malformed request"),
])
def test_malformed_requests_get_one_line_and_the_server_lives(address, served, path, body, raw,
                                                              status, fragment):
    code, reply = send(address, path, body, raw)
    assert code == status and fragment in reply["error"] and "\n" not in reply["error"], reply
    frames = frames01()
    options = client.ClientOptions(server=address, model_name=MODEL)
    np.testing.assert_allclose(client.predict(frames, options), direct(served, frames),
                               atol=1e-6)


def test_request_size_is_bounded(served):
    server, address = start(served, max_request_bytes=1000)
    try:
        status, reply = send(address, f"/v1/models/{MODEL}:predict",
                             {"inputs": frames01().tolist()})
        assert status == 413 and "exceeds the limit of 1000 bytes" in reply["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_missing_model_is_one_line(export_dir, tmp_path):
    with pytest.raises(ConfigError, match="has no model 'nope'"):
        local_server.load_newest_version(export_dir, "nope")
    os.makedirs(tmp_path / "empty" / "m")
    with pytest.raises(ConfigError, match="no version folder"):
        local_server.load_newest_version(str(tmp_path / "empty"), "m")
    result = subprocess.run([sys.executable, "-m", "predrnn_tf.cli.serve",
                             f"--export_dir={tmp_path / 'empty'}", "--model_name=m"],
                            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert result.stderr.strip().count("\n") == 0, result.stderr


# --- hostile clients (issue 31): every client error a 4xx with one JSON line --------------
def raw_exchange(address, request: bytes, timeout=20):
    """(status, JSON body) of a hand-written HTTP request."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post(path, body: bytes, length=None):
    length = str(len(body)) if length is None else length
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
            + body)


PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.mark.parametrize("request_bytes,status,fragment", [
    (post(PREDICT, b"[" * 100_000 + b"]" * 100_000), 400, "RecursionError"),
    (post(PREDICT, b'{"inputs": ' + b"7" * 5000 + b"}"), 400, "ValueError"),
    (post(PREDICT, b'{"inputs": [[[[[' + str(10**400).encode() + b"]]]]]}"), 400, "float32"),
    (post(PREDICT, b"{}", length="12abc"), 400, "malformed Content-Length"),
    (post(PREDICT, b"{}", length="\u0661\u0662".encode("utf-8").decode("latin-1")), 400,
     "malformed Content-Length"),
    (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 411, "Content-Length"),
    (f"PUT {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(), 501, "PUT"),
    (b"BREW /coffee HTTP/1.1\r\n\r\n", 501, "BREW"),
    (b"GET /" + b"x" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "URI Too Long"),
])
def test_hostile_requests_are_4xx_with_one_json_line(address, served, request_bytes, status,
                                                     fragment):
    code, reply = raw_exchange(address, request_bytes)
    assert code == status and fragment in reply["error"] and "\n" not in reply["error"], reply
    frames = frames01()
    np.testing.assert_allclose(client.predict(frames, client.ClientOptions(
        server=address, model_name=MODEL)), direct(served, frames), atol=1e-6)


def test_a_short_body_times_out_and_frees_its_thread(served):
    server = local_server.make_server(served, "127.0.0.1", 0, read_timeout_seconds=1.0,
                                      concurrency=1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        code, reply = raw_exchange(address, post(PREDICT, b'{"inputs": [', length="100"))
        assert code == 408 and "did not arrive within 1 s" in reply["error"]
        assert time.monotonic() - started < 10
        frames = frames01()  # the one slot of the gate is free again
        np.testing.assert_allclose(client.predict(frames, client.ClientOptions(
            server=address, model_name=MODEL)), direct(served, frames), atol=1e-6)
    finally:
        server.shutdown()
        server.server_close()


def test_frames_beyond_the_max_frame_size_are_refused_at_once(served):
    server = local_server.make_server(served, "127.0.0.1", 0, max_frame_size=8)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, reply = send(f"127.0.0.1:{server.server_address[1]}", PREDICT,
                             {"inputs": frames01().tolist()})
        assert status == 400 and "16x16 pixels, more than this server's --max_frame_size=8" \
            in reply["error"]
    finally:
        server.shutdown()
        server.server_close()


def dead_pid():
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)
    return int(process.stdout)


def test_damaged_versions_are_passed_over_for_the_newest_intact_one(export_dir, tmp_path,
                                                                     caplog):
    base = tmp_path / MODEL
    shutil.copytree(os.path.join(export_dir, MODEL, "2"), base / "2")
    for version in ("3", "4", "5", "\u0667"):  # 7 in Arabic-Indic digits
        shutil.copytree(base / "2", base / version)
    data = next((base / "3" / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated variables
    flipped = next((base / "4" / "variables").glob("variables.data-*"))
    content = bytearray(flipped.read_bytes())
    content[len(content) // 2] ^= 0xFF
    flipped.write_bytes(bytes(content))  # a bit-flipped tensor: its CRC fails
    (base / "5" / "saved_model.pb").write_bytes(b"not a protobuf")
    shutil.copytree(base / "2", base / "6")
    shutil.rmtree(base / "6" / "variables")  # missing variables/
    killed, live = base / f".8.tmp-{dead_pid()}", base / f".9.tmp-{os.getpid()}"
    killed.mkdir()
    live.mkdir()
    with caplog.at_level(logging.WARNING):
        model = local_server.load_newest_version(str(tmp_path), MODEL)
    assert model.version == 2 and not killed.exists() and live.exists()
    for version, file in (("6", "variables/variables.index is missing"), ("5", "saved_model.pb"),
                          ("4", "variables/"), ("3", "variables/"), ("\u0667", "ASCII digits")):
        assert f"{base / version}" in caplog.text and file in caplog.text
    shutil.rmtree(base / "2")
    with pytest.raises(ConfigError) as raised:
        local_server.load_newest_version(str(tmp_path), MODEL)
    assert "holds no intact version" in str(raised.value) and "\n" not in str(raised.value)


# --- model metadata (TF Serving's GET .../metadata) ------------------------------------------
def test_metadata_has_tf_serving_shape_with_every_signature(address):
    status, body = send(address, f"/v1/models/{MODEL}/versions/2/metadata")
    assert status == 200 and body["model_spec"] == {"name": MODEL, "signature_name": "",
                                                    "version": "2"}
    signature_defs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "predict_dbz"} <= set(signature_defs)
    default = signature_defs["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    (name, tensor), = default["inputs"].items()
    assert name == "frames" and tensor["dtype"] == "DT_FLOAT" and tensor["name"]
    dims = [dim["size"] for dim in tensor["tensor_shape"]["dim"]]
    assert dims[0] == "-1" and dims[-1] == "1" and len(dims) == 5  # int64 as strings
    assert tensor["tensor_shape"]["unknown_rank"] is False
    assert list(signature_defs["predict_dbz"]["outputs"]) == ["predictions_dbz"]
    assert send(address, f"/v1/models/{MODEL}/versions/9/metadata")[0] == 404
    assert send(address, "/v1/models/nope/metadata")[0] == 404


def test_client_reads_the_metadata_to_send_mm_per_hour(tmp_path):
    """A rain-rate export: the client picks predict_mm_per_hour from the metadata for a
    .npy of light rain (all values in [0, 1], NaN = no data), which alone looks like
    pixels, and gives mm/h back; a signature the model lacks is one line before sending."""
    exporter.export_model(build_model(TINY), TINY, str(tmp_path / "exports"), "rain", 1,
                          value_mapping=units.rain_rate_mapping(), warmup=False)
    model = local_server.load_newest_version(str(tmp_path / "exports"), "rain")
    server, address = start(model)
    try:
        options = client.ClientOptions(server=address, model_name="rain")
        served = client.served_signatures(options)
        assert served["predict_mm_per_hour"] == ("frames_mm_per_hour",
                                                 "predictions_mm_per_hour")
        rates = np.full((3, 16, 16), 0.4, np.float32)
        rates[:, :2, :2] = np.nan
        np.save(tmp_path / "rates.npy", rates)
        result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "serving_client.py"),
                                 f"--server={address}", "--model_name=rain",
                                 f"--input={tmp_path / 'rates.npy'}",
                                 f"--output_dir={tmp_path / 'out'}"],
                                cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "(predict_mm_per_hour)" in result.stdout, result.stderr
        predictions = np.load(tmp_path / "out" / "predictions.npy")
        expected = direct(model, rates[None, ..., None], "predict_mm_per_hour",
                          "frames_mm_per_hour")
        np.testing.assert_allclose(predictions, expected, atol=1e-5, equal_nan=True)
        with pytest.raises(client.ServingError, match="has no signature 'predict_dbz'"):
            client.check_served("predict_dbz", served, "rain")
    finally:
        server.shutdown()
        server.server_close()
