"""The test pass during training: the same reading, forecast and MSE as ``evaluate``.

The test split is read as :mod:`predrnn_tf.cli.evaluate` reads it (in order, keeping the
last partial batch), forecast with :func:`predrnn_tf.models.forecasting.make_forecast_function`
and scored with :func:`predrnn_tf.evaluation.metrics.sum_squared_error`, so the numbers of
the training log and of ``metrics.json`` agree on the same checkpoint. ``mse`` is named as
evaluation names it: the per-frame MSE (sum over a frame's pixels), averaged over frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import reader
from predrnn_tf.errors import DataError
from predrnn_tf.evaluation.metrics import sum_squared_error


def make_test_dataset(config: Config, data_dir: str) -> tf.data.Dataset:
    """The test split as ``[B, total_length, H, W, C]`` batches, last partial batch kept."""
    return reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                               config.total_length, shuffle=False, repeat=False,
                               deterministic=True, skip_corrupt=config.skip_corrupt,
                               drop_remainder=False, frame_size=config.img_width)


def _per_frame_sums(truth: np.ndarray, predictions: Any) -> np.ndarray:
    """``[T]`` per-frame squared errors summed over the batch (float64)."""
    return tf.reduce_sum(sum_squared_error(truth, predictions), axis=0).numpy()


def run_test_pass(forecast_fn, dataset, config: Config) -> dict[str, Any]:
    """Per-frame MSE of the model and of persistence (repeating the last input frame).

    Args:
      forecast_fn: ``[B, input_length, H, W, C] -> [B, output_length, H, W, C]``.
      dataset: batches ``[B, total_length, H, W, C]`` (see :func:`make_test_dataset`).
      config: ``input_length``, ``output_length`` and ``num_test_batches`` (0: all).

    Returns:
      ``{"mse": float, "per_frame": {"mse": [T floats]}, "persistence_mse": float,
      "num_sequences": n}``; ``mse`` averages the per-frame values, as ``metrics.json``.
    """
    totals = np.zeros(config.output_length)
    persistence_totals = np.zeros(config.output_length)
    count = 0
    for index, batch in enumerate(dataset):
        if config.num_test_batches and index >= config.num_test_batches:
            break
        frames = np.asarray(batch, np.float32)
        inputs = frames[:, :config.input_length]
        truth = frames[:, config.input_length:]
        predictions = np.asarray(forecast_fn(tf.constant(inputs)), np.float32)
        persistence = np.repeat(inputs[:, -1:], config.output_length, axis=1)
        totals += _per_frame_sums(truth, predictions)
        persistence_totals += _per_frame_sums(truth, persistence)
        count += frames.shape[0]
    if count == 0:
        raise DataError("the test split yielded no sequence to evaluate")
    per_frame = totals / count
    return {"mse": float(per_frame.mean()), "per_frame": {"mse": per_frame.tolist()},
            "persistence_mse": float((persistence_totals / count).mean()),
            "num_sequences": count}
