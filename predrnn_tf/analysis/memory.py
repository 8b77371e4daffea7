"""The memory-increment analysis of the paper's Fig. 3: are delta C and delta M separable?

For each test sequence, layer and step, the increments of the cell memory
(``delta_c = i * g``) and of the spatiotemporal memory (``delta_m = i' * g'``) of every
ST-LSTM (and MIM-block) cell are collected during a test-time forecast. Each increment
``[Hp, Wp, C]`` is flattened, scaled to unit length (the decoupling loss is a cosine) and
projected to ``PROJECTED_SIZE`` dimensions by one fixed Gaussian random projection per layer
(Johnson-Lindenstrauss: distances and cosines are kept approximately, memory stays small).

Separation scores that need no eyes (higher = more separable):

* ``linear_probe_accuracy``: a ridge least-squares linear classifier C-vs-M trained on the
  increments of the first half of the sequences, tested on the second half (0.5 = chance);
* ``silhouette``: the mean silhouette of the two groups (Euclidean, on the projections);
* ``mean_abs_cosine``: mean |cosine| between the paired raw increments of the same
  (sequence, layer, step), the quantity the decoupling loss pushes down (before its adapter).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from predrnn_tf.analysis.probes import increment_cells, transform_cell_outputs
from predrnn_tf.config import Config
from predrnn_tf.training.schedules import forecast_mask

PROJECTED_SIZE = 128
RIDGE = 1e-3


def _recorder(store: list[tuple[tf.Tensor, tf.Tensor]]):
    def record(outputs):
        store.append((outputs[-2], outputs[-1]))
        return outputs
    return record


def batch_increments(model, frames: tf.Tensor, mask: tf.Tensor
                     ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """``[layer][step] -> (delta_c, delta_m)``, each ``[B, Hp, Wp, C]``, for one batch."""
    cells = increment_cells(model)
    stores: list[list[tuple[tf.Tensor, tf.Tensor]]] = [[] for _ in cells]
    with _probing(cells, stores):
        model(frames, mask)
    return [[(np.asarray(c, np.float32), np.asarray(m, np.float32)) for c, m in store]
            for store in stores]


class _probing:
    """Probes several cells at once (nested :func:`transform_cell_outputs`)."""

    def __init__(self, cells, stores):
        self.contexts = [transform_cell_outputs(cell, _recorder(store))
                         for cell, store in zip(cells, stores)]

    def __enter__(self):
        for context in self.contexts:
            context.__enter__()

    def __exit__(self, *exc):
        for context in reversed(self.contexts):
            context.__exit__(*exc)
        return False


def _unit_rows(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)


def collect_increments(model, config: Config, batches: Iterable[Any], num_sequences: int = 32,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Projected unit increments of up to ``num_sequences`` test sequences.

    Returns:
      ``{"features": [2N, PROJECTED_SIZE], "is_m": [2N] 0/1, "layer": [2N], "step": [2N],
      "sequence": [2N], "cosine": [N] |cos(delta_c, delta_m)| of the pairs}``.
    """
    rng = np.random.default_rng(seed)
    projections: dict[int, np.ndarray] = {}
    parts: dict[str, list[np.ndarray]] = {key: [] for key in
                                          ("features", "is_m", "layer", "step", "sequence",
                                           "cosine")}
    used = 0
    for batch in batches:
        frames = tf.cast(batch[:, :config.total_length][:num_sequences - used], tf.float32)
        size = int(frames.shape[0])
        increments = batch_increments(model, frames, forecast_mask(config, size))
        for layer, steps in enumerate(increments):
            for step, (delta_c, delta_m) in enumerate(steps):
                unit_c, unit_m = _unit_rows(delta_c), _unit_rows(delta_m)
                if layer not in projections:
                    projections[layer] = rng.standard_normal(
                        (unit_c.shape[1], PROJECTED_SIZE)) / np.sqrt(PROJECTED_SIZE)
                projection = projections[layer]
                parts["features"] += [unit_c @ projection, unit_m @ projection]
                parts["is_m"] += [np.zeros(size), np.ones(size)]
                for _ in range(2):
                    parts["layer"].append(np.full(size, layer))
                    parts["step"].append(np.full(size, step))
                    parts["sequence"].append(np.arange(used, used + size))
                parts["cosine"].append(np.abs(np.sum(unit_c * unit_m, axis=1)))
        used += size
        if used >= num_sequences:
            break
    if not used:
        raise ValueError("the test set yielded no sequence for the memory analysis")
    return {key: np.concatenate(values) for key, values in parts.items()}


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray,
                          train_rows: np.ndarray) -> float:
    """Held-out accuracy of a ridge least-squares linear classifier (labels 0/1)."""
    test_rows = ~train_rows
    if not train_rows.any() or not test_rows.any():
        raise ValueError("the linear probe needs sequences in both halves (use more sequences)")
    design = np.concatenate([features, np.ones((features.shape[0], 1))], axis=1)
    train, target = design[train_rows], 2.0 * labels[train_rows] - 1.0
    gram = train.T @ train + RIDGE * train.shape[0] * np.eye(train.shape[1])
    weights = np.linalg.solve(gram, train.T @ target)
    predicted = (design[test_rows] @ weights) > 0
    return float(np.mean(predicted == (labels[test_rows] > 0.5)))


