"""Predicted vs true mean pixel intensity per forecast frame (the paper's Fig. 9).

``mean intensity`` of a frame is the mean of its pixels in [0, 1]; per forecast frame it is
averaged over the test sequences. Persistence (the last input frame, repeated) is tracked
beside the model; the extrapolation baseline gets its own curve when it is evaluated
(``--baseline=extrapolation``), like every other score.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from predrnn_tf.evaluation import charts, plots

PLOT_FILENAME = "mean_intensity.png"


class MeanIntensity:
    """Accumulates per-frame mean intensities of truth, forecast and persistence.

    Args:
      output_length: forecast frames per sequence.
    """

    def __init__(self, output_length: int):
        self.output_length = output_length
        self.sums = {name: np.zeros(output_length) for name in
                     ("truth", "prediction", "persistence")}
        self.count = 0

    def update(self, inputs: np.ndarray, truth: np.ndarray, predictions: np.ndarray) -> None:
        """Adds a batch: inputs ``[B, T_in, H, W, C]``, truth/predictions ``[B, K, H, W, C]``.

        Predictions are clipped to [0, 1], as every other score sees them.
        """
        if truth.shape != predictions.shape or truth.shape[1] != self.output_length:
            raise ValueError(f"truth {truth.shape} and predictions {predictions.shape} must be "
                             f"[B, {self.output_length}, H, W, C]")
        batch = truth.shape[0]
        self.sums["truth"] += truth.reshape(batch, self.output_length, -1).mean(axis=2).sum(0)
        clipped = np.clip(predictions, 0.0, 1.0).reshape(batch, self.output_length, -1)
        self.sums["prediction"] += clipped.mean(axis=2).sum(axis=0)
        last = inputs[:, -1].reshape(batch, -1).mean(axis=1).sum()
        self.sums["persistence"] += last
        self.count += batch

    def result(self) -> dict[str, Any]:
        """``{"truth": [K], "prediction": [K], "persistence": [K], "num_sequences": N}``."""
        if not self.count:
            raise ValueError("no sequence was added to the mean intensity")
        curves = {name: [float(value) for value in total / self.count]
                  for name, total in self.sums.items()}
        return {**curves, "num_sequences": self.count}


def write_plot(output_dir: str, result: dict[str, Any], name: str) -> str:
    """Draws truth, forecast and persistence mean intensity per frame; returns the path."""
    series = {"truth": result["truth"], name: result["prediction"],
              "persistence": result["persistence"]}
    image = charts.draw_line_chart(series, "mean pixel intensity per forecast frame")
    path = os.path.join(output_dir, PLOT_FILENAME)
    plots.write_image(path, image)
    return path
