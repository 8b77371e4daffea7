"""Start a multi-worker training run on this machine (for trying it out, and for tests).

    python tools/launch_local.py --num_workers=2 -- --flagfile=configs/quickstart.flags

Each worker is ``python -m predrnn_tf.train <train flags> --distribution_strategy=
multi_worker_mirrored`` with a ``TF_CONFIG`` naming localhost ports. Worker 0 is the chief: it
alone writes checkpoints, TensorBoard events and ``config.json`` into ``--workdir``. Output
lines are prefixed with ``[worker i]``. SIGTERM / SIGINT are forwarded to every worker (they
agree on a step, checkpoint and exit 0). If a worker fails, the others are stopped. The exit
status is the first non-zero worker status, else 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags

flags.DEFINE_integer("num_workers", 2, "Worker processes to start.")
flags.DEFINE_float("timeout", 0.0, "Stop all workers after this many seconds (0 = no limit).")
flags.DEFINE_string("module", "predrnn_tf.train", "Python module each worker runs.")

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on localhost right now."""
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("localhost", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of localhost workers."""
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def _forward_output(index: int, stream, sink) -> None:
    for line in iter(stream.readline, ""):
        sink.write(f"[worker {index}] {line}")
        sink.flush()
    stream.close()


def start_workers(num_workers: int, train_args: list[str], module: str
                  ) -> list[subprocess.Popen]:
    """Starts the workers with their TF_CONFIG; their output goes to ours, prefixed."""
    ports = free_ports(num_workers)
    workers = []
    for index in range(num_workers):
        env = dict(os.environ, TF_CONFIG=tf_config(ports, index))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", module, *train_args,
                   "--distribution_strategy=multi_worker_mirrored"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, bufsize=1)
        for stream, sink in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
            threading.Thread(target=_forward_output, args=(index, stream, sink),
                             daemon=True).start()
        workers.append(process)
    return workers


def _signal_all(workers: list[subprocess.Popen], signum: int) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signum)


def wait_for_workers(workers: list[subprocess.Popen], timeout: float) -> int:
    """Waits for every worker; stops the rest when one fails or on timeout."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    failed_at = None
    while any(process.poll() is None for process in workers):
        now = time.monotonic()
        if deadline is not None and now > deadline:
            print(f"error: workers still running after --timeout={timeout:.0f} s: killed",
                  file=sys.stderr)
            _signal_all(workers, signal.SIGKILL)
            return 124
        codes = [process.poll() for process in workers]
        if failed_at is None and any(code not in (None, 0) for code in codes):
            failed_at = now
            _signal_all(workers, signal.SIGTERM)
        elif failed_at is not None and now - failed_at > 30:
            _signal_all(workers, signal.SIGKILL)
        time.sleep(0.2)
    time.sleep(0.2)  # let the output threads drain
    codes = [process.returncode for process in workers]
    return next((code for code in codes if code != 0), 0)


def main(argv):
    train_args = argv[1:]
    if FLAGS.num_workers < 1:
        print(f"error: --num_workers must be positive, got {FLAGS.num_workers}", file=sys.stderr)
        return 2
    workers = start_workers(FLAGS.num_workers, train_args, FLAGS.module)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: _signal_all(workers, number))
    return wait_for_workers(workers, FLAGS.timeout)


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
