"""Training fidelity against the official code: same data, same updates, same test metric.

Pieces shared by ``tools/fidelity.py`` that need no PyTorch:

* :func:`load_split` reads a whole split into uint8 memory, as the official ``InputHandle``
  holds its ``.npz``;
* :class:`OfficialOrder` is the official train order (``run.py`` / ``core/data_provider/
  mnist.py``): a fresh uniform permutation per epoch, batches of ``batch_size`` in order, and
  the epoch ends one batch early (``no_batch_left`` is ``position >= total - batch``);
* :func:`official_reverse_mask` draws ``reserve_schedule_sampling_exp(itr)``'s 0/1 flags
  (``itr`` counts from 1) from a NumPy generator;
* :func:`per_frame_test_mse` is the official test metric: predictions clipped to [0, 1],
  squared error summed over the pixels of a frame, averaged over sequences and frames;
* :func:`summarise_seeds` gives mean, sample standard deviation and range per variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import schema
from predrnn_tf.training.schedules import reverse_sampling_probabilities


def load_split(data_dir: str, name: str, split: str, total_length: int,
               limit: int = 0) -> np.ndarray:
    """The sequences of one split in file order: uint8 ``[N, T, H, W, C]``.

    Args:
      data_dir, name, split: the dataset.
      total_length: frames kept per sequence (the first ones).
      limit: at most this many sequences (0: all).
    """
    paths = schema.shard_paths(data_dir, name, split)
    if not paths:
        raise FileNotFoundError(f"no {split} shards {name}-{split}-*-of-*.tfrecord in {data_dir}")
    records = tf.data.TFRecordDataset(paths)
    if limit:
        records = records.take(limit)
    sequences = records.map(lambda record: schema.parse_sequence(record)[:total_length],
                            num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    return np.concatenate(list(sequences.as_numpy_iterator()))


class OfficialOrder:
    """The official train batches: a new permutation per epoch, the last batch dropped.

    Args:
      num_sequences: sequences in the train split.
      batch_size: sequences per batch.
      seed: seed of the permutations (the official code uses Python's ``random``).
    """

    def __init__(self, num_sequences: int, batch_size: int, seed: int):
        if num_sequences < 2 * batch_size:
            raise ValueError(f"the official loader needs at least 2 batches of {batch_size}, "
                             f"got {num_sequences} sequences")
        self.num_sequences = num_sequences
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.indices = np.zeros(0, np.int64)
        self.position = num_sequences  # forces a permutation on the first call

    def next_indices(self) -> np.ndarray:
        """The indices of the next batch (``begin(do_shuffle=True)`` when none is left)."""
        if self.position >= self.num_sequences - self.batch_size:
            self.indices = self.rng.permutation(self.num_sequences)
            self.position = 0
        batch = self.indices[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def get_state(self) -> dict:
        """Everything the next batches depend on (for a resumable loop)."""
        return {"rng": self.rng.bit_generator.state, "indices": self.indices.tolist(),
                "position": self.position}

    def set_state(self, state: dict) -> None:
        """Continues from :meth:`get_state`'s result."""
        self.rng.bit_generator.state = state["rng"]
        self.indices = np.asarray(state["indices"], np.int64)
        self.position = int(state["position"])


def official_reverse_mask(config: Config, iteration: int, rng: np.random.Generator
                          ) -> np.ndarray:
    """``reserve_schedule_sampling_exp(iteration)`` as ``[B, T-2]`` 0/1 flags (float32)."""
    encoder, decoder = reverse_sampling_probabilities(
        iteration, config.r_sampling_step_1, config.r_sampling_step_2, config.r_exp_alpha)
    encoder_flags = rng.random((config.batch_size, config.input_length - 1)) < encoder
    decoder_flags = rng.random(
        (config.batch_size, config.total_length - config.input_length - 1)) < decoder
    return np.concatenate([encoder_flags, decoder_flags], axis=1).astype(np.float32)


def per_frame_test_mse(forecast: Callable[[np.ndarray], np.ndarray], sequences: np.ndarray,
                       input_length: int, batch_size: int = 8) -> dict[str, Any]:
    """The official test MSE of a forecaster over uint8 sequences ``[N, T, H, W, C]``.

    Args:
      forecast: float32 ``[B, input_length, H, W, C]`` in [0, 1] -> ``[B, K, H, W, C]``.
      sequences: the test split.
      input_length: frames given.
      batch_size: sequences per forecast call.

    Returns:
      ``{"mse": per-frame MSE, "per_frame": [K], "num_sequences": N}``.
    """
    totals, count = None, 0
    for start in range(0, len(sequences), batch_size):
        frames = sequences[start:start + batch_size].astype(np.float32) / 255.0
        truth = frames[:, input_length:]
        predictions = np.clip(np.asarray(forecast(frames[:, :input_length])), 0.0, 1.0)
        errors = np.square(predictions - truth).reshape(truth.shape[0], truth.shape[1], -1)
        sums = errors.sum(axis=2).sum(axis=0)  # [K]
        totals = sums if totals is None else totals + sums
        count += truth.shape[0]
    per_frame = totals / count
    return {"mse": float(per_frame.mean()), "per_frame": [float(v) for v in per_frame],
            "num_sequences": int(count)}


def summarise_seeds(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{variant: {"mean", "std" (sample), "min", "max", "seeds", "values"}}`` of ``mse``."""
    variants: dict[str, list[tuple[int, float]]] = {}
    for result in results:
        variants.setdefault(result["variant"], []).append((result["seed"], result["mse"]))
    summary = {}
    for variant, pairs in variants.items():
        values = np.array([value for _, value in pairs])
        std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        summary[variant] = {"mean": float(values.mean()), "std": std,
                            "min": float(values.min()), "max": float(values.max()),
                            "seeds": [seed for seed, _ in pairs],
                            "values": [float(value) for value in values]}
    return summary


def format_summary(summary: dict[str, dict[str, Any]], iterations: int,
                   official_reference: float | None = None) -> list[str]:
    """Markdown rows: variant, seeds, mean +- std, range, and the gap to a reference."""
    lines = [f"| variant ({iterations} iterations) | seeds | per-frame test MSE, mean +- std "
             f"| min .. max | vs official |", "|---|---|---|---|---|"]
    reference = official_reference
    if reference is None and "official" in summary:
        reference = summary["official"]["mean"]
    for variant, row in summary.items():
        gap = f"{100.0 * (row['mean'] / reference - 1.0):+.1f}%" if reference else "n/a"
        std = "n/a (1 seed)" if math.isnan(row["std"]) else f"{row['std']:.2f}"
        lines.append(f"| {variant} | {','.join(map(str, row['seeds']))} | "
                     f"{row['mean']:.2f} +- {std} | {row['min']:.2f} .. {row['max']:.2f} | "
                     f"{gap} |")
    return lines


def official_npz_batch(content: dict[str, np.ndarray], indices: Sequence[int]) -> np.ndarray:
    """``InputHandle.get_batch`` of the official ``core/data_provider/mnist.py``.

    The official loader keeps the npz in memory; a batch is, per index ``i``, the frames
    ``input_raw_data[start:start + length]`` of ``clips[0, i]`` (input part) followed by
    those of ``clips[1, i]`` (output part), each ``[T, C, H, W]`` transposed to
    ``[T, H, W, C]``, as float32 (the stored values, not rescaled).

    Args:
      content: the npz arrays ``clips`` ``[2, N, 2]`` and ``input_raw_data`` ``[F, C, H, W]``.
      indices: the sequences of the batch (``current_batch_indices``).

    Returns:
      float32 ``[B, T_in + T_out, H, W, C]``, what ``run.py`` passes to ``reshape_patch``.
    """
    clips, frames = content["clips"], content["input_raw_data"]
    parts = []
    for part in range(2):  # input_batch(), then output_batch()
        length = max(int(clips[part, index, 1]) for index in indices)
        batch = np.zeros((len(indices), length, *frames.shape[1:]), np.float32)
        batch = np.transpose(batch, (0, 1, 3, 4, 2))
        for row, index in enumerate(indices):
            begin = int(clips[part, index, 0])
            data_slice = frames[begin:begin + int(clips[part, index, 1])]
            batch[row, :data_slice.shape[0]] = np.transpose(data_slice, (0, 2, 3, 1))
        parts.append(batch)
    return np.concatenate(parts, axis=1).astype(np.float32)
