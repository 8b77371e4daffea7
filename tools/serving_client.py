"""Send the last input frames to a TF Serving model and save the forecast.

  # REST (port 8501), frames as a .npy [T, H, W], [T, H, W, C] or [B, T, H, W, C]:
  python tools/serving_client.py --server=localhost:8501 --model_name=radar \
      --input=last_frames.npy --output_dir=forecast
  # gRPC (port 8500), a folder of PNG frames (sorted by name; the last 10 are sent):
  python tools/serving_client.py --protocol=grpc --server=localhost:8500 --model_name=radar \
      --input=frames/ --last_frames=10 --output_dir=forecast
  # Physical units in and out (radar exports): a float .npy of dBZ or of mm/h (NaN = no
  # data; the .npy predrnn-predict reads) goes to the model's predict_dbz or
  # predict_mm_per_hour automatically (--signature=auto) and the same units come back.
  # Against the local stand-in: predrnn-serve --export_dir=exports --model_name=radar

Writes OUTPUT_DIR/predictions.npy ([B, output_length, H, W, C] float32), predictions.png (one
row per sequence: inputs, then the forecast) and predictions.gif, and prints the latency.
uint8 inputs are scaled to [0, 1]. With ``--signature=auto`` (the default) float inputs go to
the model's rain-rate signature when it has one (REST: asked through the model's
metadata), else floats outside [0, 1] to predict_dbz and floats in [0, 1] to
serving_default, so the .npy written back is in the units of the .npy sent, as with
predrnn-predict. The picture has
a colour bar labelled in those units. Server errors (wrong shape or dtype, unknown model)
print as one line.
REST needs only numpy and OpenCV; gRPC needs ``grpcio`` and ``tensorflow-serving-api``.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
from absl import app, flags

from predrnn_tf import files
from predrnn_tf.cli.flag_parsing import import_tensorflow_quietly, run_app, run_or_exit
from predrnn_tf.evaluation import charts, plots

# Input and output keys of the signatures written by predrnn_tf.export.
SIGNATURE_KEYS = {
    "serving_default": ("frames", "predictions"),
    "predict_dbz": ("frames_dbz", "predictions_dbz"),
    "predict_mm_per_hour": ("frames_mm_per_hour", "predictions_mm_per_hour"),
}
PHYSICAL_SIGNATURES = ("predict_dbz", "predict_mm_per_hour")
DEFAULT_PORTS = {"rest": 8501, "grpc": 8500}
MAX_MESSAGE_CHARACTERS = 400


class ServingError(RuntimeError):
    """A request failed or an input is unusable; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """Where and what to ask.

    Attributes:
      server: ``host:port`` (REST also accepts ``http://host:port``).
      protocol: ``rest`` or ``grpc``.
      model_name: the served model name.
      model_version: a version number, or 0 for the newest.
      signature: signature name (``serving_default`` or ``predict_dbz``).
      input_key: the signature's input name.
      output_key: the signature's output name.
      request_format: REST body layout, ``inputs`` (columnar) or ``instances`` (rows).
      timeout: seconds per request.
    """

    server: str
    model_name: str
    protocol: str = "rest"
    model_version: int = 0
    signature: str = "serving_default"
    input_key: str = "frames"
    output_key: str = "predictions"
    request_format: str = "inputs"
    timeout: float = 120.0


def one_line(text: str) -> str:
    """Collapses whitespace (server errors often span lines) and shortens very long text."""
    text = " ".join(str(text).split())
    if len(text) > MAX_MESSAGE_CHARACTERS:
        text = text[:MAX_MESSAGE_CHARACTERS - 3] + "..."
    return text


# --- inputs ------------------------------------------------------------------------------------
def read_png_folder(folder: str) -> np.ndarray:
    """A folder of PNG frames (sorted by file name) -> ``[T, H, W, C]`` in their stored dtype."""
    paths = sorted(glob.glob(os.path.join(folder, "*.png")))
    if not paths:
        raise ServingError(f"--input={folder} holds no .png frames")
    frames = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ServingError(f"cannot read image {path}")
        if image.ndim == 2:
            image = image[..., None]
        elif image.shape[-1] == 4:
            raise ServingError(f"{path} has an alpha channel: save frames as gray or RGB PNGs")
        else:
            image = image[..., ::-1]  # BGR -> RGB
        if frames and image.shape != frames[0].shape:
            raise ServingError(f"{path} is {image.shape}, unlike {paths[0]} {frames[0].shape}")
        frames.append(image)
    return np.stack(frames)  # [T, H, W, C]


