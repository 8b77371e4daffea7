"""Surviving interruptions: the work-directory lock, graceful shutdown and safe file writes.

Everything here is plain Python (no TensorFlow import), so entry points and tools can use it
cheaply; files that are kept are written through :mod:`predrnn_tf.files`:

- :class:`WorkdirLock`: an exclusive ``fcntl`` lock on ``WORKDIR/.lock`` so that two runs
  cannot write the same work directory; the error names the other process. The kernel drops
  the lock when its holder dies, even by ``kill -9``, so a stale lock never blocks a resume.
- :class:`ShutdownRequest`: SIGTERM / SIGINT handlers that only set a flag; the training loop
  finishes its current step, writes a checkpoint and returns.
- :func:`check_workdir_writable`: refuses an unwritable work directory or a disk without room
  for the next checkpoints, before anything is written.
- :func:`remove_stray_files`: deletes the temporary files an interrupted write leaves behind
  (never a numbered checkpoint).
- :class:`LossLog`: ``WORKDIR/losses.jsonl``, one JSON line per logged step, cut back to the
  restored step on resume, so it always holds the trajectory of the run that is kept.
- :func:`cluster_task`: the ``TF_CONFIG`` task of this process (chief or not).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
from typing import Any

from predrnn_tf import files
from predrnn_tf.errors import ConfigError, WorkdirError

LOCK_FILENAME = ".lock"
LOSS_LOG_FILENAME = "losses.jsonl"
PROBE_FILENAME = ".write-probe"


# --- work-directory lock ------------------------------------------------------------------

def _describe_holder(path: str) -> str:
    try:
        with open(path) as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
        holder = json.loads(lines[-1])
    except (OSError, ValueError, IndexError):
        return "another process"
    return (f"process {holder.get('pid')} on host {holder.get('host')} "
            f"(started {holder.get('started')}: {holder.get('command')})")


class WorkdirLock:
    """An exclusive lock on a work directory, released when the holder exits or dies.

    Usage::

        with WorkdirLock(workdir):
            ...  # only this process writes into workdir

    ``flock`` locks are per host on most network file systems; on a cluster run only the
    chief takes the lock (other workers never write into the work directory).
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILENAME)
        self._handle = None

    def acquire(self) -> WorkdirLock:
        """Takes the lock; WorkdirError naming the holder if another process has it."""
        try:
            handle = open(self.path, "a+")
        except OSError as error:
            raise WorkdirError(f"--workdir={self.workdir} is not writable: cannot create "
                               f"{self.path}: {error.strerror}") from error
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise WorkdirError(
                    f"--workdir={self.workdir} is in use by {_describe_holder(self.path)}; "
                    f"wait for it to finish or use another --workdir") from error
            raise WorkdirError(f"--workdir={self.workdir}: cannot lock {self.path}: "
                               f"{error.strerror}") from error
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)[:300]}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Drops the lock. The file stays: removing it would race with a waiting process."""
        if self._handle is None:
            return
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.release()


# --- graceful shutdown ----------------------------------------------------------------------

class ShutdownRequest:
    """SIGTERM / SIGINT set a flag instead of killing the process.

    The training loop polls :attr:`requested` after every step. A second signal while the
    first is being handled gets the default behaviour (immediate termination).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """True once a SIGTERM or SIGINT arrived."""
        return self.signal_name is not None

    def _handle(self, signum, frame) -> None:
        del frame
        self.signal_name = signal.Signals(signum).name
        for number in self.SIGNALS:  # a second signal terminates at once
            signal.signal(number, signal.SIG_DFL)

    def install(self) -> ShutdownRequest:
        """Installs the handlers (only possible in the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def reinstall(self) -> None:
        """Installs the handlers again, over ones set since (TensorFlow's multi-worker runtime
        installs a C++ SIGTERM handler when it starts its coordination service)."""
        if not self._previous or self.requested:
            return
        for number in self.SIGNALS:
            signal.signal(number, self._handle)

    def uninstall(self) -> None:
        """Restores the handlers that were there before :meth:`install`."""
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    def __enter__(self) -> ShutdownRequest:
        return self.install()

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.uninstall()


# --- disk checks and clean-up -----------------------------------------------------------------

def check_workdir_writable(workdir: str, required_bytes: int = 0) -> None:
    """Creates ``workdir`` if needed and checks it is writable with room to spare.

    Args:
      workdir: the work directory.
      required_bytes: free bytes needed (e.g. two checkpoints); 0 skips the space check.

    Raises:
      WorkdirError: naming ``--workdir`` and the reason; nothing is written in that case.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f"{PROBE_FILENAME}-{os.getpid()}")
        with open(probe, "w") as handle:
            handle.write("probe\n")
        os.remove(probe)
    except OSError as error:
        reason = error.strerror or str(error)
        raise WorkdirError(f"--workdir={workdir} is not writable: {reason}") from error
    if required_bytes > 0:
        free = shutil.disk_usage(workdir).free
        if free < required_bytes:
            raise WorkdirError(
                f"--workdir={workdir} has {free / 1e6:.1f} MB free but the checkpoints need "
                f"about {required_bytes / 1e6:.1f} MB: free some space or use another --workdir")


