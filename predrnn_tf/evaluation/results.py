"""The one writer of ``metrics.json`` and its "finite or none" rule.

JSON has no NaN or infinity: every non-finite float (an undefined score, e.g. CSI with no
event) is written as ``null``. Both evaluation paths (:mod:`.evaluator`, the paper metrics
and dBZ scores; :mod:`.radar_evaluation`, the rain-rate table) write through
:func:`write_metrics_json`, atomically (:mod:`predrnn_tf.files`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from predrnn_tf import files

METRICS_FILENAME = "metrics.json"


def finite_or_none(value: Any) -> Any:
    """Replaces NaN / inf by None, recursively (dicts, lists, tuples, NumPy scalars/arrays)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def write_metrics_json(path: str, content: dict[str, Any]) -> None:
    """Writes ``content`` as strict JSON (non-finite numbers as null), atomically."""
    files.write_json(path, finite_or_none(content), indent=1, allow_nan=False)
