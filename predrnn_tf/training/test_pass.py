"""The test pass during training: the same reading, forecast and MSE as ``evaluate``.

The test split is read as :mod:`predrnn_tf.cli.evaluate` reads it (in order, keeping the
last partial batch), forecast with :func:`predrnn_tf.models.forecasting.make_forecast_function`
and scored with :func:`predrnn_tf.evaluation.metrics.sum_squared_error`, so the numbers of
the training log and of ``metrics.json`` agree on the same checkpoint. ``mse`` is named as
evaluation names it: the per-frame MSE (sum over a frame's pixels), averaged over frames.

The baselines of :mod:`predrnn_tf.evaluation.baselines` are scored on the same sequences by
the same code: ``persistence`` always, ``extrapolation`` (pysteps' Lucas-Kanade motion and
semi-Lagrangian advection; in mm/h on a dBR rain-rate dataset) when pysteps is installed and
the frames have one channel, and ``advection`` (the model's own advection prior alone, the
untrained model) for a model with ``advection_prior``. The test set is fixed, so a
:class:`BaselineCache` forecasts each batch once per run and reuses its sums in later passes
(keyed by the batch's frames).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf.config import Config
from predrnn_tf.data import reader
from predrnn_tf.errors import DataError
from predrnn_tf.evaluation import baselines
from predrnn_tf.evaluation.metrics import sum_squared_error

PYSTEPS_ABSENT_LOG = ("pysteps is not installed: the test pass scores the persistence "
                      "baseline only (pip install pysteps adds extrapolation)")


def make_test_dataset(config: Config, data_dir: str) -> tf.data.Dataset:
    """The test split as ``[B, total_length, H, W, C]`` batches, last partial batch kept."""
    return reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                               config.total_length, shuffle=False, repeat=False,
                               deterministic=True, skip_corrupt=config.skip_corrupt,
                               drop_remainder=False, frame_size=config.img_width)


def make_test_baselines(config: Config, metadata: dict[str, Any] | None
                        ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines a test pass scores beside the model, by name.

    ``persistence`` always; ``extrapolation`` for one-channel frames with at least
    ``baselines.MOTION_FRAMES`` inputs when pysteps imports (else one log line says so);
    ``advection`` with ``config.advection_prior``, so the log shows what training adds to it.
    """
    found, skipped = baselines.default_baselines(config.output_length, metadata,
                                                 config.img_channel, config.input_length)
    if "pysteps" in skipped.get("extrapolation", ""):
        logging.info(PYSTEPS_ABSENT_LOG)
    if config.advection_prior:
        found["advection"] = baselines.make_baseline("advection", config.output_length)
    return found


def _per_frame_sums(truth: np.ndarray, predictions: Any) -> np.ndarray:
    """``[T]`` per-frame squared errors summed over the batch (float64)."""
    return tf.reduce_sum(sum_squared_error(truth, predictions), axis=0).numpy()


def batch_key(frames: np.ndarray, input_length: int) -> str:
    """A key naming one batch of sequences: its shape, split and every pixel (SHA-256)."""
    digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes())
    digest.update(f"{frames.shape}:{frames.dtype}:{input_length}".encode())
    return digest.hexdigest()


class BaselineCache:
    """The baselines' per-frame squared-error sums of each test batch, computed once.

    Args:
      forecasters: name -> ``inputs [B, T_in, H, W, C] -> [B, T_out, H, W, C]`` in [0, 1].
    """

    def __init__(self, forecasters: dict[str, Callable[[np.ndarray], Any]]):
        self.forecasters = dict(forecasters)
        self.forecast_batches = 0  # batches forecast by the baselines (not from the cache)
        self._sums: dict[str, dict[str, np.ndarray]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.forecasters)

    def sums(self, frames: np.ndarray, input_length: int) -> dict[str, np.ndarray]:
        """name -> ``[T_out]`` per-frame squared errors summed over the batch ``frames``."""
        key = batch_key(frames, input_length)
        if key not in self._sums:
            inputs, truth = frames[:, :input_length], frames[:, input_length:]
            self._sums[key] = {}
            for name, forecast in list(self.forecasters.items()):
                try:
                    predictions = np.asarray(forecast(inputs), np.float32)
                except Exception as error:  # noqa: BLE001 (a side score never stops training)
                    logging.warning("The %s baseline failed on a test batch (%s: %s): the "
                                    "test pass drops it.", name, type(error).__name__, error)
                    del self.forecasters[name]
                    continue
                self._sums[key][name] = _per_frame_sums(truth, predictions)
            self.forecast_batches += 1
        return {name: self._sums[key][name] for name in self.forecasters}


def _scores(totals: np.ndarray, count: int) -> dict[str, Any]:
    per_frame = totals / count
    return {"mse": float(per_frame.mean()), "per_frame": {"mse": per_frame.tolist()}}


def run_test_pass(forecast_fn, dataset, config: Config,
                  baseline_cache: BaselineCache | None = None) -> dict[str, Any]:
    """Per-frame MSE of the model and of the baselines on the same test sequences.

    Args:
      forecast_fn: ``[B, input_length, H, W, C] -> [B, output_length, H, W, C]``.
      dataset: batches ``[B, total_length, H, W, C]`` (see :func:`make_test_dataset`).
      config: ``input_length``, ``output_length`` and ``num_test_batches`` (0: all).
      baseline_cache: the run's :class:`BaselineCache`; None scores persistence alone.

    Returns:
      ``{"mse": float, "per_frame": {"mse": [T floats]}, "baselines": {NAME: {"mse": ...,
      "per_frame": {"mse": [...]}}}, "persistence_mse": float, "num_sequences": n}``;
      ``mse`` averages the per-frame values, as ``metrics.json``.
    """
    if baseline_cache is None:
        baseline_cache = BaselineCache({"persistence": baselines.PersistenceBaseline(
            config.output_length)})
    totals = np.zeros(config.output_length)
    baseline_totals = {name: np.zeros(config.output_length) for name in baseline_cache.names}
    count = 0
    for index, batch in enumerate(dataset):
        if config.num_test_batches and index >= config.num_test_batches:
            break
        frames = np.asarray(batch, np.float32)
        inputs, truth = frames[:, :config.input_length], frames[:, config.input_length:]
        totals += _per_frame_sums(truth, np.asarray(forecast_fn(tf.constant(inputs)),
                                                    np.float32))
        for name, sums in baseline_cache.sums(frames, config.input_length).items():
            baseline_totals[name] += sums
        count += frames.shape[0]
    if count == 0:
        raise DataError("the test split yielded no sequence to evaluate")
    result = _scores(totals, count)
    result["baselines"] = {name: _scores(baseline_totals[name], count)
                           for name in baseline_cache.names}  # a dropped one is left out
    if "persistence" in result["baselines"]:  # the headline of the train command's JSON line
        result["persistence_mse"] = result["baselines"]["persistence"]["mse"]
    result["num_sequences"] = count
    return result