def remove_stray_files(workdir: str, checkpoint_subdir: str) -> list[str]:
    """Deletes leftovers of interrupted writes; returns the removed paths.

    Removes TensorFlow's ``*_temp`` checkpoint folders and ``checkpoint.tmp*`` state files,
    and our own temporary files (``*.tmp`` and :func:`predrnn_tf.files.temporary_name`'s).
    Numbered checkpoint files (``ckpt-N.index``, ``ckpt-N.data-*``) are never deleted, even
    when the state file does not list them: a missing or stale state file must not cost a
    run its checkpoints (:func:`predrnn_tf.checkpoints.find_restorable_checkpoint` finds the
    newest intact one from the files). Call it only while holding the work-directory lock.
    """
    directory = os.path.join(workdir, checkpoint_subdir)
    removed = []
    patterns = [os.path.join(directory, "*_temp"), os.path.join(directory, "checkpoint.tmp*"),
                os.path.join(workdir, "*.tmp"), os.path.join(workdir, ".*.tmp-*"),
                os.path.join(workdir, ".tmp-*")]  # the last two: predrnn_tf.files' names
    candidates = [path for pattern in patterns for path in glob.glob(pattern)]
    for path in sorted(set(candidates)):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)
        removed.append(path)
    return removed


# --- the loss trajectory ----------------------------------------------------------------------

def read_loss_log(path: str) -> dict[int, dict[str, float]]:
    """Reads a loss log into ``{step: values}``; a torn last line (from a kill) is ignored."""
    entries: dict[int, dict[str, float]] = {}
    if not os.path.exists(path):
        return entries
    with open(path) as handle:
        for line in handle:
            try:
                values = json.loads(line)
            except ValueError:
                continue
            if isinstance(values, dict) and "step" in values:
                entries[int(values["step"])] = values
    return entries


class LossLog:
    """``WORKDIR/losses.jsonl``: ``{"step": n, "loss": ..., ...}`` per logged step.

    Lines are appended and flushed one at a time, so a kill can at worst tear the last line
    (which readers skip). :meth:`truncate_after` rewrites the file atomically
    (:func:`predrnn_tf.files.atomic_write`).
    """

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LOSS_LOG_FILENAME)

    def truncate_after(self, step: int) -> None:
        """Keeps only the entries up to ``step`` (those of the checkpoint being resumed)."""
        entries = read_loss_log(self.path)
        if not entries and not os.path.exists(self.path):
            return
        with files.atomic_write(self.path, "w") as handle:
            for number in sorted(entries):
                if number <= step:
                    handle.write(json.dumps(entries[number]) + "\n")

    def append(self, step: int, values: dict[str, float]) -> None:
        """Appends one entry (floats keep their full precision: ``repr`` round-trips)."""
        entry = {"step": int(step)}
        entry.update({key: (value if math.isfinite(value) else str(value))
                      for key, value in values.items()})
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()


# --- cluster ------------------------------------------------------------------------------

def cluster_task(tf_config: str | None = None) -> tuple[str, int, bool]:
    """``(task_type, task_id, is_chief)`` of this process from ``TF_CONFIG``.

    Without ``TF_CONFIG`` (a single process) this is ``("worker", 0, True)``. The chief is the
    ``chief`` task, or worker 0 when the cluster has no ``chief`` job.
    """
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw:
        return "worker", 0, True
    try:
        values = json.loads(raw)
        cluster = values.get("cluster", {})
        task = values.get("task", {})
        task_type, task_id = str(task.get("type", "worker")), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON with cluster and task: {error}") from error
    if "chief" in cluster:
        return task_type, task_id, task_type == "chief"
    return task_type, task_id, task_type == "worker" and task_id == 0
