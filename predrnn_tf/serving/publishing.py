"""Publishing a version folder ``EXPORT_DIR/MODEL_NAME/VERSION`` for TF Serving.

TF Serving loads every new numeric folder it sees, so a version is written under a hidden
staging name (:func:`predrnn_tf.files.atomic_directory`) and appears only when complete; an
existing version is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from predrnn_tf import files
from predrnn_tf.config import Config
from predrnn_tf.errors import ExportError

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def model_name_problem(model_name: str | None) -> str | None:
    """None if ``model_name`` is servable, else why not: the ONE rule of export and server.

    A served name becomes a folder of ``--export_dir`` and a URL path segment: ASCII letters,
    digits, ``_``, ``.`` and ``-``, starting with a letter or digit, no ``..``, at most 100
    characters.
    """
    if not MODEL_NAME_PATTERN.match(model_name or "") or ".." in model_name:
        return ("must be ASCII letters, digits, '_', '.' or '-', start with a letter or digit, "
                "hold no '..' and have at most 100 characters (it becomes a folder and a URL "
                "path segment)")
    return None


def check_model_name(model_name: str) -> str:
    """Returns ``model_name`` if usable in a TF Serving path and URL, else ExportError."""
    problem = model_name_problem(model_name)
    if problem:
        raise ExportError(f"--model_name={model_name!r} {problem}")
    return model_name


def default_model_name(workdir: str, config: Config) -> str:
    """The work directory's folder name made servable, else the architecture name.

    Characters outside the rule become ``_`` (runs collapsed), leading and trailing
    ``_.-`` are dropped; a name left empty or invalid (e.g. an all non-ASCII folder name)
    gives ``config.model_name``.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(os.path.normpath(workdir)))
    name = re.sub(r"\.{2,}", ".", name).strip("_.-")[:100]
    return name if model_name_problem(name) is None else check_model_name(config.model_name)


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
    """Yields a hidden staging folder beside ``final_path``, renamed to it on success.

    TF Serving ignores folders whose names are not numbers, so the version appears only
    when complete. On any exception the staging folder is removed; a failed rename (e.g.
    the version appeared meanwhile) is an ExportError.
    """
    body_finished = False
    try:
        with files.atomic_directory(final_path, replace=False) as staging:
            yield staging
            body_finished = True
    except OSError as error:
        if not body_finished:
            raise
        raise ExportError(f"could not publish {final_path}: {error}") from error
