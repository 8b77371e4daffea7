"""Publishing ``predrnn-predict``'s output folder as a whole.

Every output is written into a hidden staging folder beside ``--output_dir``; the staging
folder replaces ``--output_dir`` in one rename once everything is written and checked
(:func:`predrnn_tf.files.atomic_directory`). So a failure (a full disk, a read-only
folder) leaves the previous outputs untouched and nothing half-written, and a new run
replaces an earlier one completely (no stale frames of a longer earlier forecast).

``--output_dir`` may be new, empty, or a folder an earlier ``predrnn-predict`` wrote (its
``predict_outputs.json`` lists every file it wrote). A folder holding anything else is
refused with one line: predict never deletes files it did not write.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import cv2
import numpy as np

from predrnn_tf import files
from predrnn_tf.errors import ConfigError

MANIFEST_FILENAME = "predict_outputs.json"


def folder_files(folder: str) -> set[str]:
    """Every file under ``folder``, as paths relative to it (``/`` separated)."""
    found = set()
    for root, _, names in os.walk(folder):
        for name in names:
            found.add(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return found


def check_output_dir(output_dir: str) -> None:
    """ConfigError unless ``output_dir`` is new, empty, or only holds an earlier forecast."""
    import json

    if os.path.isfile(output_dir):
        raise ConfigError(f"--output_dir={output_dir} is a file")
    if not os.path.isdir(output_dir):
        return
    present = folder_files(output_dir)
    if not present:
        return
    manifest = os.path.join(output_dir, MANIFEST_FILENAME)
    try:
        with open(manifest) as stream:
            written = set(json.load(stream)["files"]) | {MANIFEST_FILENAME}
    except (OSError, ValueError, KeyError, TypeError):
        written = set()
    foreign = sorted(present - written)
    if foreign:
        raise ConfigError(f"--output_dir={output_dir} holds files predrnn-predict did not "
                          f"write (e.g. {foreign[0]!r}): give a new or empty folder (a "
                          f"folder of an earlier forecast is replaced as a whole)")


@contextlib.contextmanager
def staged_output_dir(output_dir: str) -> Iterator[str]:
    """Yields the staging folder; publishes it as ``output_dir`` with its manifest.

    Raises:
      ConfigError: the folder holds foreign files, or writing failed (e.g. a full disk);
        ``output_dir`` is then as it was.
    """
    check_output_dir(output_dir)
    try:
        with files.atomic_directory(output_dir, replace=True) as staging:
            yield staging
            files.write_json(os.path.join(staging, MANIFEST_FILENAME),
                             {"files": sorted(folder_files(staging))})
    except OSError as error:
        raise ConfigError(f"cannot write the forecast into --output_dir={output_dir}: "
                          f"{error.strerror or error} ({error.filename or output_dir}); "
                          f"nothing was written") from None


def write_png(path: str, image: np.ndarray) -> str:
    """Encodes ``image`` (gray or BGR uint8) as PNG in memory, then writes it checked.

    ``cv2.imwrite`` reports success on a full disk; encoding first and writing the bytes
    through :func:`predrnn_tf.files.write_bytes` (which checks the size) turns any short write
    into an OSError.
    """
    encoded, buffer = cv2.imencode(".png", np.ascontiguousarray(image))
    if not encoded:
        raise OSError(f"could not encode the image {path} as PNG")
    return files.write_bytes(path, buffer.tobytes())
