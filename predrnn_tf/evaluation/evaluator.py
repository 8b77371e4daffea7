"""Evaluation of a model or a baseline on a test set: metrics files, curves, strips, GIFs.

:func:`evaluate` runs a forecaster over batches ``[B, T, H, W, C]`` (the first
``input_length`` frames are its inputs, the next ``output_length`` the truth) and writes into
``output_dir``:

- ``metrics.json`` (through :func:`predrnn_tf.evaluation.results.write_metrics_json`):
  averages over frames (``metrics``), per-frame lists (``per_frame``), radar contingency
  counts (``counts``), what was skipped and why (``skipped``), the sequences each baseline
  failed on (``failures``; a failing baseline never stops the run), and run info;
- ``metrics_per_frame.csv``: one row per forecast frame;
- ``metrics_per_frame.png``: one chart per metric over the forecast frames;
- ``predictions.png`` and ``predictions.gif``: truth and forecast of the first sequences;
- ``predictions.npz`` (``save_predictions``): ``inputs``, ``truth``, ``predictions`` float32 in
  [0, 1], enough to recompute every metric.

Every file is written through :mod:`predrnn_tf.files` (temporary name, then rename). This
module reads no dataset: the caller passes the batches and the dataset metadata.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf import files
from predrnn_tf.errors import DataError
from predrnn_tf.evaluation import charts, intensity, plots, results
from predrnn_tf.evaluation.baselines import GuardedBaseline, default_baselines
from predrnn_tf.evaluation.metrics import DEFAULT_THRESHOLDS, FrameMetrics
from predrnn_tf.models.forecasting import make_forecast_function

METRICS_FILENAME = results.METRICS_FILENAME
CSV_FILENAME = "metrics_per_frame.csv"
CURVES_FILENAME = "metrics_per_frame.png"
STRIPS_FILENAME = "predictions.png"
GIF_FILENAME = "predictions.gif"
PREDICTIONS_FILENAME = "predictions.npz"
PLOTTED_METRICS = ("mse", "mae", "psnr", "ssim", "lpips")


@dataclasses.dataclass(frozen=True)
class EvaluationOptions:
    """What to evaluate and what to write.

    Attributes:
      input_length: input frames per sequence.
      output_length: forecast frames per sequence (may exceed the training length).
      thresholds: dBZ thresholds of the contingency scores (radar data only).
      fss_scales: neighbourhood sizes of the fractions skill score (empty: no FSS).
      num_sequences: stop after this many test sequences (0: the whole test set).
      save_predictions: also write ``predictions.npz``.
      num_strips: sequences drawn in ``predictions.png`` / ``.gif``.
      frames_per_second: GIF frame rate.
      name: the run's name in plots and tables (e.g. "predrnn_v2", "persistence").
    """

    input_length: int
    output_length: int
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    fss_scales: tuple[int, ...] = ()
    num_sequences: int = 0
    save_predictions: bool = False
    num_strips: int = 3
    frames_per_second: float = 2.0
    name: str = "model"


def as_forecaster(model_or_baseline: Any, output_length: int) -> Callable[[Any], Any]:
    """The model (through the one compiled forecast) or a baseline as ``inputs -> forecast``."""
    if hasattr(model_or_baseline, "forecast"):
        return make_forecast_function(model_or_baseline, output_length)
    if callable(model_or_baseline):
        return model_or_baseline
    raise ValueError(f"expected a model with .forecast or a callable, got "
                     f"{type(model_or_baseline).__name__}")



def _check_options(options: EvaluationOptions) -> None:
    if options.input_length < 1:
        raise ValueError(f"input_length must be positive, got {options.input_length}")
    if options.output_length < 1:
        raise ValueError(f"output_length must be positive, got {options.output_length}")
    if options.num_sequences < 0:
        raise ValueError(f"num_sequences must be >= 0, got {options.num_sequences}")


def write_per_frame_csv(path: str, per_frame: dict[str, Sequence[float]]) -> None:
    """``frame,<metric>,...`` with one row per forecast frame (1-based), atomically."""
    names = list(per_frame)
    length = len(per_frame[names[0]]) if names else 0
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["frame", *names])
    for frame in range(length):
        row = [frame + 1]
        for name in names:
            value = per_frame[name][frame]
            row.append("" if value is None or not math.isfinite(value) else f"{value:.8g}")
        writer.writerow(row)
    files.write_text(path, text.getvalue())


def write_predictions(path: str, inputs: np.ndarray, truth: np.ndarray,
                      predictions: np.ndarray) -> None:
    """``predictions.npz`` with float32 ``inputs``, ``truth``, ``predictions`` (clipped)."""
    with files.atomic_write(path, "wb") as handle:  # a file object: np.savez adds no suffix
        np.savez_compressed(handle, inputs=inputs.astype(np.float32),
                            truth=truth.astype(np.float32),
                            predictions=np.clip(predictions, 0.0, 1.0).astype(np.float32))


class _Collector:
    """Keeps the first sequences for the pictures, and all of them if asked to."""

    def __init__(self, keep_all: bool, num_strips: int):
        self.keep_all = keep_all
        self.num_strips = num_strips
        self.parts: dict[str, list[np.ndarray]] = {"inputs": [], "truth": [], "predictions": []}
        self.kept = 0

    def add(self, inputs: np.ndarray, truth: np.ndarray, predictions: np.ndarray) -> None:
        if not self.keep_all:
            wanted = self.num_strips - self.kept
            if wanted <= 0:
                return
            inputs, truth, predictions = inputs[:wanted], truth[:wanted], predictions[:wanted]
        self.parts["inputs"].append(inputs)
        self.parts["truth"].append(truth)
        self.parts["predictions"].append(np.clip(predictions, 0.0, 1.0))
        self.kept += inputs.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(values) for name, values in self.parts.items()}


def run_forecasts(forecaster: Callable[[Any], Any], dataset: Any, options: EvaluationOptions,
                  frame_metrics: FrameMetrics, collector: _Collector,
                  mean_intensity: intensity.MeanIntensity | None = None,
                  baselines: dict[str, tuple[GuardedBaseline,
                                             FrameMetrics]] | None = None
                  ) -> None:
    """Streams the dataset once through the forecaster (and each baseline) into the metrics."""
    needed = options.input_length + options.output_length
    remaining = options.num_sequences or None
    for batch in dataset:
        frames = np.asarray(batch, np.float32)
        if frames.ndim != 5 or frames.shape[1] < needed:
            raise DataError(f"test batches must be [B, T, H, W, C] with T >= input_length + "
                            f"output_length = {needed}, got shape {frames.shape}")
        if remaining is not None:
            frames = frames[:remaining]
        inputs = frames[:, :options.input_length]
        truth = frames[:, options.input_length:needed]
        predictions = _forecast_batch(forecaster, inputs, truth.shape)
        frame_metrics.update(truth, predictions)
        collector.add(inputs, truth, predictions)
        if mean_intensity is not None:
            mean_intensity.update(inputs, truth, predictions)
        for baseline, metrics in (baselines or {}).values():
            forecast, done = baseline(inputs)
            if done.size:
                metrics.update(truth[done], _check_shape(forecast, truth[done].shape))
        if remaining is not None:
            remaining -= frames.shape[0]
            if remaining <= 0:
                break


def _forecast_batch(forecaster: Callable[[Any], Any], inputs: np.ndarray,
                    expected_shape: tuple[int, ...]) -> np.ndarray:
    return _check_shape(np.asarray(forecaster(tf.constant(inputs)), np.float32), expected_shape)


def _check_shape(predictions: np.ndarray, expected_shape: tuple[int, ...]) -> np.ndarray:
    if predictions.shape != expected_shape:
        raise ValueError(f"the forecast has shape {predictions.shape}, expected {expected_shape}")
    return predictions


def write_pictures(output_dir: str, arrays: dict[str, np.ndarray], result: dict[str, Any],
                   options: EvaluationOptions,
                   value_mapping: dict[str, Any] | None) -> dict[str, str]:
    """Writes the curves PNG, the strips PNG and the GIF; returns {kind: path}."""
    written = {}
    metric_names = [name for name in PLOTTED_METRICS if name in result["per_frame"]]
    metric_names += [name for name in result["per_frame"]
                     if name.startswith(("csi_", "hss_", "fss_"))]
    series = {options.name: result["per_frame"]}
    series.update({name: scores["per_frame"]
                   for name, scores in result.get("baselines", {}).items()})
    curves = charts.draw_metric_curves(series, metric_names)
    path = os.path.join(output_dir, CURVES_FILENAME)
    plots.write_image(path, curves)
    written["curves"] = path
    count = min(options.num_strips, arrays["inputs"].shape[0])
    if count <= 0:
        return written
    strips = {name: values[:count] for name, values in arrays.items()}
    image = plots.draw_prediction_strips(
        strips["inputs"], strips["truth"], strips["predictions"], value_mapping,
        title=f"{options.name}: truth (top) and forecast (bottom)")
    path = os.path.join(output_dir, STRIPS_FILENAME)
    plots.write_image(path, image)
    written["strips"] = path
    animation = plots.draw_animation_frames(
        strips["inputs"], strips["truth"], strips["predictions"], value_mapping)
    path = os.path.join(output_dir, GIF_FILENAME)
    if plots.write_gif(path, animation, options.frames_per_second):
        written["gif"] = path
    else:
        logging.warning("No GIF writer (OpenCV >= 4.11 or Pillow): %s not written.", path)
    return written


def evaluate(model_or_baseline: Any, dataset: Any, output_dir: str, options: EvaluationOptions,
             *, metadata: dict[str, Any] | None = None, lpips_model: Any = None,
             lpips_skip_reason: str = "", info: dict[str, Any] | None = None,
             baselines: dict[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """Evaluates a forecaster on a dataset and writes the result files.

    Args:
      model_or_baseline: a model with ``forecast(inputs, output_length)`` (e.g. PredRNN),
        run through :func:`predrnn_tf.models.forecasting.make_forecast_function` (the one
        compiled, clipped forecast), or a callable ``inputs [B, T_in, H, W, C] ->
        [B, T_out, H, W, C]`` (e.g. a baseline).
      dataset: iterable of float32 batches ``[B, T, H, W, C]`` in [0, 1], with
        ``T >= input_length + output_length``.
      output_dir: created if needed.
      options: see :class:`EvaluationOptions`.
      metadata: the dataset metadata; its ``value_mapping`` enables dBZ scores and colours
        (converters store no-data pixels as "no echo", so every pixel is scored).
      lpips_model: a callable ``(truth, prediction) -> [N]`` (see
        :class:`predrnn_tf.lpips.LPIPSDistance`), or None.
      lpips_skip_reason: why LPIPS is missing, written into ``metrics.json``.
      info: extra values stored under ``info`` in ``metrics.json`` (workdir, checkpoint...).
      baselines: ``{name: forecaster}`` scored on the same sequences in the same pass, under
        ``baselines`` in ``metrics.json``, in the curves and the CSV (``<name>_<metric>``).
        Default for a model: ``baselines.default_baselines``; for a baseline: none.

    Returns:
      The contents of ``metrics.json``.
    """
    _check_options(options)
    metadata = metadata or {}
    value_mapping = metadata.get("value_mapping") or None
    forecaster = as_forecaster(model_or_baseline, options.output_length)
    frame_metrics = make_frame_metrics(options, value_mapping, lpips_model)
    collector = _Collector(options.save_predictions, options.num_strips)
    start = time.time()
    mean_intensity = intensity.MeanIntensity(options.output_length)
    baselines, skipped = _baseline_metrics(model_or_baseline, baselines, options, metadata,
                                           lpips_model)
    run_forecasts(forecaster, dataset, options, frame_metrics, collector, mean_intensity,
                  baselines)
    if frame_metrics.num_sequences == 0:
        raise DataError("the test set yielded no sequence to evaluate")
    skipped.update(skipped_scores(lpips_model, lpips_skip_reason, value_mapping))
    result = assemble_result(frame_metrics, options, metadata, skipped,
                             {"seconds": round(time.time() - start, 3), **(info or {})})
    result.update(_baseline_results(baselines))
    result["mean_intensity"] = mean_intensity.result()  # Fig. 9: predicted vs true, per frame
    write_result_files(output_dir, result, collector.arrays(), options, value_mapping)
    return result


def _baseline_results(baselines: dict[str, tuple[GuardedBaseline, FrameMetrics]]
                      ) -> dict[str, Any]:
    """``{"baselines": {name: scores}, "failures": {name: report}}`` (failures if any)."""
    return {"baselines": {name: _scores(metrics.result())
                          for name, (_, metrics) in baselines.items() if metrics.num_sequences},
            "failures": {name: guard.report() for name, (guard, _) in baselines.items()
                         if guard.failed_sequences}}


def _baseline_metrics(model_or_baseline: Any,
                      baselines: dict[str, Callable[[Any], Any]] | None,
                      options: EvaluationOptions, metadata: dict[str, Any], lpips_model: Any
                      ) -> tuple[dict[str, tuple[GuardedBaseline,
                                                 FrameMetrics]], dict[str, str]]:
    """``{name: (guarded forecaster, its FrameMetrics)}`` and the skipped baselines' reasons."""
    skipped: dict[str, str] = {}
    if baselines is None:
        baselines, skipped = (default_baselines(
            options.output_length, metadata, int(metadata.get("channels") or 1),
            options.input_length)
                              if hasattr(model_or_baseline, "forecast") else ({}, {}))
    value_mapping = metadata.get("value_mapping") or None
    return {name: (GuardedBaseline(name, forecaster),
                   make_frame_metrics(options, value_mapping, lpips_model))
            for name, forecaster in baselines.items()}, skipped


