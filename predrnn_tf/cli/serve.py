"""Serve an export locally with TF Serving's REST API (no Docker, no TF Serving).

  predrnn-serve --export_dir=exports --model_name=quickstart [--port=8501]
  python tools/serving_client.py --server=localhost:8501 --model_name=quickstart \
      --input=past.npy --output_dir=forecast

Serves the newest version of EXPORT_DIR/MODEL_NAME at
http://HOST:PORT/v1/models/MODEL_NAME[/versions/N]:predict (and the model status at
GET /v1/models/MODEL_NAME) until Ctrl-C. A damaged newer version is passed over for the
newest intact one (with a warning), as TF Serving does; staging folders of killed exports
are removed. Requests are bounded: --max_request_bytes, --max_frame_size, --concurrency,
--read_timeout_seconds. ``--port=0`` picks a free port; the first line
printed names the address. For production use TF Serving (see README, "Serving").
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys

from absl import app, flags, logging

from predrnn_tf.cli.flag_parsing import import_tensorflow_quietly, run_app, run_or_exit

_EXPORT_DIR = flags.DEFINE_string("export_dir", None,
                                  "Root of the exports (holds MODEL_NAME/VERSION/).")
_MODEL_NAME = flags.DEFINE_string("model_name", "predrnn", "The model folder and served name.")
_HOST = flags.DEFINE_string("host", "127.0.0.1",
                            "Address to bind (127.0.0.1: this machine only; 0.0.0.0: all).")
_PORT = flags.DEFINE_integer("port", 8501, "TCP port (TF Serving's REST port is 8501; 0: any "
                             "free port).")
_MAX_REQUEST_BYTES = flags.DEFINE_integer(
    "max_request_bytes", 64 * 1024 * 1024, "Largest request body accepted (413 above).")
_MAX_FRAME_SIZE = flags.DEFINE_integer(
    "max_frame_size", 1024, "Largest frame side in pixels a request may send (400 above, "
    "before any compute); the default fits a whole 1024x1024 composite.")
_READ_TIMEOUT = flags.DEFINE_float(
    "read_timeout_seconds", 30.0, "A request's headers and body must arrive within this "
    "many seconds (408 otherwise), so a stalled client never holds a thread.")
_CONCURRENCY = flags.DEFINE_integer(
    "concurrency", 2, "Requests read, parsed and run at once; others wait. Memory is about "
    "this many times (--max_request_bytes + the parsed arrays).")


MAX_REQUEST_BYTES = 2**31 - 1  # what one HTTP request body may hold (2 GiB)
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")


def check_address() -> None:
    """--host is an IP address or a host name, --port a TCP port."""
    from predrnn_tf.errors import ConfigError

    host = _HOST.value
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host or ""):
            raise ConfigError(f"--host={host!r} must be an IP address (127.0.0.1, 0.0.0.0, ::1) "
                              f"or a host name") from None
    if not 0 <= _PORT.value <= 65535:
        raise ConfigError(f"--port must be in 0..65535, received {_PORT.value}")
    for flag, low, high in ((_MAX_FRAME_SIZE, 1, 65536), (_CONCURRENCY, 1, 64),
                            (_READ_TIMEOUT, 0.1, 3600.0)):
        if not low <= flag.value <= high:
            raise ConfigError(f"--{flag.name} must be in {low:g}..{high:g}, received "
                              f"{flag.value}")
    if not 1 <= _MAX_REQUEST_BYTES.value <= MAX_REQUEST_BYTES:
        raise ConfigError(f"--max_request_bytes must be in 1..{MAX_REQUEST_BYTES}, received "
                          f"{_MAX_REQUEST_BYTES.value}")


def check_export() -> None:
    """--export_dir holds --model_name with at least one version (saved_model.pb)."""
    from predrnn_tf import files
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.serving import publishing

    export_dir, name = _EXPORT_DIR.value, _MODEL_NAME.value
    if not export_dir:
        raise ConfigError("--export_dir is required")
    if not os.path.isdir(export_dir):
        raise ConfigError(f"--export_dir={export_dir} is not a folder")
    problem = publishing.model_name_problem(name)
    if problem:
        raise ConfigError(f"--model_name={name!r} {problem}")
    if not files.saved_model_versions(os.path.join(export_dir, name)):
        present = sorted(os.listdir(export_dir))
        raise ConfigError(f"--export_dir={export_dir} has no model --model_name={name!r} "
                          f"with a version folder holding saved_model.pb (folders: "
                          f"{', '.join(present) or 'none'}; export with predrnn-export)")


def run() -> None:
    """Loads the newest version and serves until interrupted."""
    from predrnn_tf.errors import ConfigError
    from predrnn_tf.serving import local_server

    check_address()
    check_export()
    model = local_server.load_newest_version(_EXPORT_DIR.value, _MODEL_NAME.value)
    try:
        server = local_server.make_server(
            model, _HOST.value, _PORT.value, _MAX_REQUEST_BYTES.value,
            max_frame_size=_MAX_FRAME_SIZE.value, read_timeout_seconds=_READ_TIMEOUT.value,
            concurrency=_CONCURRENCY.value)
    except OSError as error:
        raise ConfigError(f"cannot listen on {_HOST.value}:{_PORT.value}: "
                          f"{error.strerror or error}") from None
    host, port = server.server_address[:2]
    print(f"serving {model.name} version {model.version} from {model.path} at "
          f"http://{host}:{port}/v1/models/{model.name}:predict", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    run_or_exit(run)


def console_main() -> None:
    """The ``predrnn-serve`` console command."""
    import_tensorflow_quietly()
    run_app(main)


if __name__ == "__main__":
    console_main()
