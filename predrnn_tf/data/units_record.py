"""What a trained model's pixels mean, recorded in its work directory: ``WORKDIR/data_card.json``.

Training writes the card (atomically, :func:`predrnn_tf.files.write_json`) next to
``config.json`` from the metadata of the data it trained on::

    {"schema_version": 1, "dataset_name": "fmi,knmi", "sources": {"fmi": 1.0, "knmi": 1.0},
     "unit": "mm/h", "transform": "dBR", "pixel_km": 2.0, "interval_minutes": 10,
     "value_mapping": {...}, "grid": {...}, "image_height": 80, "image_width": 80,
     "channels": 1, "synthetic": false}

``unit`` and ``transform`` come from the ``value_mapping`` (``transform`` None: linear,
``physical = scale * pixel + offset``; both None: plain [0, 1] pixels, e.g. Moving MNIST),
``pixel_km`` and ``interval_minutes`` from the metadata's ``grid`` (None when the data has
no grid). Every later tool (evaluate, predict, export) can then report in physical units
even when the dataset folder is gone: :func:`metadata_with_card` fills a dataset's missing
``value_mapping`` and ``grid`` from the card, and :func:`check_agrees` refuses data whose
pixels mean something else than the model's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from predrnn_tf import files, units
from predrnn_tf.data import mixing
from predrnn_tf.errors import DataError

CARD_FILENAME = "data_card.json"
CARD_SCHEMA_VERSION = 1
# The keys that say what a pixel means: a model trained on one card cannot read data of another.
MEANING_KEYS = ("unit", "transform", "pixel_km", "interval_minutes")


def card_path(workdir: str) -> str:
    """``WORKDIR/data_card.json``."""
    return os.path.join(workdir, CARD_FILENAME)


def make_card(metadata: dict[str, Any], dataset_name: str) -> dict[str, Any]:
    """The data card of the dataset (or mixture) ``dataset_name`` with ``metadata``.

    Args:
      metadata: ``NAME-metadata.json`` contents (or :func:`predrnn_tf.data.mixing.
        read_metadata` of a mixture).
      dataset_name: the run's ``--dataset_name``.

    Returns:
      The card (see the module docstring).
    """
    mapping = units.mapping_of(metadata)
    grid = dict(metadata.get("grid") or {})
    # The mixture's weights come from --dataset_name: a converter's metadata may hold a
    # "sources" text describing where the data came from.
    sources = dict(mixing.parse_sources(dataset_name))
    return {"schema_version": CARD_SCHEMA_VERSION, "dataset_name": dataset_name,
            "sources": {str(name): float(weight) for name, weight in sources.items()},
            "unit": mapping.get("units") if mapping else None,
            "transform": mapping.get("transform") if mapping else None,
            "pixel_km": grid.get("pixel_km"), "interval_minutes": grid.get("interval_minutes"),
            "value_mapping": mapping, "grid": grid or None,
            "image_height": metadata.get("image_height"),
            "image_width": metadata.get("image_width"),
            "channels": metadata.get("channels"), "synthetic": bool(metadata.get("synthetic"))}


def write_card(workdir: str, metadata: dict[str, Any], dataset_name: str) -> str:
    """Writes ``WORKDIR/data_card.json`` atomically; returns its path."""
    os.makedirs(workdir, exist_ok=True)
    return files.write_json(card_path(workdir), make_card(metadata, dataset_name),
                            sort_keys=True)


def read_card(workdir: str) -> dict[str, Any] | None:
    """The work directory's data card, or None if training wrote none (an older run).

    Raises:
      DataError: naming the file if it is not a JSON object.
    """
    path = card_path(workdir)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            card = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(card, dict):
        raise DataError(f"{path} must hold a JSON object, found {type(card).__name__}")
    return card


def read_value_mapping(workdir: str) -> dict[str, Any] | None:
    """The ``value_mapping`` the model of ``workdir`` was trained on (None: plain pixels)."""
    card = read_card(workdir)
    return units.mapping_of(card.get("value_mapping")) if card else None


def metadata_with_card(metadata: dict[str, Any] | None, workdir: str) -> dict[str, Any]:
    """Dataset metadata whose missing ``value_mapping`` and ``grid`` come from the card.

    Args:
      metadata: the dataset's metadata, or None when ``--data_dir`` holds none.
      workdir: the model's work directory.

    Returns:
      A new dict; ``units_from`` says where the units came from (``"dataset"``,
      ``"workdir"`` or None when neither records any).
    """
    combined = dict(metadata or {})
    card = read_card(workdir) or {}
    source = "dataset" if combined.get("value_mapping") else None
    for key in ("value_mapping", "grid"):
        if not combined.get(key) and card.get(key):
            combined[key] = card[key]
            source = source or "workdir"
    for key in ("image_height", "image_width", "channels"):
        if combined.get(key) is None and card.get(key) is not None:
            combined[key] = card[key]
    combined["units_from"] = source
    return combined


def check_agrees(card: dict[str, Any] | None, metadata: dict[str, Any], dataset_name: str,
                 workdir: str) -> None:
    """Refuses data whose pixels mean something else than those the model was trained on.

    A missing card (older work directory) or a key unknown on either side is not checked.

    Raises:
      DataError: one line naming the key, both values and both places.
    """
    if not card:
        return
    found = make_card(metadata, dataset_name)
    for key in MEANING_KEYS:
        trained, given = card.get(key), found.get(key)
        if key in ("pixel_km", "interval_minutes") and (trained is None or given is None):
            continue
        if _differs(trained, given):
            raise DataError(f"--dataset_name={dataset_name} stores {key}={given} but the model "
                            f"in {workdir} was trained on {key}={trained} "
                            f"({card_path(workdir)}): use data converted the same way")


def _differs(first: Any, second: Any) -> bool:
    if isinstance(first, (int, float)) and isinstance(second, (int, float)):
        return abs(float(first) - float(second)) > 1e-9 * max(1.0, abs(float(first)))
    return first != second


def describe(card: dict[str, Any]) -> str:
    """One line: ``mm/h (dBR), 2 km/pixel, 10 min/frame`` (or ``[0, 1] pixels``)."""
    if not card.get("unit"):
        text = "[0, 1] pixels (no physical unit)"
    else:
        transform = card.get("transform")
        text = f"{card['unit']}" + (f" ({transform})" if transform else " (linear)")
    if card.get("pixel_km") is not None:
        text += f", {card['pixel_km']:g} km/pixel"
    if card.get("interval_minutes") is not None:
        text += f", {card['interval_minutes']:g} min/frame"
    return text
