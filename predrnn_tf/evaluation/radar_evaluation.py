"""The model and the baselines on radar terms, in one pass over the test split.

Every forecaster (the model, ``persistence``, ``extrapolation``, ``sprog``) forecasts the
same input batches; :class:`RadarScores` scores each in mm/h over the valid pixels of the
truth with the one scoring engine, :mod:`predrnn_tf.evaluation.scores` (pysteps'
definitions: contingency event ``value > X``, FSS event ``value >= X``). A baseline that
fails on a sequence (e.g. S-PROG on a field of no data) is left out of that sequence's scores,
and counted and named under ``failures`` in ``metrics.json``; it never stops the run.
Written into ``output_dir``:

- ``metrics.json``: ``{"forecasters": {name: {"metrics": {metric: mean over lead times},
  "per_frame": {metric: [one value per lead time]}}}, "lead_minutes": [...], "info": ...}``,
  metric names ``mse_mmh``, ``mae_mmh``, ``{csi,pod,far,ets,hss,bias}_1mmh``,
  ``fss_1mmh_16km`` (FSS windows of Y km are ``round(Y / pixel_km)`` pixels, at least one,
  recorded under ``fss_window_pixels``).
- ``metrics_table.md``: the headline table (per lead time and averaged).
- ``metrics_per_lead.png``: CSI at 1 mm/h and MSE per lead time, every forecaster.
- ``predictions.npz`` (``save_predictions``): inputs, truth, every forecaster's predictions
  ([0, 1] model pixels) and the transform to mm/h (the value_mapping as JSON).

With ``ensemble=True`` every forecaster is also scored as an ensemble
(:class:`EnsembleScores`, :mod:`.probabilistic`): one with a ``members(inputs)`` method
(``[B, N, T, H, W, C]``: the model's motion ensemble, STEPS) by its N members, and a
deterministic one as a one-member ensemble (its CRPS is its MAE). Its per-lead scores
(``crps_mmh``, ``rank_reliability_index``, ``roc_area_1mmh``, ``spread_skill_ratio``, ...) join
its ``metrics`` and ``per_frame``, its curves (rank histogram, reliability diagram, ROC) go
under ``ensemble``, and its contingency scores, FSS and errors are those of the members'
median in mm/h.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from predrnn_tf import files, units
from predrnn_tf.evaluation import baselines, probabilistic, results, scores

RAIN_THRESHOLDS = (0.5, 1.0, 5.0, 10.0)  # mm/h
FSS_THRESHOLDS = (1.0, 5.0)  # mm/h
FSS_SCALES_KM = (1.0, 4.0, 16.0)
TABLE_METRICS = ("mse_mmh", "mae_mmh", "csi_1mmh", "csi_5mmh", "ets_1mmh", "fss_1mmh_16km",
                 "crps_mmh", "roc_area_1mmh", "roc_area_5mmh", "rank_reliability_index",
                 "spread_skill_ratio")
ENSEMBLE_THRESHOLDS = probabilistic.DEFAULT_THRESHOLDS  # mm/h: reliability diagram and ROC
# pysteps' examples/plot_ensemble_verification.py: rankhist_init(n_members, 0.1), i.e. the rank
# histogram leaves out pixels where the truth and every member are below 0.1 mm/h
RANK_THRESHOLD_MMH = 0.1
# the model's forecasters: their failure is an error, not a counted failure
UNGUARDED = ("model", "model_ensemble", "model_ensemble_pm")
METRICS_FILENAME = results.METRICS_FILENAME
TABLE_FILENAME = "metrics_table.md"
PLOT_FILENAME = "metrics_per_lead.png"


def window_pixels(scale_km: float, pixel_km: float) -> int:
    """The FSS window in pixels for ``scale_km`` on a ``pixel_km`` grid (at least 1)."""
    return max(1, int(round(scale_km / pixel_km)))


def check_thresholds(thresholds: Sequence[float], metadata: dict[str, Any], flag: str) -> None:
    """ValueError (one line) for a threshold the dataset's rain-rate range cannot reach."""
    mapping = units.mapping_of(metadata) or {}
    low, high = units.RAIN_RATE_FLOOR, float(mapping.get("max", np.inf))
    for value in thresholds:
        if not low <= value < high:
            raise ValueError(f"{flag}: threshold {value:g} mm/h is outside the data's range "
                             f"[{low:g}, {high:.4g}) mm/h")


