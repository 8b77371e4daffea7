"""The model and the baselines on radar terms, in one pass over the test split.

Every forecaster (the model, ``persistence``, ``extrapolation``, ``sprog``) forecasts the
same input batches; :class:`predrnn_tf.evaluation.radar_scores.RadarScores` scores each in
mm/h over the valid pixels of the truth. Written into ``output_dir``:

- ``metrics.json``: ``{"forecasters": {name: {"metrics": {metric: mean over lead times},
  "per_frame": {metric: [one value per lead time]}}}, "lead_minutes": [...], "info": ...}``,
  the metric names of :mod:`radar_scores` (``mse_mmh``, ``csi_1mmh``, ``fss_1mmh_16km``, ...).
- ``metrics_table.md``: the headline table (per lead time and averaged).
- ``metrics_per_lead.png``: CSI at 1 mm/h and MSE per lead time, every forecaster.
- ``predictions.npz`` (``save_predictions``): inputs, truth, every forecaster's predictions
  ([0, 1] model pixels) and the transform to mm/h (the value_mapping as JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from predrnn_tf import files
from predrnn_tf.evaluation import radar_scores

TABLE_METRICS = ("mse_mmh", "mae_mmh", "csi_1mmh", "csi_5mmh", "ets_1mmh", "fss_1mmh_16km")
METRICS_FILENAME = "metrics.json"
TABLE_FILENAME = "metrics_table.md"
PLOT_FILENAME = "metrics_per_lead.png"


def every_kth(dataset: Any, every: int) -> Any:
    """Batches of every ``every``-th sequence of ``dataset`` (an even spread over the events)."""
    if every <= 1:
        return dataset
    return dataset.unbatch().shard(every, 0).batch(8)


def run_forecasters(forecasters: dict[str, Callable[[Any], Any]], dataset: Any,
                    metadata: dict[str, Any], input_length: int, output_length: int,
                    keep_predictions: bool = False, **score_options
                    ) -> tuple[dict[str, radar_scores.RadarScores], dict[str, np.ndarray]]:
    """Scores every forecaster on the batches ``[B, T, H, W, C]`` of ``dataset``."""
    scores = {name: radar_scores.RadarScores(output_length, metadata, **score_options)
              for name in forecasters}
    kept: dict[str, list[np.ndarray]] = {"inputs": [], "truth": []}
    for batch in dataset:
        frames = np.asarray(batch, np.float32)
        if frames.shape[1] < input_length + output_length:
            raise ValueError(f"test sequences have {frames.shape[1]} frames, "
                             f"{input_length + output_length} needed")
        inputs = frames[:, :input_length]
        truth = frames[:, input_length:input_length + output_length]
        if keep_predictions:
            kept["inputs"].append(inputs)
            kept["truth"].append(truth)
        for name, forecaster in forecasters.items():
            prediction = np.asarray(forecaster(inputs), np.float32)[:, :output_length]
            scores[name].update(truth, prediction)
            if keep_predictions:
                kept.setdefault(name, []).append(prediction)
    if not next(iter(scores.values())).num_sequences:
        raise ValueError("the test split yielded no sequence to evaluate")
    return scores, {key: np.concatenate(values) for key, values in kept.items() if values}


def format_table(results: dict[str, dict[str, Any]], lead_minutes: list[float],
                 metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """A markdown table: one row per forecaster and metric, one column per lead time."""
    header = ["forecaster", "metric", "mean"] + [f"{minutes:g} min" for minutes in lead_minutes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in metrics:
        for name, result in results.items():
            if metric not in result["metrics"]:
                continue
            values = [result["metrics"][metric]] + list(result["per_frame"][metric])
            lines.append(f"| {name} | {metric} | " + " | ".join(f"{value:.3f}" for value in values)
                         + " |")
    return "\n".join(lines) + "\n"


def plot_per_lead(path: str, results: dict[str, dict[str, Any]], lead_minutes: list[float]) -> None:
    """CSI at 1 mm/h and MSE per lead time, every forecaster (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in ((axes[0], "csi_1mmh", "CSI at 1 mm/h"),
                                (axes[1], "mse_mmh", "MSE (mm/h)$^2$")):
        for name, result in results.items():
            axis.plot(lead_minutes, result["per_frame"][metric], marker="o", label=name)
        axis.set_xlabel("lead time (min)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    with files.atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    pyplot.close(figure)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def evaluate_forecasters(forecasters: dict[str, Callable[[Any], Any]], dataset: Any,
                         metadata: dict[str, Any], output_dir: str, input_length: int,
                         output_length: int, save_predictions: bool = False,
                         info: dict[str, Any] | None = None, **score_options) -> dict[str, Any]:
    """Runs, scores and writes the result files; returns the ``metrics.json`` content."""
    scores, arrays = run_forecasters(forecasters, dataset, metadata, input_length,
                                     output_length, keep_predictions=save_predictions,
                                     **score_options)
    interval = float((metadata.get("grid") or {}).get("interval_minutes", 1.0))
    lead_minutes = [interval * (lead + 1) for lead in range(output_length)]
    results = {name: score.result() for name, score in scores.items()}
    content = {"forecasters": results, "lead_minutes": lead_minutes,
               "units": {"mse_mmh": "(mm/h)^2", "mae_mmh": "mm/h", "thresholds": "mm/h"},
               "value_mapping": metadata.get("value_mapping"), "grid": metadata.get("grid"),
               "dataset": metadata.get("name"), "info": info or {}}
    os.makedirs(output_dir, exist_ok=True)
    files.write_json(os.path.join(output_dir, METRICS_FILENAME), _finite(content), indent=1)
    files.write_text(os.path.join(output_dir, TABLE_FILENAME),
                     format_table(results, lead_minutes))
    plot_per_lead(os.path.join(output_dir, PLOT_FILENAME), results, lead_minutes)
    if save_predictions:
        path = os.path.join(output_dir, "predictions.npz")
        with files.atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays, value_mapping=json.dumps(
                    metadata.get("value_mapping")), transform="pixels_to_rain_rate")
    return content