def silhouette_score(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette ``(b - a) / max(a, b)`` of two groups, Euclidean distances."""
    squared = np.sum(features ** 2, axis=1)
    distances = np.sqrt(np.maximum(
        squared[:, None] + squared[None, :] - 2.0 * features @ features.T, 0.0))
    scores = []
    for label in (0, 1):
        own, other = labels == label, labels != label
        if own.sum() < 2 or not other.any():
            raise ValueError("the silhouette needs at least two increments of each kind")
        inside = distances[np.ix_(own, own)].sum(axis=1) / (own.sum() - 1)
        outside = distances[np.ix_(own, other)].mean(axis=1)
        scores.append((outside - inside) / np.maximum(np.maximum(inside, outside), 1e-12))
    return float(np.mean(np.concatenate(scores)))


def separation_scores(collected: dict[str, np.ndarray]) -> dict[str, Any]:
    """The three scores, pooled over layers and per layer."""
    sequences = collected["sequence"]
    train_rows = sequences < (sequences.max() + 1) / 2.0

    def scores(rows: np.ndarray) -> dict[str, float]:
        features, labels = collected["features"][rows], collected["is_m"][rows]
        return {"linear_probe_accuracy": linear_probe_accuracy(features, labels,
                                                               train_rows[rows]),
                "silhouette": silhouette_score(features, labels)}

    everything = np.ones(len(sequences), bool)
    result = {"pooled": scores(everything), "per_layer": {}}
    result["pooled"]["mean_abs_cosine"] = float(np.mean(collected["cosine"]))
    for layer in np.unique(collected["layer"]):
        result["per_layer"][str(int(layer))] = scores(collected["layer"] == layer)
    result["num_increments"] = int(len(sequences))
    result["num_sequences"] = int(sequences.max() + 1)
    return result


def tsne_embedding(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the features (scikit-learn, an optional extra): ``[N, 2]``."""
    try:
        from sklearn.manifold import TSNE
    except ImportError as error:
        raise ImportError("the t-SNE picture needs scikit-learn: pip install scikit-learn "
                          "(the separation scores do not)") from error
    perplexity = float(min(30.0, max(2.0, (features.shape[0] - 1) / 3.0)))
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
    return tsne.fit_transform(features)


def draw_scatter(points: np.ndarray, is_m: np.ndarray, title: str,
                 size: int = 420) -> np.ndarray:
    """A BGR scatter plot of 2-D points, delta C in blue and delta M in orange."""
    import cv2

    from predrnn_tf.evaluation.charts import BACKGROUND, PALETTE, put_text

    image = np.full((size, size, 3), BACKGROUND, np.uint8)
    margin, top = 20, 40
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-12)
    scaled = (points - low) / span
    pixels_x = margin + scaled[:, 0] * (size - 2 * margin)
    pixels_y = top + (1.0 - scaled[:, 1]) * (size - top - margin)
    for x, y, label in zip(pixels_x, pixels_y, is_m):
        cv2.circle(image, (int(x), int(y)), 2, PALETTE[int(label)], -1, cv2.LINE_AA)
    put_text(image, title, (margin, 18))
    put_text(image, "delta C", (margin, 34), color=PALETTE[0])
    put_text(image, "delta M", (margin + 80, 34), color=PALETTE[1])
    return image