def make_frame_metrics(options: EvaluationOptions, value_mapping: dict[str, Any] | None,
                       lpips_model: Any) -> FrameMetrics:
    """The accumulator of every score ``options`` asks for."""
    return FrameMetrics(options.output_length, value_mapping=value_mapping,
                        thresholds=options.thresholds, fss_scales=options.fss_scales,
                        lpips_model=lpips_model)


def _scores(result: dict[str, Any]) -> dict[str, Any]:
    return {"metrics": result["metrics"], "per_frame": result["per_frame"],
            "num_sequences": result["num_sequences"]}


def skipped_scores(lpips_model: Any, lpips_skip_reason: str,
                   value_mapping: dict[str, Any] | None) -> dict[str, str]:
    """The scores that could not be computed, with the reason of each."""
    skipped = {}
    if lpips_model is None:
        skipped["lpips"] = lpips_skip_reason or "no LPIPS model given"
    if not value_mapping:
        skipped["contingency"] = ("the dataset metadata has no value_mapping to dBZ: "
                                  "CSI/POD/FAR/HSS need physical units")
    return skipped


def assemble_result(frame_metrics: FrameMetrics, options: EvaluationOptions,
                    metadata: dict[str, Any], skipped: dict[str, str],
                    info: dict[str, Any]) -> dict[str, Any]:
    """The contents of ``metrics.json`` (without ``files``), from the accumulated metrics."""
    value_mapping = metadata.get("value_mapping") or None
    return {
        "name": options.name,
        "dataset": metadata.get("name"),
        "synthetic": bool(metadata.get("synthetic", False)),
        "input_length": options.input_length,
        **frame_metrics.result(),
        "thresholds": list(frame_metrics.thresholds),
        "units": value_mapping.get("units") if value_mapping else None,
        "skipped": skipped,
        "info": info,
    }