class RadarScores(scores.ScoreAccumulator):
    """The engine's accumulator fed with [0, 1] frames of a dBR rain-rate dataset (in mm/h).

    Args:
      output_length: lead times per sequence.
      metadata: the dataset's metadata (a dBR ``value_mapping``; ``grid.pixel_km``).
      thresholds: rain-rate thresholds (mm/h) of the contingency scores.
      fss_thresholds: rain-rate thresholds (mm/h) of the FSS.
      fss_scales_km: FSS windows in km.
    """

    def __init__(self, output_length: int, metadata: dict[str, Any],
                 thresholds: Sequence[float] = RAIN_THRESHOLDS,
                 fss_thresholds: Sequence[float] = FSS_THRESHOLDS,
                 fss_scales_km: Sequence[float] = FSS_SCALES_KM):
        if not units.is_rain_rate_mapping(metadata):
            raise ValueError(f"dataset {metadata.get('name')!r} does not store rain rate "
                             f"(dBR value_mapping): convert it with --storage=rain_rate")
        check_thresholds(thresholds, metadata, "--thresholds")
        check_thresholds(fss_thresholds, metadata, "--fss_thresholds")
        pixel_km = float((metadata.get("grid") or {}).get("pixel_km", 1.0))
        self.fss_scales_km = tuple(float(value) for value in fss_scales_km)
        super().__init__(output_length, thresholds, fss_thresholds,
                         [window_pixels(value, pixel_km) for value in self.fss_scales_km],
                         unit="mmh", window_names=[f"{value:g}km" for value in self.fss_scales_km])
        self.metadata = metadata
        self.num_sequences = 0

    def update(self, truth01: np.ndarray, prediction01: np.ndarray) -> None:
        """Adds ``[B, T, H, W, 1]`` truth and forecast frames (model scale, [0, 1])."""
        self.update_rates(truth01, units.pixels_to_rain_rate(
            np.clip(np.asarray(prediction01), 0.0, 1.0), self.metadata))

    def update_rates(self, truth01: np.ndarray, prediction_mmh: np.ndarray) -> None:
        """Adds ``[B, T, H, W, 1]`` truth frames ([0, 1]) and forecast rain rates (mm/h)."""
        truth01, prediction_mmh = np.asarray(truth01), np.asarray(prediction_mmh)
        if truth01.shape != prediction_mmh.shape or truth01.ndim != 5:
            raise ValueError(f"truth and prediction must be [B, T, H, W, C] of one shape, got "
                             f"{truth01.shape} and {prediction_mmh.shape}")
        self.add_sequences(units.pixels_to_rain_rate(truth01, self.metadata), prediction_mmh,
                           units.valid_pixels(truth01, self.metadata))
        self.num_sequences += truth01.shape[0]

    def result(self) -> dict[str, Any]:
        """``{"metrics": {name: mean over leads}, "per_frame": {name: [T]}, ...}``."""
        if not self.num_sequences:
            raise ValueError("RadarScores.result() called before any update()")
        per_lead = self.per_lead()
        return {"metrics": {name: scores.finite_mean(values) for name, values in per_lead.items()},
                "per_frame": {name: [float(value) for value in values]
                              for name, values in per_lead.items()},
                "fss_window_pixels": dict(zip(self.window_names, self.fss_windows, strict=True)),
                "num_sequences": self.num_sequences}