def read_frames(path: str) -> np.ndarray:
    """Reads ``--input``: a .npy array or a folder of PNGs."""
    if os.path.isdir(path):
        return read_png_folder(path)
    if not os.path.exists(path):
        raise ServingError(f"--input={path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ServingError(f"--input={path} is not a readable .npy array: {one_line(error)}") \
            from error


def prepare_frames(array: np.ndarray, signature: str, last_frames: int = 0,
                   keep_dtype: bool = False) -> np.ndarray:
    """Gives the frames a batch axis ``[B, T, H, W, C]`` and the signature's scale.

    Args:
      array: ``[T, H, W]``, ``[T, H, W, C]`` or ``[B, T, H, W, C]``.
      signature: the physical signatures take their values as they are (mm/h: NaN = no
        data); ``serving_default`` takes [0, 1] floats (uint8 and uint16 frames are scaled).
      last_frames: keep only the last N frames of each sequence (0 = all).
      keep_dtype: send the values unchanged (no scaling or float32 cast).
    """
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None, ..., None]  # [1, T, H, W, 1]
    elif array.ndim == 4:
        array = array[None]  # [1, T, H, W, C]
    elif array.ndim != 5:
        raise ServingError(f"frames must be [T, H, W], [T, H, W, C] or [B, T, H, W, C], "
                           f"got shape {array.shape}")
    if last_frames:
        if array.shape[1] < last_frames:
            raise ServingError(f"--last_frames={last_frames} but the input has only "
                               f"{array.shape[1]} frames")
        array = array[:, -last_frames:]
    if keep_dtype:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ServingError(f"frames must be numbers, got dtype {array.dtype}")
    physical = signature in PHYSICAL_SIGNATURES
    if not physical and np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float32) / float(np.iinfo(array.dtype).max)).astype(np.float32)
    array = array.astype(np.float32)
    if not physical and array.size and not (np.isfinite(array).all() and array.min() >= 0
                                            and array.max() <= 1):
        raise ServingError(f"--signature={signature} takes frames in [0, 1], got values in "
                           f"[{np.nanmin(array):g}, {np.nanmax(array):g}] (dBZ or mm/h? use "
                           "--signature=predict_dbz or predict_mm_per_hour)")
    return array


# --- REST ------------------------------------------------------------------------------------
def rest_url(options: ClientOptions) -> str:
    """``http://HOST:PORT/v1/models/NAME[/versions/N]:predict``."""
    base = options.server if "://" in options.server else f"http://{options.server}"
    version = f"/versions/{options.model_version}" if options.model_version else ""
    return f"{base.rstrip('/')}/v1/models/{options.model_name}{version}:predict"


def rest_body(frames: np.ndarray, options: ClientOptions) -> bytes:
    """The JSON request body in the columnar (``inputs``) or row (``instances``) format."""
    body = {"signature_name": options.signature}
    if options.request_format == "instances":
        body["instances"] = [{options.input_key: sequence.tolist()} for sequence in frames]
    else:
        body["inputs"] = {options.input_key: frames.tolist()}
    return json.dumps(body).encode("utf-8")


def _named_output(value, options: ClientOptions):
    """Picks ``output_key`` out of a multi-output value; single outputs come unnamed."""
    if isinstance(value, dict):
        if options.output_key not in value:
            raise ServingError(f"the response has outputs {sorted(value)}, not "
                               f"--output_key={options.output_key}")
        return value[options.output_key]
    return value


def parse_rest_response(response: dict, options: ClientOptions) -> np.ndarray:
    """The predictions of a TF Serving REST response (either format)."""
    if "outputs" in response:
        return np.asarray(_named_output(response["outputs"], options), np.float32)
    if "predictions" in response:
        rows = [_named_output(row, options) for row in response["predictions"]]
        return np.asarray(rows, np.float32)
    raise ServingError(f"unexpected response keys {sorted(response)} (no outputs/predictions)")


