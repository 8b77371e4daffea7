"""Compares evaluation runs: a Markdown table of averages and one overlaid per-frame plot.

Usage:
  python tools/compare.py eval/model/metrics.json eval/persistence/metrics.json \
      [--output=comparison.png] [--metrics=mse,ssim,lpips,csi_30]
"""

from __future__ import annotations

import json
import math
import os
import sys

from absl import app, flags

from predrnn_tf.evaluation import charts, plots

DEFAULT_METRICS = ("mse", "mae", "psnr", "ssim", "lpips")
SCORE_PREFIXES = ("csi_", "pod_", "far_", "ets_", "hss_", "bias_", "fss_")

_OUTPUT = flags.DEFINE_string("output", "comparison.png",
                              "PNG with one chart per metric, all runs overlaid ('' = none).")
_METRICS = flags.DEFINE_string("metrics", "",
                               "Comma-separated metrics (default: mse, mae, psnr, ssim, lpips "
                               "and the radar scores present).")


class CompareError(ValueError):
    """A metrics file is missing or not an evaluation result."""


def load_run(path: str) -> dict:
    """Reads one metrics.json; CompareError naming the file if unusable."""
    if not os.path.exists(path):
        raise CompareError(f"{path} does not exist")
    try:
        with open(path) as handle:
            run = json.load(handle)
    except json.JSONDecodeError as error:
        raise CompareError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(run, dict) or "metrics" not in run or "per_frame" not in run:
        raise CompareError(f"{path} is not a metrics.json written by predrnn_tf.evaluate")
    return run


def run_labels(paths: list[str], runs: list[dict]) -> list[str]:
    """Run names, made unique with their folder names when they repeat."""
    names = [run.get("name") or os.path.basename(os.path.dirname(path)) for path, run
             in zip(paths, runs, strict=True)]
    labels = []
    for path, name in zip(paths, names, strict=True):
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        labels.append(f"{name} ({folder})" if names.count(name) > 1 else name)
    return labels


def choose_metrics(runs: list[dict], requested: str) -> list[str]:
    """The requested metrics, or the defaults and radar scores present in any run."""
    if requested:
        return [name.strip() for name in requested.split(",") if name.strip()]
    present = [name for name in DEFAULT_METRICS if any(name in run["metrics"] for run in runs)]
    for run in runs:
        for name in run["metrics"]:
            if name.startswith(SCORE_PREFIXES) and name not in present:
                present.append(name)
    return present


def format_value(value) -> str:
    """4 significant digits; "n/a" for missing or undefined values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def markdown_table(labels: list[str], runs: list[dict], metric_names: list[str]) -> str:
    """One row per run: sequences, frames, then the average of each metric."""
    header = ["run", "sequences", "frames", *metric_names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, run in zip(labels, runs, strict=True):
        cells = [label, str(run.get("num_sequences", "")), str(run.get("output_length", ""))]
        for name in metric_names:
            if name in run["metrics"]:
                cells.append(format_value(run["metrics"][name]))
            elif name in run.get("skipped", {}):
                cells.append("skipped")
            else:
                cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def consistency_notes(labels: list[str], runs: list[dict]) -> list[str]:
    """Warnings when the runs were not evaluated on the same data."""
    notes = []
    for key in ("dataset", "num_sequences", "output_length", "input_length"):
        values = {str(run.get(key)) for run in runs}
        if len(values) > 1:
            detail = ", ".join(f"{label}={run.get(key)}"
                               for label, run in zip(labels, runs, strict=True))
            notes.append(f"note: runs differ in {key}: {detail}")
    return notes


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        print("compare: error: give one or more metrics.json files", file=sys.stderr)
        sys.exit(2)
    try:
        runs = [load_run(path) for path in paths]
        labels = run_labels(paths, runs)
        metric_names = choose_metrics(runs, _METRICS.value)
        print(markdown_table(labels, runs, metric_names))
        for note in consistency_notes(labels, runs):
            print(note)
        if _OUTPUT.value:
            per_frame = {label: run["per_frame"] for label, run in zip(labels, runs, strict=True)}
            image = charts.draw_metric_curves(per_frame, metric_names)
            folder = os.path.dirname(_OUTPUT.value)
            if folder:
                os.makedirs(folder, exist_ok=True)
            plots.write_image(_OUTPUT.value, image)
            print(f"wrote {_OUTPUT.value}")
    except (OSError, ValueError) as error:
        print(f"compare: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
