"""Atomic writes: the one way predrnn_tf writes a file or a folder that a user keeps.

Every writer goes through :func:`atomic_write` (or the helpers built on it): the content is
written to a hidden temporary name in the destination folder, flushed and fsynced, then
renamed over the final name, so a crash leaves either the old file or the new one, never a
half-written one. :func:`atomic_directory` does the same for a whole folder (a SavedModel
version, an imported work directory). Imports only predrnn_tf.errors, and no TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from predrnn_tf.errors import WorkdirError


def temporary_name(path: str) -> str:
    """The hidden temporary name used while ``path`` is written: ``DIR/.NAME.tmp-PID``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}")


def _fsync_directory(folder: str) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb") -> Iterator[BinaryIO]:
    """Opens a temporary file that replaces ``path`` when the block ends without an error.

    Args:
      path: the final file name; its folder must exist.
      mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Yields:
      The open temporary file. On an exception it is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    temporary = temporary_name(path)
    encoding = None if "b" in mode else "utf-8"
    try:
        with open(temporary, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def write_bytes(path: str, data: bytes) -> str:
    """Writes ``data`` to ``path`` atomically; returns ``path``.

    The temporary file's size is checked before the rename, so a short write (a full disk
    that a library did not report) raises OSError and publishes nothing.
    """
    with atomic_write(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        size = os.fstat(handle.fileno()).st_size
        if size != len(data):
            raise OSError(errno.ENOSPC, f"wrote {size} of {len(data)} bytes", path)
    return path


def write_text(path: str, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str, values: Any, **json_kwargs: Any) -> str:
    """Writes ``values`` as indented JSON (trailing newline) to ``path`` atomically."""
    json_kwargs.setdefault("indent", 2)
    return write_text(path, json.dumps(values, **json_kwargs) + "\n")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary file name for writers that need a path (``np.savez``, OpenCV).

    The writer must write exactly to the yielded name (keep its extension: the name ends
    like ``path``). It is fsynced and renamed to ``path`` when the block ends; on an error
    it is removed.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_directory(folder)


@contextlib.contextmanager
def atomic_directory(path: str, replace: bool = False) -> Iterator[str]:
    """Yields a hidden staging folder beside ``path``, renamed to ``path`` on success.

    Args:
      path: the final folder; its parent is created if needed.
      replace: whether an existing ``path`` may be replaced (else FileExistsError).

    Yields:
      The staging folder's path. On an exception it is removed and ``path`` is untouched.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
        if os.path.exists(path):
            if not replace:
                raise FileExistsError(f"{path} already exists")
            old = staging + ".old"
            os.rename(path, old)
            os.rename(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_directory(parent)


def saved_model_versions(folder: str) -> list[int]:
    """The numeric version folders of ``folder`` that hold a saved_model.pb, oldest first
    (none when ``folder`` is not a folder)."""
    if not os.path.isdir(folder):
        return []
    return sorted(int(name) for name in os.listdir(folder) if name.isascii() and name.isdigit()
                  and os.path.isfile(os.path.join(folder, name, "saved_model.pb")))


def wait_for_path(path: str, timeout_seconds: float, what: str) -> None:
    """Waits until ``path`` exists (another worker is writing it); WorkdirError on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise WorkdirError(f"timed out after {timeout_seconds:.0f} s waiting for {what} "
                               f"({path}) from the chief worker")
        time.sleep(0.5)
