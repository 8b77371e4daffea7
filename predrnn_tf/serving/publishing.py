"""Publishing a version folder ``EXPORT_DIR/MODEL_NAME/VERSION`` for TF Serving, and
reading one back.

TF Serving loads every new numeric folder it sees, so a version is written under a hidden
staging name (:func:`predrnn_tf.files.atomic_directory`) and appears only when complete; an
existing version is never overwritten; staging folders of killed exports are removed.
The ONE model-name rule of export and server is :func:`model_name_problem`. Readers
(the local server, ``predrnn-predict --saved_model``) load the newest intact version
(:func:`load_newest_intact`), passing over a damaged newer one with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from typing import Any

from predrnn_tf import checkpoints, files
from predrnn_tf.config import Config
from predrnn_tf.errors import ExportError, PredRNNError

_log = logging.getLogger(__name__)
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


# --- reading a model folder as TF Serving would: the newest intact version -----------------
VERSION_NAME = re.compile(r"^[0-9]+$")  # ASCII digits only ("١٢" is a str.isdigit() too)
ABANDONED_NAME = re.compile(r"^\..+\.(?:tmp|staging)-(?P<pid>[0-9]+)(?:\.old)?$")


def version_problem(path: str) -> str | None:
    """None if the version folder at ``path`` looks servable, else which file is damaged.

    ``saved_model.pb`` must exist and ``variables/`` must be a complete checkpoint whose
    every tensor reads back (CRC checked): a truncated or bit-flipped variables file is found
    here, before a load could half-serve it.
    """
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved_model.pb is missing"
    variables = os.path.join(path, "variables", "variables")
    if not os.path.isfile(variables + ".index"):
        return "variables/variables.index is missing"
    problem = checkpoints.checkpoint_problem(variables)
    return f"variables/: {problem}" if problem else None


def _version_folders(model_dir: str) -> list[tuple[int, str]]:
    """``[(version, path)]`` newest first; folders of non-ASCII digits are warned, skipped."""
    found = []
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if not os.path.isdir(path):
            continue
        if VERSION_NAME.match(name):
            found.append((int(name), path))
        elif name.isdigit():
            _log.warning("%s: ignored: a version folder is named by ASCII digits 0-9", path)
    return sorted(found, reverse=True)


def load_newest_intact(model_dir: str, load: Callable[[str], Any]
                       ) -> tuple[int, str, Any]:
    """``(version, path, load(path))`` of the newest version that loads, as TF Serving does.

    A damaged newer version is passed over with one warning naming it and its file.

    Raises:
      ExportError: one line naming each version's problem when none loads.
    """
    problems = []
    for version, path in _version_folders(model_dir):
        problem = version_problem(path)
        if problem is None:
            try:
                return _served(version, path, load(path), problems)
            except PredRNNError as error:  # the loader's own check (e.g. its metadata)
                problem = checkpoints.error_line(error, limit=200)
            except Exception as error:  # noqa: BLE001 (any failure to load: a broken version)
                problem = f"saved_model.pb: {checkpoints.error_line(error, limit=200)}"
        problems.append((path, problem))
    listed = "; ".join(f"{path}: {problem}" for path, problem in problems[:3])
    raise ExportError(f"{model_dir} holds no intact version ({listed or 'no version folder'})"
                      f": export again with predrnn-export")


def _served(version: int, path: str, loaded: Any, problems: list[tuple[str, str]]
            ) -> tuple[int, str, Any]:
    for broken, problem in problems:
        _log.warning("Version %s is damaged (%s): serving the newest intact version, %s.",
                     broken, problem, path)
    return version, path, loaded


def _process_alive(pid: int) -> bool:
    """True if process ``pid`` exists (on this machine); a foreign user's counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_abandoned_staging(model_dir: str) -> list[str]:
    """Removes ``.N.tmp-PID`` / ``.NAME.staging-PID`` folders whose process is dead.

    A SIGKILLed export leaves its hidden staging folder; TF Serving never reads it, but it
    holds a whole model's bytes. A folder of a live process (an export running now) is kept.
    """
    removed = []
    if not os.path.isdir(model_dir):
        return removed
    for name in os.listdir(model_dir):
        match = ABANDONED_NAME.match(name)
        if match and not _process_alive(int(match.group("pid"))):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
            removed.append(name)
    if removed:
        _log.warning("Removed %d staging folder(s) of killed exports in %s: %s", len(removed),
                     model_dir, ", ".join(sorted(removed)))
    return removed
