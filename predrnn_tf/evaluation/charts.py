"""Line charts drawn with OpenCV only: axes, grid, legend, one chart per metric.

Images are uint8 BGR ``[H, W, 3]`` (OpenCV's order). matplotlib is not needed. Imports
nothing of predrnn_tf.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)
GRID = (225, 225, 225)
# Distinct line colours (BGR), Tableau 10.
PALETTE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
           (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23))
FONT = cv2.FONT_HERSHEY_SIMPLEX
CHART_SIZE = (420, 300)  # width, height


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45,
             color: tuple[int, int, int] = TEXT, thickness: int = 1) -> None:
    """Anti-aliased text with its baseline-left corner at ``origin``."""
    cv2.putText(image, text, (int(origin[0]), int(origin[1])), FONT, scale, color, thickness,
                cv2.LINE_AA)


def text_width(text: str, scale: float = 0.45, thickness: int = 1) -> int:
    """Width in pixels of ``text`` drawn by :func:`put_text`."""
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        padding = abs(low) * 0.05 or 1.0
        low, high = low - padding, high + padding
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(factor * magnitude for factor in (1, 2, 2.5, 5, 10)
                if factor * magnitude >= raw_step)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def format_tick(value: float) -> str:
    """Short tick label: 0.25, 40, 1.2e+03."""
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


@dataclasses.dataclass(frozen=True)
class ChartArea:
    """Where a line chart's plot sits in its image, and the value range it shows."""

    left: int
    top: int
    plot_width: int
    plot_height: int
    y_low: float
    y_high: float
    x_high: int

    def to_pixel(self, frame: float, value: float) -> tuple[int, int]:
        """Pixel (x, y) of ``value`` at forecast frame ``frame`` (1-based)."""
        x = self.left + (frame - 1) / (self.x_high - 1) * self.plot_width
        y = self.top + (1.0 - (value - self.y_low) / (self.y_high - self.y_low)) \
            * self.plot_height
        return int(round(x)), int(round(y))


def draw_chart_axes(image: np.ndarray, area: ChartArea, y_ticks: Sequence[float], length: int,
                    title: str, x_label: str) -> None:
    """Draws the grid, tick labels, frame, title and x label of a chart in place."""
    left, top, plot_width, plot_height = area.left, area.top, area.plot_width, area.plot_height
    for tick in y_ticks:
        _, y = area.to_pixel(1, tick)
        cv2.line(image, (left, y), (left + plot_width, y), GRID, 1)
        label = format_tick(tick)
        put_text(image, label, (left - 6 - text_width(label, 0.4), y + 4), 0.4)
    x_step = max(1, int(math.ceil(length / 10)))
    for frame in range(1, length + 1, x_step):
        x, _ = area.to_pixel(frame, area.y_low)
        cv2.line(image, (x, top + plot_height), (x, top + plot_height + 4), TEXT, 1)
        put_text(image, str(frame), (x - text_width(str(frame), 0.4) // 2,
                                     top + plot_height + 17), 0.4)
    cv2.rectangle(image, (left, top), (left + plot_width, top + plot_height), TEXT, 1)
    put_text(image, title, (left, top - 9), 0.5, thickness=1)
    put_text(image, x_label, (left + plot_width // 2 - text_width(x_label, 0.4) // 2,
                              image.shape[0] - 6), 0.4)


def draw_chart_series(image: np.ndarray, area: ChartArea, values: Sequence[np.ndarray]) -> None:
    """Draws each series as a coloured line with dots (NaN leaves a gap) in place."""
    for index, value in enumerate(values):
        color = PALETTE[index % len(PALETTE)]
        points = [area.to_pixel(frame + 1, item) if np.isfinite(item) else None
                  for frame, item in enumerate(value)]
        for start, end in zip(points[:-1], points[1:], strict=True):
            if start is not None and end is not None:
                cv2.line(image, start, end, color, 2, cv2.LINE_AA)
        for point in points:
            if point is not None:
                cv2.circle(image, point, 3, color, -1, cv2.LINE_AA)


def draw_chart_legend(image: np.ndarray, area: ChartArea, names: Sequence[str]) -> None:
    """Draws the legend box in the top right corner of the plot in place."""
    box_width = max(text_width(name, 0.4) for name in names) + 30
    x0, y0 = area.left + area.plot_width - box_width - 4, area.top + 6
    cv2.rectangle(image, (x0, y0), (x0 + box_width, y0 + 16 * len(names) + 4), BACKGROUND, -1)
    cv2.rectangle(image, (x0, y0), (x0 + box_width, y0 + 16 * len(names) + 4), GRID, 1)
    for index, name in enumerate(names):
        color = PALETTE[index % len(PALETTE)]
        y = y0 + 14 + 16 * index
        cv2.line(image, (x0 + 5, y - 4), (x0 + 22, y - 4), color, 2, cv2.LINE_AA)
        put_text(image, name, (x0 + 26, y), 0.4)


def draw_line_chart(series: dict[str, Sequence[float]], title: str, x_label: str = "frame",
                    size: tuple[int, int] = CHART_SIZE) -> np.ndarray:
    """A line chart of one or more series over frames 1..T with axes, grid and legend.

    Args:
      series: name -> values (NaN values leave gaps).
      title: drawn above the plot.
      x_label: label of the horizontal axis.
      size: (width, height) in pixels.

    Returns:
      uint8 BGR image.
    """
    width, height = size
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    left, right, top, bottom = 62, 12, 28, 40
    values = [np.asarray(value, np.float64) for value in series.values()]
    finite = np.concatenate([value[np.isfinite(value)] for value in values] or [np.zeros(0)])
    length = max((len(value) for value in values), default=1)
    y_ticks = nice_ticks(float(finite.min()), float(finite.max())) if finite.size else [0.0, 1.0]
    area = ChartArea(left=left, top=top, plot_width=width - left - right,
                     plot_height=height - top - bottom, y_low=y_ticks[0], y_high=y_ticks[-1],
                     x_high=max(length, 2))
    draw_chart_axes(image, area, y_ticks, length, title, x_label)
    draw_chart_series(image, area, values)
    if len(series) > 1:
        draw_chart_legend(image, area, list(series))
    return image


def tile_images(images: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Puts equally sized images on a grid, row by row, white where the grid is not full."""
    if not images:
        raise ValueError("tile_images needs at least one image")
    height, width = images[0].shape[:2]
    rows = int(math.ceil(len(images) / columns))
    canvas = np.full((rows * height, columns * width, 3), BACKGROUND, np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return canvas


def draw_metric_curves(per_frame: dict[str, dict[str, Sequence[float]]],
                       metric_names: Sequence[str], columns: int = 3) -> np.ndarray:
    """One chart per metric, every run overlaid (like the paper's per-frame figures).

    Args:
      per_frame: run name -> {metric name -> per-frame values}.
      metric_names: metrics to draw, in order; runs without a metric are left out of its chart.
      columns: charts per row.
    """
    charts = []
    for metric in metric_names:
        series = {run: values[metric] for run, values in per_frame.items() if metric in values}
        if series:
            charts.append(draw_line_chart(series, f"{metric} per frame"))
    if not charts:
        raise ValueError(f"no run has any of the metrics {list(metric_names)}")
    return tile_images(charts, min(columns, len(charts)))
