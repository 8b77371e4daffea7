"""What a work directory holds and what it means: the one door to it.

A training work directory ``WORKDIR/`` holds::

    config.json       the resolved Config (parsed and validated by predrnn_tf.config)
    checkpoints/      ckpt-N.* training checkpoints (object layout: predrnn_tf.checkpoints)
    data_card.json    what the model's pixels mean (units, transform, grid, frame size)
    tensorboard/, losses.jsonl, .lock   training's own records

Every reader and writer of those files goes through :class:`WorkDir` (or the functions
here), so the layout and its meaning have one owner::

    work = WorkDir("runs/radar")
    config = work.config                      # ConfigError if not a training work directory
    path = work.checkpoint()                  # the newest intact checkpoint (or a given one)
    step = step_of(path)                      # the training step stored in it
    model, config = work.restore_model()      # rebuilt and loaded
    metadata = work.metadata(dataset)         # the dataset's metadata completed by the card
    mapping = work.value_mapping(dataset)     # pixels -> physical units, or None

This is a core module: it reads no dataset. Callers that may read the data folder pass the
dataset's metadata in (:func:`predrnn_tf.data.sources.dataset_metadata` returns it, with the
built-in synthetic radar's HKO-7 mapping when that folder is gone); the data card fills what
the dataset folder no longer says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from predrnn_tf import checkpoints, files, units
from predrnn_tf.config import CONFIG_FILENAME, Config, load_config, save_config
from predrnn_tf.errors import CheckpointError, DataError

CARD_FILENAME = "data_card.json"
CARD_SCHEMA_VERSION = 1
# The keys that say what a pixel means: a model trained on one card cannot read data of another.
MEANING_KEYS = ("unit", "transform", "pixel_km", "interval_minutes")
# Card keys that complete a dataset's metadata when the dataset folder does not say them.
_CARD_METADATA_KEYS = ("value_mapping", "grid")
_CARD_SIZE_KEYS = ("image_height", "image_width", "channels")

step_of = checkpoints.checkpoint_step  # the training step stored in a checkpoint (one owner)


class WorkDir:
    """A training work directory: its config, checkpoints, data card and model.

    Nothing is read when the object is made; each property reads its file when asked, so a
    work directory being written by training is always seen as it is on disk.

    Attributes:
      path: the folder, as given.
    """

    def __init__(self, path: str):
        self.path = path

    def __repr__(self) -> str:
        return f"WorkDir({self.path!r})"

    # --- config.json ------------------------------------------------------------------------
    @property
    def config_path(self) -> str:
        """``WORKDIR/config.json``."""
        return os.path.join(self.path, CONFIG_FILENAME)

    def has_config(self) -> bool:
        """True if the folder holds a ``config.json`` (a training work directory)."""
        return os.path.isfile(self.config_path)

    @property
    def config(self) -> Config:
        """The resolved configuration; a relative ``data_dir`` is resolved against the folder.

        Raises:
          ConfigError: naming the folder or file when it is not a training work directory.
        """
        return load_config(self.path)

    def save_config(self, config: Config) -> str:
        """Writes ``config.json`` atomically (``data_dir`` inside the folder kept relative)."""
        return save_config(config, self.path)

    # --- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> str:
        """``WORKDIR/checkpoints``."""
        return checkpoints.checkpoint_dir(self.path)

    def resumable_checkpoint(self) -> str | None:
        """The newest intact checkpoint, or None; never raises for damaged ones (resume)."""
        return checkpoints.find_restorable_checkpoint(self.path)[0]

    def latest_checkpoint(self) -> str | None:
        """The newest intact checkpoint, or None if there is none on disk.

        Raises:
          CheckpointError: when every checkpoint on disk is damaged (they are kept).
        """
        return checkpoints.latest_checkpoint(self.path)

    def checkpoint(self, path: str | None = None) -> str:
        """``path`` (checked to exist), or the newest intact checkpoint of the folder.

        Raises:
          CheckpointError: one line naming the folder or ``--checkpoint`` when there is none.
        """
        if path is None:
            path = self.latest_checkpoint()
            if path is None:
                raise CheckpointError(f"--workdir={self.path} has no checkpoint in "
                                      f"{self.checkpoint_dir}: train it first, or pass "
                                      f"another --workdir")
        if not os.path.isfile(path + ".index"):
            raise CheckpointError(f"--checkpoint={path} does not exist (no {path}.index): "
                                  f"pass a prefix like {self.checkpoint_dir}/ckpt-N")
        return path

    def restore_model(self, checkpoint: str | None = None, precision: str | None = None,
                      **config_changes: Any) -> tuple[Any, Config]:
        """Rebuilds the folder's model and loads the weights of a checkpoint.

        Args:
          checkpoint: a checkpoint path prefix; default the newest intact one.
          precision: compute precision override (default: the one trained with).
          **config_changes: other Config fields to change before building (e.g.
            ``remat=False`` for analysis); never a model-defining one.

        Returns:
          ``(model, config)``.
        """
        config = self.config
        if config_changes:
            config = config.replace(**config_changes)
        source = f"--workdir={self.path} (its config.json)"
        return checkpoints.restore_model(config, self.checkpoint(checkpoint), precision,
                                         source), config

    # --- data_card.json ---------------------------------------------------------------------
    @property
    def card_path(self) -> str:
        """``WORKDIR/data_card.json``."""
        return os.path.join(self.path, CARD_FILENAME)

    @property
    def data_card(self) -> dict[str, Any] | None:
        """The data card, or None if training wrote none (an older run).

        Raises:
          DataError: naming the file if it is not a JSON object.
        """
        return read_json_object(self.card_path)

    def write_data_card(self, metadata: Mapping[str, Any], dataset_name: str,
                        sources: Mapping[str, float] | None = None,
                        wet_sampling: Mapping[str, Any] | None = None) -> str:
        """Writes the card of the training data atomically; returns its path.

        ``wet_sampling`` is the training's wet-sequence sampling rule (and the share of the
        train records it keeps), recorded under that key; None = every record alike.
        """
        os.makedirs(self.path, exist_ok=True)
        card = make_card(metadata, dataset_name, sources)
        card["wet_sampling"] = dict(wet_sampling) if wet_sampling else None
        return files.write_json(self.card_path, card, sort_keys=True)

    def check_data_agrees(self, metadata: Mapping[str, Any], dataset_name: str) -> None:
        """Refuses data whose pixels mean something else than the model's (see the card).

        A missing card (older work directory) or a key unknown on either side is not checked.

        Raises:
          DataError: one line naming the key, both values and both places.
        """
        card = self.data_card
        if not card:
            return
        found = make_card(metadata, dataset_name)
        for key in MEANING_KEYS:
            trained, given = card.get(key), found.get(key)
            if key in ("pixel_km", "interval_minutes") and (trained is None or given is None):
                continue
            if _differs(trained, given):
                raise DataError(f"--dataset_name={dataset_name} stores {key}={given} but the "
                                f"model in {self.path} was trained on {key}={trained} "
                                f"({self.card_path}): use data converted the same way")

    # --- what the model's pixels mean -------------------------------------------------------
    def metadata(self, dataset: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The training data's metadata: ``dataset``'s, completed by the card; or None.

        Args:
          dataset: the dataset's metadata when its folder could be read (a data-aware caller
            passes :func:`predrnn_tf.data.sources.dataset_metadata`), else None.

        Returns:
          A new dict whose ``units_from`` says where the units came from (``"dataset"`` or
          ``"workdir"``); None when neither the dataset nor the card has a value mapping.
        """
        combined = dict(dataset or {})
        card = self.data_card or {}
        source = "dataset" if combined.get("value_mapping") else None
        for key in _CARD_METADATA_KEYS:
            if not combined.get(key) and card.get(key):
                combined[key] = card[key]
                source = source or "workdir"
        for key in _CARD_SIZE_KEYS:
            if combined.get(key) is None and card.get(key) is not None:
                combined[key] = card[key]
        combined["units_from"] = source
        return combined if combined.get("value_mapping") else None

    def value_mapping(self, dataset: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Pixels -> physical units of the model's data (see :meth:`metadata`), or None."""
        return units.mapping_of(self.metadata(dataset))


def open_workdir(path: str) -> WorkDir:
    """A :class:`WorkDir` checked to be a training work directory (it has ``config.json``).

    Raises:
      ConfigError: naming ``--workdir`` when the folder is missing or holds no config.
    """
    work = WorkDir(path)
    work.config  # noqa: B018 (reads and validates config.json, raising a one-line error)
    return work


def restore(workdir: str, checkpoint: str | None = None,
            precision: str | None = None) -> tuple[Any, Config]:
    """``(model, config)`` of a work directory (``predrnn_tf.restore``).

    Args:
      workdir: a training work directory (``config.json`` and ``checkpoints/``).
      checkpoint: a checkpoint path prefix; default the newest intact one.
      precision: compute precision override (default: the one trained with).
    """
    return WorkDir(workdir).restore_model(checkpoint, precision)


def make_card(metadata: Mapping[str, Any], dataset_name: str,
              sources: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The data card of the dataset (or mixture) ``dataset_name`` with ``metadata``.

    Args:
      metadata: ``NAME-metadata.json`` contents (or the combined metadata of a mixture).
      dataset_name: the run's ``--dataset_name``.
      sources: the mixture's ``{source: weight}`` (from ``--dataset_name``; the caller
        parses it); default ``{dataset_name: 1.0}``.

    Returns:
      ``{"schema_version", "dataset_name", "sources", "unit", "transform", "pixel_km",
      "interval_minutes", "value_mapping", "grid", "image_height", "image_width",
      "channels", "synthetic"}``: ``unit`` and ``transform`` from the value mapping (both
      None: plain [0, 1] pixels), ``pixel_km`` and ``interval_minutes`` from the grid.
    """
    mapping = units.mapping_of(dict(metadata))
    grid = dict(metadata.get("grid") or {})
    sources = {dataset_name: 1.0} if sources is None else sources
    return {"schema_version": CARD_SCHEMA_VERSION, "dataset_name": dataset_name,
            "sources": {str(name): float(weight) for name, weight in sources.items()},
            "unit": mapping.get("units") if mapping else None,
            "transform": mapping.get("transform") if mapping else None,
            "pixel_km": grid.get("pixel_km"), "interval_minutes": grid.get("interval_minutes"),
            "value_mapping": mapping, "grid": grid or None,
            "image_height": metadata.get("image_height"),
            "image_width": metadata.get("image_width"),
            "channels": metadata.get("channels"), "synthetic": bool(metadata.get("synthetic"))}


def describe(card: Mapping[str, Any]) -> str:
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


def read_json_object(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if there is no such file.

    Raises:
      DataError: naming the file if it is not valid JSON or not an object.
    """
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}): restore it from a backup, or "
                        f"delete it to run without it") from error
    if not isinstance(value, dict):
        raise DataError(f"{path} must hold a JSON object, found {type(value).__name__}: "
                        f"restore it from a backup, or delete it")
    return value


def _differs(first: Any, second: Any) -> bool:
    """True if two card values differ (numbers to a relative 1e-9)."""
    if isinstance(first, (int, float)) and isinstance(second, (int, float)):
        return abs(float(first) - float(second)) > 1e-9 * max(1.0, abs(float(first)))
    return first != second