def write_result_files(output_dir: str, result: dict[str, Any], arrays: dict[str, np.ndarray],
                       options: EvaluationOptions,
                       value_mapping: dict[str, Any] | None) -> None:
    """Writes the pictures, the CSV, ``predictions.npz`` and last ``metrics.json``.

    Adds ``result["files"]`` ({kind: file name}) before writing ``metrics.json``.
    """
    os.makedirs(output_dir, exist_ok=True)
    if "mean_intensity" in result:
        path = intensity.write_plot(output_dir, result["mean_intensity"], options.name)
        result["mean_intensity"]["plot"] = os.path.basename(path)
    written = write_pictures(output_dir, arrays, result, options, value_mapping)
    columns = dict(result["per_frame"])
    for name, scores in result.get("baselines", {}).items():
        columns.update({f"{name}_{metric}": values
                        for metric, values in scores["per_frame"].items()})
    write_per_frame_csv(os.path.join(output_dir, CSV_FILENAME), columns)
    if options.save_predictions:
        path = os.path.join(output_dir, PREDICTIONS_FILENAME)
        write_predictions(path, arrays["inputs"], arrays["truth"], arrays["predictions"])
        written["predictions"] = path
    result["files"] = {kind: os.path.basename(path) for kind, path in written.items()}
    results.write_metrics_json(os.path.join(output_dir, METRICS_FILENAME), result)


