"""Pictures of an evaluation drawn with OpenCV only: line charts, radar colours, strips, GIFs.

Images are uint8 BGR ``[H, W, 3]`` (OpenCV's order). matplotlib is not needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

# The NWS reflectivity scale: (lower bound in dBZ, RGB). Below the first bound: background.
DBZ_LEVELS = (
    (5, (4, 233, 231)), (10, (1, 159, 244)), (15, (3, 0, 244)), (20, (2, 253, 2)),
    (25, (1, 197, 1)), (30, (0, 142, 0)), (35, (253, 248, 2)), (40, (229, 188, 0)),
    (45, (253, 149, 0)), (50, (253, 0, 0)), (55, (212, 0, 0)), (60, (188, 0, 0)),
    (65, (248, 0, 253)), (70, (152, 84, 198)), (75, (253, 253, 253)),
)
BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)
GRID = (225, 225, 225)
# Distinct line colours (BGR), Tableau 10.
PALETTE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
           (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23))
FONT = cv2.FONT_HERSHEY_SIMPLEX
CHART_SIZE = (420, 300)  # width, height
DISPLAY_MIN_SIZE = 96
NO_ECHO_DBZ = DBZ_LEVELS[0][0]


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
    plot_width, plot_height = width - left - right, height - top - bottom
    values = [np.asarray(value, np.float64) for value in series.values()]
    finite = np.concatenate([value[np.isfinite(value)] for value in values] or [np.zeros(0)])
    length = max((len(value) for value in values), default=1)
    y_ticks = nice_ticks(float(finite.min()), float(finite.max())) if finite.size else [0.0, 1.0]
    y_low, y_high = y_ticks[0], y_ticks[-1]
    x_high = max(length, 2)

    def to_pixel(frame: float, value: float) -> tuple[int, int]:
        x = left + (frame - 1) / (x_high - 1) * plot_width
        y = top + (1.0 - (value - y_low) / (y_high - y_low)) * plot_height
        return int(round(x)), int(round(y))

    for tick in y_ticks:
        _, y = to_pixel(1, tick)
        cv2.line(image, (left, y), (left + plot_width, y), GRID, 1)
        label = format_tick(tick)
        put_text(image, label, (left - 6 - text_width(label, 0.4), y + 4), 0.4)
    x_step = max(1, int(math.ceil(length / 10)))
    for frame in range(1, length + 1, x_step):
        x, _ = to_pixel(frame, y_low)
        cv2.line(image, (x, top + plot_height), (x, top + plot_height + 4), TEXT, 1)
        put_text(image, str(frame), (x - text_width(str(frame), 0.4) // 2,
                                     top + plot_height + 17), 0.4)
    cv2.rectangle(image, (left, top), (left + plot_width, top + plot_height), TEXT, 1)
    put_text(image, title, (left, top - 9), 0.5, thickness=1)
    put_text(image, x_label, (left + plot_width // 2 - text_width(x_label, 0.4) // 2,
                              height - 6), 0.4)
    for index, value in enumerate(values):
        color = PALETTE[index % len(PALETTE)]
        points = [to_pixel(frame + 1, item) if np.isfinite(item) else None
                  for frame, item in enumerate(value)]
        for start, end in zip(points[:-1], points[1:], strict=True):
            if start is not None and end is not None:
                cv2.line(image, start, end, color, 2, cv2.LINE_AA)
        for point in points:
            if point is not None:
                cv2.circle(image, point, 3, color, -1, cv2.LINE_AA)
    if len(series) > 1:
        names = list(series)
        box_width = max(text_width(name, 0.4) for name in names) + 30
        x0, y0 = left + plot_width - box_width - 4, top + 6
        cv2.rectangle(image, (x0, y0), (x0 + box_width, y0 + 16 * len(names) + 4),
                      BACKGROUND, -1)
        cv2.rectangle(image, (x0, y0), (x0 + box_width, y0 + 16 * len(names) + 4), GRID, 1)
        for index, name in enumerate(names):
            color = PALETTE[index % len(PALETTE)]
            y = y0 + 14 + 16 * index
            cv2.line(image, (x0 + 5, y - 4), (x0 + 22, y - 4), color, 2, cv2.LINE_AA)
            put_text(image, name, (x0 + 26, y), 0.4)
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


def dbz_lookup_table() -> np.ndarray:
    """BGR colour of each integer dBZ from -64 to 127, as ``[192, 3]`` (index dBZ + 64)."""
    table = np.empty((192, 3), np.uint8)
    for index in range(192):
        dbz = index - 64
        color = BACKGROUND
        for bound, rgb in DBZ_LEVELS:
            if dbz >= bound:
                color = rgb[::-1]
        table[index] = color
    return table


def colorize_dbz(dbz: np.ndarray) -> np.ndarray:
    """dBZ field ``[H, W]`` -> BGR image in the NWS colour scale (white below 5 dBZ)."""
    indices = np.clip(np.floor(np.nan_to_num(dbz, nan=-64.0)) + 64, 0, 191).astype(np.int64)
    return dbz_lookup_table()[indices]


def draw_dbz_colorbar(height: int, width: int = 70) -> np.ndarray:
    """A vertical colour bar of the dBZ scale with labels, ``[height, width, 3]``."""
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    levels = len(DBZ_LEVELS)
    top, bottom = 18, 10
    box_height = max(4, (height - top - bottom) // levels)
    put_text(image, "dBZ", (6, 13), 0.42)
    for index, (bound, rgb) in enumerate(reversed(DBZ_LEVELS)):
        y0 = top + index * box_height
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), rgb[::-1], -1)
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), GRID, 1)
        if box_height >= 9 or index % 2 == 0:
            put_text(image, str(bound), (27, y0 + box_height - 1), 0.38)
    return image


def frame_to_bgr(frame01: np.ndarray, value_mapping: dict[str, Any] | None) -> np.ndarray:
    """One [0, 1] frame ``[H, W, C]`` -> BGR: dBZ colours with a mapping, else gray/RGB."""
    frame01 = np.clip(np.asarray(frame01, np.float32), 0.0, 1.0)
    if value_mapping:
        dbz = frame01[..., 0] * 255.0 * float(value_mapping["scale"]) + float(
            value_mapping["offset"])
        return colorize_dbz(dbz)
    pixels = (frame01 * 255.0).astype(np.uint8)
    if pixels.shape[-1] == 1:
        return np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels[..., ::-1])  # RGB -> BGR


def display_scale(height: int) -> int:
    """Integer upscaling so small frames (e.g. 64x64) stay readable."""
    return max(1, int(math.ceil(DISPLAY_MIN_SIZE / max(height, 1))))


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def draw_prediction_strips(inputs: np.ndarray, truth: np.ndarray, predictions: np.ndarray,
                           value_mapping: dict[str, Any] | None = None,
                           title: str = "") -> np.ndarray:
    """For each sequence: a row "truth" (inputs then true future) and a row "forecast".

    Args:
      inputs: ``[N, T_in, H, W, C]`` in [0, 1].
      truth: ``[N, T_out, H, W, C]``.
      predictions: ``[N, T_out, H, W, C]`` (clipped here).
      value_mapping: dBZ mapping of radar data (colour scale and colour bar), or None.
      title: drawn on top.
    """
    count, input_length = inputs.shape[:2]
    output_length = truth.shape[1]
    scale = display_scale(inputs.shape[2])
    tile_height, tile_width = inputs.shape[2] * scale, inputs.shape[3] * scale
    gap, label_width, header = 2, 70, 40
    columns = input_length + output_length
    width = label_width + columns * (tile_width + gap) + gap
    row_height = tile_height + gap
    height = header + count * (2 * row_height + 12)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    put_text(canvas, title, (6, 16), 0.5)
    for column in range(columns):
        x = label_width + gap + column * (tile_width + gap)
        label = f"t-{input_length - 1 - column}" if column < input_length else \
            f"+{column - input_length + 1}"
        if column == 0 or column == input_length or (column + 1) % 5 == 0:
            put_text(canvas, label, (x + 2, header - 6), 0.38)

    def place(frame: np.ndarray, row_top: int, column: int) -> None:
        x = label_width + gap + column * (tile_width + gap)
        canvas[row_top:row_top + tile_height, x:x + tile_width] = _upscale(
            frame_to_bgr(frame, value_mapping), scale)
        cv2.rectangle(canvas, (x - 1, row_top - 1), (x + tile_width, row_top + tile_height),
                      GRID, 1)

    for index in range(count):
        top = header + index * (2 * row_height + 12)
        put_text(canvas, f"#{index} truth", (4, top + tile_height // 2 + 4), 0.4)
        put_text(canvas, "forecast", (4, top + row_height + tile_height // 2 + 4), 0.4)
        for column in range(input_length):
            place(inputs[index, column], top, column)
        for step in range(output_length):
            place(truth[index, step], top, input_length + step)
            place(np.clip(predictions[index, step], 0, 1), top + row_height,
                  input_length + step)
    if value_mapping:
        canvas = np.concatenate([canvas, draw_dbz_colorbar(height)], axis=1)
    return canvas


def draw_animation_frames(inputs: np.ndarray, truth: np.ndarray, predictions: np.ndarray,
                          value_mapping: dict[str, Any] | None = None) -> list[np.ndarray]:
    """GIF frames: sequences side by side (truth left, forecast right), one frame per step."""
    count, input_length = inputs.shape[:2]
    output_length = truth.shape[1]
    scale = display_scale(inputs.shape[2])
    tile_height, tile_width = inputs.shape[2] * scale, inputs.shape[3] * scale
    gap, header = 4, 36
    pair_width = 2 * tile_width + gap
    width = count * (pair_width + 3 * gap) + gap
    height = header + tile_height + gap
    colorbar = draw_dbz_colorbar(height) if value_mapping else None
    frames = []
    for step in range(input_length + output_length):
        canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
        forecasting = step >= input_length
        label = (f"forecast +{step - input_length + 1}" if forecasting
                 else f"input t-{input_length - 1 - step}")
        put_text(canvas, label, (gap, 14), 0.45)
        for index in range(count):
            x = gap + index * (pair_width + 3 * gap)
            if forecasting:
                left = truth[index, step - input_length]
                right = np.clip(predictions[index, step - input_length], 0, 1)
            else:
                left = right = inputs[index, step]
            put_text(canvas, "truth", (x, header - 6), 0.38)
            put_text(canvas, "forecast" if forecasting else "input",
                     (x + tile_width + gap, header - 6), 0.38)
            canvas[header:header + tile_height, x:x + tile_width] = _upscale(
                frame_to_bgr(left, value_mapping), scale)
            x_right = x + tile_width + gap
            canvas[header:header + tile_height, x_right:x_right + tile_width] = _upscale(
                frame_to_bgr(right, value_mapping), scale)
            for x_tile in (x, x_right):
                cv2.rectangle(canvas, (x_tile - 1, header - 1),
                              (x_tile + tile_width, header + tile_height), GRID, 1)
        if colorbar is not None:
            canvas = np.concatenate([canvas, colorbar], axis=1)
        frames.append(canvas)
    return frames


def write_image(path: str, image: np.ndarray) -> None:
    """Writes a PNG atomically (temporary name in the same folder, then rename)."""
    temporary = os.path.join(os.path.dirname(path) or ".",
                             f".tmp-{os.getpid()}-{os.path.basename(path)}")
    if not cv2.imwrite(temporary, image):
        raise OSError(f"could not write image {path}")
    os.replace(temporary, path)


def write_gif(path: str, frames: Sequence[np.ndarray], frames_per_second: float = 2.0) -> bool:
    """Writes an endlessly looping GIF atomically; False if no GIF writer is available.

    Uses OpenCV's animation writer (OpenCV >= 4.11), else Pillow if installed.
    """
    temporary = os.path.join(os.path.dirname(path) or ".",
                             f".tmp-{os.getpid()}-{os.path.basename(path)}")
    duration_ms = int(round(1000.0 / frames_per_second))
    written = False
    if hasattr(cv2, "Animation") and hasattr(cv2, "imwriteanimation"):
        animation = cv2.Animation()
        animation.loop_count = 0
        animation.frames = [np.ascontiguousarray(frame) for frame in frames]
        animation.durations = [duration_ms] * len(frames)
        written = bool(cv2.imwriteanimation(temporary, animation))
    if not written:
        try:
            from PIL import Image
        except ImportError:
            return False
        images = [Image.fromarray(np.ascontiguousarray(frame[..., ::-1])) for frame in frames]
        images[0].save(temporary, save_all=True, append_images=images[1:],
                       duration=duration_ms, loop=0)
    os.replace(temporary, path)
    return True
