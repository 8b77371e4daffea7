"""The gradient analyses of the paper's Fig. 8, for any trained model.

Notation (1-based frames, as in the paper): the model reads frame ``t`` at unroll step
``t - 1`` and produces the first layer's hidden state ``H_t^1`` there (t = 1 .. T+K-1);
prediction ``s`` (0-based) is frame ``s + 2``; ``L_t`` is the squared error of predicted
frame ``t`` (mean over pixels, per sequence). T is ``input_length``, T+K ``total_length``.
The forecast runs as at test time: true inputs, then the model's own predictions.

* left curve (memory flow): ``||dL_{T+K} / dH_t^1||`` for t = 1 .. T+K-1;
* right curve (reverse scheduled sampling): ``(1/(T-1)) sum_{tau=2..T} ||dL_t / dH_tau^1||``
  for t = T+1 .. T+K.

Norms are taken per sequence over (H, W, C) and averaged over the sequences. Each curve is
also given divided by its largest value (``*_normalised``), which is how the paper compares
models of different gradient scale.

The gradients are the ones training computes: for MIM, OpenSTL's detached MIM-S memory S
(``stop_stationary_gradient``) passes none, as in training.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf.analysis.probes import first_layer_cell, transform_cell_outputs
from predrnn_tf.config import Config
from predrnn_tf.training.schedules import forecast_mask


def frame_losses(predictions: tf.Tensor, frames: tf.Tensor) -> tf.Tensor:
    """``L_t`` per sequence: ``[B, T-1]`` for predicted frames 2..T (mean over pixels)."""
    difference = tf.cast(predictions, tf.float64) - tf.cast(frames[:, 1:], tf.float64)
    return tf.reduce_mean(tf.square(difference), axis=[2, 3, 4])


def perturbed_unroll(model, frames: tf.Tensor, mask: tf.Tensor,
                     perturbations: list[tf.Tensor]) -> tf.Tensor:
    """Frame losses ``[B, T-1]`` of an unroll where ``H_t^1 += perturbations[t-1]``.

    Args:
      model: a built PredRNN-family or MIM model.
      frames: ``[B, T, H, W, C]``.
      mask: the sampling mask of ``model(frames, mask)``.
      perturbations: one ``[B, Hp, Wp, num_hidden[0]]`` tensor per unroll step (T - 1).
    """
    calls = []

    def add_perturbation(outputs):
        index = len(calls)
        calls.append(index)
        hidden = outputs[0] + tf.cast(perturbations[index], outputs[0].dtype)
        return (hidden,) + outputs[1:]

    with transform_cell_outputs(first_layer_cell(model), add_perturbation):
        predictions, _ = model(frames, mask)
    if len(calls) != len(perturbations):
        raise ValueError(f"the first cell ran {len(calls)} times, expected "
                         f"{len(perturbations)} steps")
    return frame_losses(predictions, frames)


def hidden_state_gradients(model, frames: tf.Tensor, mask: tf.Tensor,
                           loss_frames: Iterable[int]) -> dict[int, np.ndarray]:
    """Per-sequence norms ``||dL_t / dH_tau^1||`` for every step tau.

    Args:
      model: a built model (eager; the cells' calls are probed).
      frames: ``[B, T, H, W, C]`` float.
      mask: the sampling mask.
      loss_frames: the 1-based frames t whose losses ``L_t`` are differentiated (2 .. T).

    Returns:
      ``{t: [B, T-1] array}``: column ``tau - 1`` holds ``||dL_t / dH_tau^1||`` per sequence.
    """
    frames = tf.convert_to_tensor(frames)
    batch, steps = int(frames.shape[0]), int(frames.shape[1]) - 1
    width = int(frames.shape[2]) // model.patch_size
    channels = model.num_hidden[0]
    perturbations = [tf.zeros([batch, width, width, channels], tf.float64)
                     for _ in range(steps)]
    with tf.GradientTape(persistent=True) as tape:
        for perturbation in perturbations:
            tape.watch(perturbation)
        losses = perturbed_unroll(model, frames, mask, perturbations)
        per_frame = {frame: tf.reduce_sum(losses[:, frame - 2]) for frame in loss_frames}
    norms = {}
    for frame, loss in per_frame.items():
        gradients = tape.gradient(loss, perturbations)
        columns = [np.zeros(batch) if gradient is None else
                   tf.norm(tf.reshape(gradient, [batch, -1]), axis=1).numpy()
                   for gradient in gradients]
        norms[frame] = np.stack(columns, axis=1)
    del tape
    return norms


def _normalised(values: np.ndarray) -> list[float]:
    largest = float(np.max(values)) if values.size else 0.0
    return [float(value / largest) if largest > 0 else 0.0 for value in values]


def gradient_curves(model, config: Config, batches: Iterable[Any],
                    num_sequences: int = 16) -> dict[str, Any]:
    """The two Fig. 8 curves over (up to) ``num_sequences`` test sequences.

    Args:
      model: the trained model.
      config: its configuration (input_length, total_length, mask layout).
      batches: float ``[B, T, H, W, C]`` test batches with T >= total_length.
      num_sequences: sequences used (the first ones).

    Returns:
      A JSON-ready dict: ``memory_flow`` (left curve, x = t = 1..T+K-1),
      ``reverse_sampling`` (right curve, x = t = T+1..T+K), each raw and normalised, and
      the number of sequences.
    """
    input_length, total_length = config.input_length, config.total_length
    output_frames = list(range(input_length + 1, total_length + 1))
    left, right, used = [], [], 0
    for batch in batches:
        frames = tf.cast(batch[:, :total_length][:num_sequences - used], tf.float32)
        mask = forecast_mask(config, int(frames.shape[0]))
        norms = hidden_state_gradients(model, frames, mask, output_frames)
        left.append(norms[total_length])
        # tau = 2 .. T are columns 1 .. T-1.
        right.append(np.stack([norms[frame][:, 1:input_length].mean(axis=1)
                               for frame in output_frames], axis=1))
        used += int(frames.shape[0])
        if used >= num_sequences:
            break
    if not used:
        raise ValueError("the test set yielded no sequence for the gradient analysis")
    left_curve = np.concatenate(left).mean(axis=0)
    right_curve = np.concatenate(right).mean(axis=0)
    return {
        "num_sequences": used,
        "memory_flow": {"t": list(range(1, total_length)),
                        "norm": [float(value) for value in left_curve],
                        "norm_normalised": _normalised(left_curve),
                        "definition": "||dL_{T+K} / dH_t^1||, t = 1..T+K-1"},
        "reverse_sampling": {"t": output_frames,
                             "norm": [float(value) for value in right_curve],
                             "norm_normalised": _normalised(right_curve),
                             "definition": "(1/(T-1)) sum_{tau=2..T} ||dL_t / dH_tau^1||, "
                                           "t = T+1..T+K"},
    }