def summary_line(result: dict[str, Any]) -> str:
    """One line with the headline averages of the model and each baseline, for the console."""
    parts = [f"{result['name']}: {result['num_sequences']} sequences x "
             f"{result['output_length']} frames",
             _headline(result["metrics"], result.get("thresholds", []))]
    for name, scores in result.get("baselines", {}).items():
        parts.append(f"| {name}: {_headline(scores['metrics'], result.get('thresholds', []))}")
    for name, reason in result.get("skipped", {}).items():
        if name in ("persistence", "extrapolation"):
            parts.append(f"| {name}: n/a ({reason.split(':')[0]})")
    for name, failure in result.get("failures", {}).items():
        parts.append(f"| {name} failed on {failure['failed_sequences']} sequence(s): "
                     f"{', '.join(failure['errors'])}")
    return " ".join(parts)


def _headline(metrics: dict[str, Any], thresholds: Sequence[float]) -> str:
    parts = []
    for name in ("mse", "mae", "psnr", "ssim", "lpips"):
        if name in metrics:
            value = metrics[name]
            parts.append(f"{name}=" + ("n/a" if value is None or not math.isfinite(value)
                                       else f"{value:.4g}"))
    for threshold in thresholds:
        key = f"csi_{threshold:g}"
        if key in metrics and metrics[key] is not None and math.isfinite(metrics[key]):
            parts.append(f"{key}={metrics[key]:.3f}")
    return " ".join(parts)