class EnsembleScores(probabilistic.ProbabilisticAccumulator):
    """The probabilistic scores of an N-member forecaster on a dBR dataset, in mm/h.

    Args:
      output_length: lead times per sequence.
      num_members: members N (1: a deterministic forecaster).
      metadata: the dataset's metadata (a dBR ``value_mapping``).
    """

    def __init__(self, output_length: int, num_members: int, metadata: dict[str, Any]):
        super().__init__(output_length, num_members, ENSEMBLE_THRESHOLDS, unit="mmh",
                         rank_threshold=RANK_THRESHOLD_MMH)
        self.metadata = metadata

    def update(self, truth01: np.ndarray, members_mmh: np.ndarray) -> None:
        """Adds truth ``[B, T, H, W, 1]`` ([0, 1]) and members ``[B, N, T, H, W, 1]`` (mm/h)."""
        self.add_sequences(units.pixels_to_rain_rate(truth01, self.metadata), members_mmh,
                           units.valid_pixels(truth01, self.metadata))

    def result(self) -> dict[str, Any]:
        """``{"per_frame": {score: [T]}, "ensemble": {"members": N, curves...}}``."""
        per_lead = self.per_lead()
        return {"per_frame": {name: [float(value) for value in values]
                              for name, values in per_lead.items()},
                "metrics": {name: scores.finite_mean(values) for name, values in per_lead.items()},
                "ensemble": {"members": self.num_members, **self.curves()}}


def member_rates(prediction01: np.ndarray, metadata: dict[str, Any],
                 output_length: int) -> np.ndarray:
    """Members ``[K, N, T, H, W, C]`` or a forecast ``[K, T, H, W, C]`` (as N = 1) in mm/h."""
    prediction01 = np.asarray(prediction01, np.float32)
    if prediction01.ndim == 5:
        prediction01 = prediction01[:, None]  # [K, 1, T, H, W, C]
    return units.pixels_to_rain_rate(np.clip(prediction01[:, :, :output_length], 0.0, 1.0),
                                     metadata)


def forecast_function(forecaster: Any, ensemble: bool) -> tuple[Callable[[Any], Any], int]:
    """``(inputs -> forecast or members, members N)``: ``members`` when scoring ensembles."""
    if ensemble and hasattr(forecaster, "members"):
        return forecaster.members, int(forecaster.num_members)
    return forecaster, 1


def every_kth(dataset: Any, every: int, batch_size: int) -> Any:
    """Every ``every``-th sequence of ``dataset`` (an even spread over the events), in batches
    of ``batch_size`` (the config's: whole composites go one per batch, for memory)."""
    if every <= 1:
        return dataset
    return dataset.unbatch().shard(every, 0).batch(batch_size)


def run_forecasters(forecasters: dict[str, Callable[[Any], Any]], dataset: Any,
                    metadata: dict[str, Any], input_length: int, output_length: int,
                    keep_predictions: bool = False, ensemble: bool = False, **score_options
                    ) -> tuple[dict[str, RadarScores], dict[str, np.ndarray],
                               dict[str, baselines.GuardedBaseline], dict[str, EnsembleScores]]:
    """Scores every forecaster on the batches ``[B, T, H, W, C]`` of ``dataset``.

    The forecasters of :data:`UNGUARDED` run as they are (their failure is an error); the
    others run through :class:`~predrnn_tf.evaluation.baselines.GuardedBaseline`, returned
    third, so a sequence a baseline fails on is left out of its scores and counted. With
    ``ensemble``, fourth: the :class:`EnsembleScores` of each forecaster (module docstring).
    """
    scorers = {name: RadarScores(output_length, metadata, **score_options)
               for name in forecasters}
    functions = {name: forecast_function(forecaster, ensemble)
                 for name, forecaster in forecasters.items()}
    guarded = {name: baselines.GuardedBaseline(name, function)
               for name, (function, _) in functions.items() if name not in UNGUARDED}
    ensembles = {name: EnsembleScores(output_length, members, metadata)
                 for name, (_, members) in functions.items()} if ensemble else {}
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
        for name, (function, _) in functions.items():
            if name in guarded:
                prediction, done = guarded[name](inputs)
            else:
                prediction, done = np.asarray(function(inputs), np.float32), slice(None)
            prediction = score_batch(scorers[name], ensembles.get(name), truth[done],
                                     prediction, metadata, output_length)
            if keep_predictions:
                kept.setdefault(name, []).append(baselines.fill_failed(prediction, done,
                                                                       truth.shape))
    if not any(scorer.num_sequences for scorer in scorers.values()):
        raise ValueError("the test split yielded no sequence to evaluate")
    arrays = {key: np.concatenate(values) for key, values in kept.items() if values}
    return scorers, arrays, guarded, ensembles


