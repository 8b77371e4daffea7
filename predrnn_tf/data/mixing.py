"""Several sources in one training stream: ``--dataset_name=fmi,knmi,bom_c10``.

Each comma-separated entry is ``NAME`` or ``NAME:WEIGHT``. Training draws each sequence
from source i with probability ``weight_i / sum(weights)`` (``tf.data`` ``sample_from_
datasets``, every source repeated and shuffled on its own); the default weight 1 gives every
source the same share whatever its size, so a large archive does not drown a small one. The
test split of a mixture is the test splits of its sources one after the other.

All sources must agree on what a pixel means: the same ``value_mapping`` (unit, transform,
no-data pixel), grid spacing and interval, channels and frame size; a mixture that does not
is refused with a one-line error naming the two sources.
"""

from __future__ import annotations

from typing import Any

from predrnn_tf.data import schema
from predrnn_tf.errors import DataError

AGREEING_KEYS = ("value_mapping", "channels", "image_height", "image_width")
AGREEING_GRID_KEYS = ("pixel_km", "interval_minutes")  # the source's own interval may differ


def parse_sources(dataset_name: str) -> list[tuple[str, float]]:
    """``"a,b:2"`` -> ``[("a", 1.0), ("b", 2.0)]``; ValueError names a bad entry."""
    sources = []
    for entry in dataset_name.split(","):
        name, _, weight_text = entry.strip().partition(":")
        if not name:
            raise ValueError(f"--dataset_name={dataset_name!r}: empty source name")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"--dataset_name={dataset_name!r}: weight of {name!r} must be a "
                             f"number, got {weight_text!r}") from None
        if not weight > 0:
            raise ValueError(f"--dataset_name={dataset_name!r}: weight of {name!r} must be "
                             f"positive, got {weight_text}")
        sources.append((name, weight))
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"--dataset_name={dataset_name!r} names a source twice")
    return sources


def is_mixture(dataset_name: str) -> bool:
    """True if ``dataset_name`` lists several sources or a weight."""
    return "," in dataset_name or ":" in dataset_name


def read_metadata(data_dir: str, dataset_name: str) -> dict[str, Any]:
    """Metadata of a source, or of a mixture (checked to agree; counts summed)."""
    if not is_mixture(dataset_name):
        return schema.read_metadata(data_dir, dataset_name)
    sources = parse_sources(dataset_name)
    everything = [schema.read_metadata(data_dir, name) for name, _ in sources]
    first = everything[0]
    for (name, _), metadata in zip(sources[1:], everything[1:], strict=True):
        grid, first_grid = metadata.get("grid") or {}, first.get("grid") or {}
        for key in AGREEING_GRID_KEYS:
            if grid.get(key) != first_grid.get(key):
                raise DataError(f"mixed units or grids in one dataset: {name!r} has grid "
                                f"{key}={grid.get(key)} but {sources[0][0]!r} has "
                                f"{first_grid.get(key)}")
        for key in AGREEING_KEYS:
            if metadata.get(key) != first.get(key):
                raise DataError(f"mixed units or grids in one dataset: {name!r} has {key}="
                                f"{metadata.get(key)} but {sources[0][0]!r} has "
                                f"{first.get(key)}")
    combined = dict(first)
    combined["name"] = dataset_name
    combined["sources"] = {name: weight for name, weight in sources}
    for key in ("num_train", "num_test"):
        combined[key] = sum(int(metadata.get(key) or 0) for metadata in everything)
    lengths = [m.get("sequence_length") for m in everything]
    combined["sequence_length"] = min(length for length in lengths if length is not None)
    return combined


def mix(datasets: list, weights: list[float], seed: int, deterministic: bool):
    """One stream drawing from ``datasets`` with probabilities proportional to ``weights``."""
    import tensorflow as tf

    total = float(sum(weights))
    return tf.data.Dataset.sample_from_datasets(
        datasets, weights=[weight / total for weight in weights], seed=seed,
        stop_on_empty_dataset=False, rerandomize_each_iteration=not deterministic)