def predict_rest(frames: np.ndarray, options: ClientOptions) -> np.ndarray:
    """POSTs one predict request; ServingError with the server's message on failure."""
    url = rest_url(options)
    request = urllib.request.Request(url, data=rest_body(frames, options),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=options.timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        raise ServingError(f"HTTP {error.code} from {url}: {one_line(detail)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServingError(f"cannot reach {url}: {one_line(reason)}") from None
    try:
        return parse_rest_response(json.loads(payload), options)
    except json.JSONDecodeError as error:
        raise ServingError(f"{url} did not return JSON: {one_line(error)}") from None


# --- gRPC ------------------------------------------------------------------------------------
def predict_grpc(frames: np.ndarray, options: ClientOptions) -> np.ndarray:
    """Calls ``PredictionService.Predict``; ServingError with the status on failure."""
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ServingError(f"--protocol=grpc needs grpcio and tensorflow-serving-api "
                           f"(pip install tensorflow-serving-api): {error}") from None
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = options.model_name
    request.model_spec.signature_name = options.signature
    if options.model_version:
        request.model_spec.version.value = options.model_version
    request.inputs[options.input_key].CopyFrom(tf.make_tensor_proto(frames))
    unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(options.server, options=unlimited) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=options.timeout)
        except grpc.RpcError as error:
            code = error.code()
            name = code.name if code is not None else "UNKNOWN"
            raise ServingError(f"gRPC {name} from {options.server}: "
                               f"{one_line(error.details())}") from None
    outputs = dict(response.outputs)
    if options.output_key not in outputs:
        raise ServingError(f"the response has outputs {sorted(outputs)}, not "
                           f"--output_key={options.output_key}")
    return tf.make_ndarray(outputs[options.output_key])


def predict(frames: np.ndarray, options: ClientOptions) -> np.ndarray:
    """One request over ``options.protocol``."""
    if options.protocol == "grpc":
        return predict_grpc(frames, options)
    return predict_rest(frames, options)


# --- outputs ---------------------------------------------------------------------------------
def _single_name(tensors: dict | None) -> str:
    """The name of a signature's only input (or output); "" when it has several or none."""
    return next(iter(tensors)) if tensors and len(tensors) == 1 else ""


def served_signatures(options: ClientOptions) -> dict[str, tuple[str, str]] | None:
    """The served model's signatures with their input and output names, read from TF
    Serving's REST metadata (``GET .../metadata``); None over gRPC or when not answered."""
    if options.protocol != "rest":
        return None
    url = rest_url(options).removesuffix(":predict") + "/metadata"
    try:
        with urllib.request.urlopen(url, timeout=options.timeout) as response:
            metadata = json.loads(response.read())
        signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
        return {name: (_single_name(definition.get("inputs")),
                       _single_name(definition.get("outputs")))
                for name, definition in signature_defs.items()}
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def choose_signature(array: np.ndarray, served: dict | set | None = None) -> str:
    """``--signature=auto``: floats go to ``predict_mm_per_hour`` when the model has it,
    else floats outside [0, 1] (or NaN) to ``predict_dbz``; the rest to serving_default."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating) or not array.size:
        return "serving_default"
    if served and "predict_mm_per_hour" in served:
        return "predict_mm_per_hour"
    finite = array[np.isfinite(array)]
    if finite.size < array.size or finite.min() < 0 or finite.max() > 1:
        return "predict_dbz"
    return "serving_default"


def check_served(signature: str, served: dict | None, model_name: str) -> None:
    """A one-line error before sending when the metadata shows ``signature`` is not served."""
    if served is not None and signature not in served:
        names = sorted(name for name in served if not name.startswith("__"))
        raise ServingError(f"model {model_name!r} has no signature {signature!r} (it serves "
                           f"{', '.join(names)}): give --signature= one of those, with "
                           f"values in its units")


def frame_image(frame: np.ndarray, values: str, scale: int) -> np.ndarray:
    """One frame ``[H, W, C]`` -> BGR uint8 (``values``: ``dBZ`` or ``mm/h`` colours, else
    gray pixels), upscaled."""
    if values == "mm/h":
        image = plots.colorize_rain_rate(np.asarray(frame, np.float32)[..., 0])
    elif values == "dBZ":
        image = plots.colorize_dbz(np.asarray(frame, np.float32)[..., 0])
    else:
        image = plots.frame_to_bgr(frame, None)
    if scale > 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return image


def draw_sequences(inputs: np.ndarray, predictions: np.ndarray, values: str,
                   gap: int = 4) -> np.ndarray:
    """One row per sequence: the input frames, a wider gap, then the forecast frames."""
    scale = plots.display_scale(inputs.shape[2])
    rows = []
    for sequence_inputs, sequence_predictions in zip(inputs, predictions):
        tiles = [frame_image(frame, values, scale) for frame in sequence_inputs]
        tiles.append(np.full((tiles[0].shape[0], 4 * gap, 3), 255, np.uint8))
        tiles += [frame_image(frame, values, scale) for frame in sequence_predictions]
        spaced = []
        for tile in tiles:
            spaced += [tile, np.full((tile.shape[0], gap, 3), 255, np.uint8)]
        rows += [np.concatenate(spaced, axis=1), np.full((gap, 1, 3), 255, np.uint8)]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255)
            for row in rows]
    image = np.concatenate(rows, axis=0)
    height = max(image.shape[0], 200)
    image = np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)), constant_values=255)
    colorbar = {"dBZ": plots.draw_dbz_colorbar, "mm/h": plots.draw_rain_rate_colorbar}.get(
        values, lambda rows: plots.draw_gray_colorbar(rows, 0.0, 1.0, "pixel"))(height)
    return np.concatenate([image, colorbar], axis=1)


def animation_frames(inputs: np.ndarray, predictions: np.ndarray, values: str
                     ) -> list[np.ndarray]:
    """GIF frames: every sequence side by side, one frame per step (inputs, then forecast)."""
    scale = plots.display_scale(inputs.shape[2])
    sequences = np.concatenate([inputs, predictions], axis=1)  # [B, T_in + T_out, H, W, C]
    frames = []
    for step in range(sequences.shape[1]):
        tiles = [frame_image(sequence[step], values, scale) for sequence in sequences]
        image = np.concatenate(tiles, axis=1)
        header = np.full((20, image.shape[1], 3), 255, np.uint8)
        label = (f"input {step + 1}" if step < inputs.shape[1]
                 else f"forecast +{step - inputs.shape[1] + 1}")
        charts.put_text(header, label, (2, 14), 0.4)
        frames.append(np.concatenate([header, image], axis=0))
    return frames


def write_outputs(output_dir: str, inputs: np.ndarray, predictions: np.ndarray,
                  values: str = "pixels", frames_per_second: float = 2.0) -> list[str]:
    """Writes predictions.npy, predictions.png and predictions.gif; returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    npy_path = os.path.join(output_dir, "predictions.npy")
    with files.atomic_path(npy_path) as temporary:
        np.save(temporary, predictions.astype(np.float32))
    paths.append(npy_path)
    inputs = np.asarray(inputs, np.float32)
    png_path = os.path.join(output_dir, "predictions.png")
    plots.write_image(png_path, draw_sequences(inputs, predictions, values))
    paths.append(png_path)
    gif_path = os.path.join(output_dir, "predictions.gif")
    if plots.write_gif(gif_path, animation_frames(inputs, predictions, values),
                                  frames_per_second):
        paths.append(gif_path)
    return paths


def latency_line(latencies: list[float], batch_size: int) -> str:
    """``latency: 12.3 ms`` or, for several requests, p50/min/max and sequences/s."""
    milliseconds = np.asarray(latencies) * 1000.0
    if len(milliseconds) == 1:
        return f"latency: {milliseconds[0]:.1f} ms ({batch_size / latencies[0]:.2f} sequences/s)"
    return (f"latency over {len(milliseconds)} requests: p50 {np.median(milliseconds):.1f} ms, "
            f"min {milliseconds.min():.1f} ms, max {milliseconds.max():.1f} ms "
            f"({batch_size / np.median(latencies):.2f} sequences/s at p50)")


# --- entry point -----------------------------------------------------------------------------
def define_flags() -> None:
    """Defines the client's flags (only when run as a program, so tests can import it)."""
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (port 8501) or gRPC (8500).")
    flags.DEFINE_string("server", None, "host:port (default localhost:8501 for REST, "
                        "localhost:8500 for gRPC).")
    flags.DEFINE_string("model_name", None, "Served model name.")
    flags.DEFINE_integer("model_version", 0, "Model version (0 = the newest loaded).")
    flags.DEFINE_string("signature", "auto",
                        "serving_default ([0, 1] frames), predict_dbz (dBZ frames), "
                        "predict_mm_per_hour (mm/h, NaN = no data) or auto (floats: the "
                        "model's mm/h signature, else predict_dbz outside [0, 1]).")
    flags.DEFINE_string("input", None, "A .npy of frames or a folder of PNG frames.")
    flags.DEFINE_integer("last_frames", 0, "Send only the last N frames (0 = all).")
    flags.DEFINE_string("output_dir", "forecast", "Where predictions.npy/.png/.gif go.")
    flags.DEFINE_enum("request_format", "inputs", ["inputs", "instances"],
                      "REST body: columnar 'inputs' or row 'instances'.")
    flags.DEFINE_string("input_key", None, "Signature input name (default: by --signature).")
    flags.DEFINE_string("output_key", None, "Signature output name (default: by --signature).")
    flags.DEFINE_integer("repeats", 1, "Send the request this many times (latency statistics).")
    flags.DEFINE_float("timeout", 120.0, "Seconds per request.")
    flags.DEFINE_bool("keep_dtype", False, "Send the .npy values as stored (no scaling/cast).")
    flags.DEFINE_float("frames_per_second", 2.0, "GIF frame rate.")


def options_from_flags(signature: str | None = None,
                       served: dict[str, tuple[str, str]] | None = None) -> ClientOptions:
    """Checks the flags and builds the request options (``signature`` overrides the flag;
    the input and output names come from the ``served`` metadata when it has them)."""
    values = flags.FLAGS
    signature = signature or values.signature
    for name in ("model_name", "input"):
        if not values[name].value:
            raise ServingError(f"--{name} is required")
    if values.repeats < 1:
        raise ServingError(f"--repeats must be >= 1, got {values.repeats}")
    if values.model_version < 0:
        raise ServingError(f"--model_version must be >= 0, got {values.model_version}")
    input_key, output_key = SIGNATURE_KEYS.get(signature, ("frames", "predictions"))
    if served and all(served.get(signature, ("", ""))):
        input_key, output_key = served[signature]
    server = values.server or f"localhost:{DEFAULT_PORTS[values.protocol]}"
    return ClientOptions(server=server, model_name=values.model_name,
                         protocol=values.protocol, model_version=values.model_version,
                         signature=signature, input_key=values.input_key or input_key,
                         output_key=values.output_key or output_key,
                         request_format=values.request_format, timeout=values.timeout)


def run() -> None:
    options_from_flags("serving_default")  # the required flags first, before reading files
    values = flags.FLAGS
    array = read_frames(values.input)
    served = served_signatures(options_from_flags("serving_default"))
    signature = values.signature
    if signature == "auto":
        signature = "serving_default" if os.path.isdir(values.input) else \
            choose_signature(array, served)
    check_served(signature, served, values.model_name)
    options = options_from_flags(signature, served)
    if options.signature in PHYSICAL_SIGNATURES and os.path.isdir(values.input):
        raise ServingError(f"--signature={options.signature} takes physical values: give a "
                           f".npy of dBZ or mm/h, not PNG pixels")
    frames = prepare_frames(array, options.signature, values.last_frames, values.keep_dtype)
    if options.protocol == "grpc":
        import_tensorflow_quietly()
    latencies = []
    for _ in range(values.repeats):
        start = time.perf_counter()
        predictions = predict(frames, options)
        latencies.append(time.perf_counter() - start)
    print(f"{options.protocol} {options.server} model {options.model_name} "
          f"({options.signature}): sent {list(frames.shape)} {frames.dtype}, received "
          f"{list(predictions.shape)} {predictions.dtype}")
    print(latency_line(latencies, frames.shape[0]))
    scale_name = {"predict_dbz": "dBZ", "predict_mm_per_hour": "mm/h"}.get(options.signature,
                                                                           "pixels")
    paths = write_outputs(values.output_dir, frames, predictions, scale_name,
                          frames_per_second=values.frames_per_second)
    print(f"wrote {', '.join(paths)}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    run_or_exit(run, errors=(ServingError,))


if __name__ == "__main__":
    define_flags()
    run_app(main)