def score_batch(scorer: RadarScores, ensemble_scorer: EnsembleScores | None, truth: np.ndarray,
                prediction: np.ndarray, metadata: dict[str, Any],
                output_length: int) -> np.ndarray:
    """Scores one batch; returns the scored deterministic forecast (pixels ``[K, T, H, W, C]``).

    Without ``ensemble_scorer`` the forecast ``prediction`` is scored as it is; with it,
    ``prediction`` is members (or a forecast, one member): the ensemble scores take them all
    and the contingency scores their median in mm/h.
    """
    if not prediction.shape[0]:  # a baseline failed on every sequence of the batch
        return np.zeros((0,) + truth.shape[1:], np.float32)
    if ensemble_scorer is None:
        prediction = prediction[:, :output_length]
        scorer.update(truth, prediction)
        return prediction
    rates = member_rates(prediction, metadata, output_length)  # [K, N, T, H, W, C] mm/h
    median = np.median(rates, axis=1)  # [K, T, H, W, C]
    scorer.update_rates(truth, median)
    ensemble_scorer.update(truth, rates)
    return units.rain_rate_to_unit_pixels(median).astype(np.float32)


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


def evaluate_forecasters(forecasters: dict[str, Callable[[Any], Any]], dataset: Any,
                         metadata: dict[str, Any], output_dir: str, input_length: int,
                         output_length: int, save_predictions: bool = False,
                         info: dict[str, Any] | None = None, ensemble: bool = False,
                         **score_options) -> dict[str, Any]:
    """Runs, scores and writes the result files; returns the ``metrics.json`` content."""
    scorers, arrays, guarded, ensembles = run_forecasters(
        forecasters, dataset, metadata, input_length, output_length,
        keep_predictions=save_predictions, ensemble=ensemble, **score_options)
    interval = float((metadata.get("grid") or {}).get("interval_minutes", 1.0))
    lead_minutes = [interval * (lead + 1) for lead in range(output_length)]
    scored = {name: merged_result(scorer, ensembles.get(name))
              for name, scorer in scorers.items() if scorer.num_sequences}
    content = {"forecasters": scored, "lead_minutes": lead_minutes,
               "failures": {name: guard.report() for name, guard in guarded.items()
                            if guard.failed_sequences},
               "units": {"mse_mmh": "(mm/h)^2", "mae_mmh": "mm/h", "crps_mmh": "mm/h",
                         "thresholds": "mm/h"},
               "value_mapping": metadata.get("value_mapping"), "grid": metadata.get("grid"),
               "dataset": metadata.get("name"), "info": info or {}}
    os.makedirs(output_dir, exist_ok=True)
    results.write_metrics_json(os.path.join(output_dir, METRICS_FILENAME), content)
    files.write_text(os.path.join(output_dir, TABLE_FILENAME),
                     format_table(scored, lead_minutes))
    plot_per_lead(os.path.join(output_dir, PLOT_FILENAME), scored, lead_minutes)
    if save_predictions:
        path = os.path.join(output_dir, "predictions.npz")
        with files.atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays, value_mapping=json.dumps(
                    metadata.get("value_mapping")), transform="pixels_to_rain_rate")
    return content


def merged_result(scorer: RadarScores, ensemble_scorer: EnsembleScores | None) -> dict[str, Any]:
    """The scorer's result with the ensemble's scores (if any) in its metrics and per_frame."""
    result = scorer.result()
    if ensemble_scorer is not None:
        extra = ensemble_scorer.result()
        result["metrics"].update(extra["metrics"])
        result["per_frame"].update(extra["per_frame"])
        result["ensemble"] = extra["ensemble"]
    return result
