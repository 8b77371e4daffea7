"""Pictures of an evaluation drawn with OpenCV only: radar colours, strips, GIFs, PNG files.

Images are uint8 BGR ``[H, W, 3]`` (OpenCV's order). matplotlib is not needed. The line
charts of the metrics are in :mod:`predrnn_tf.evaluation.charts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from predrnn_tf import files, units
from predrnn_tf.evaluation.charts import BACKGROUND, GRID, put_text

# The NWS reflectivity scale: (lower bound in dBZ, RGB). Below the first bound: background.
DBZ_LEVELS = (
    (5, (4, 233, 231)), (10, (1, 159, 244)), (15, (3, 0, 244)), (20, (2, 253, 2)),
    (25, (1, 197, 1)), (30, (0, 142, 0)), (35, (253, 248, 2)), (40, (229, 188, 0)),
    (45, (253, 149, 0)), (50, (253, 0, 0)), (55, (212, 0, 0)), (60, (188, 0, 0)),
    (65, (248, 0, 253)), (70, (152, 84, 198)), (75, (40, 40, 40)),
)  # 75 dBZ and more: near-black, never the white of the background (no echo)
# pysteps' precipitation scale (``plot_precip_field``, colorscale "pysteps", mm/h): colour
# of each interval [level_i, level_i+1); the last colour is every rate >= 160 mm/h.
RAIN_RATE_LEVELS = (0.08, 0.16, 0.25, 0.4, 0.63, 1, 1.6, 2.5, 4, 6.3, 10, 16, 25, 40, 63,
                    100, 160)
RAIN_RATE_COLOURS = (
    (156, 126, 148), (100, 0, 100), (175, 0, 175), (220, 0, 220), (50, 50, 200),
    (0, 100, 255), (0, 150, 150), (0, 200, 50), (100, 255, 0), (150, 255, 0), (200, 255, 0),
    (255, 255, 0), (255, 200, 0), (255, 160, 0), (255, 125, 0), (225, 25, 0), (139, 0, 0))
NO_DATA_COLOUR = (192, 192, 192)  # pysteps' "bad" colour (gray, half transparent) on white
DISPLAY_MIN_SIZE = 96
NO_ECHO_DBZ = DBZ_LEVELS[0][0]


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
    """A vertical colour bar of the dBZ scale with labels, ``[height, width, 3]``.

    Each box is labelled with its lower bound; the top box (75+) is every value above the
    last threshold, the background below the first one is "no echo".
    """
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    levels = len(DBZ_LEVELS)
    top, bottom = 18, 10
    box_height = max(4, (height - top - bottom) // levels)
    put_text(image, "dBZ", (6, 13), 0.42)
    for index, (bound, rgb) in enumerate(reversed(DBZ_LEVELS)):
        y0 = top + index * box_height
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), rgb[::-1], -1)
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), GRID, 1)
        label = f"{bound}+" if index == 0 else str(bound)
        if box_height >= 9 or index % 2 == 0:
            put_text(image, label, (27, y0 + box_height - 1), 0.38)
    return image


def colorize_rain_rate(rate: np.ndarray) -> np.ndarray:
    """Rain rate ``[H, W]`` in mm/h (NaN = no data) -> BGR in pysteps' precipitation scale:
    white below 0.08 mm/h (dry), gray where there is no data."""
    rate = np.asarray(rate, np.float64)
    table = np.array([BACKGROUND] + [rgb[::-1] for rgb in RAIN_RATE_COLOURS], np.uint8)
    indices = np.searchsorted(np.asarray(RAIN_RATE_LEVELS), np.nan_to_num(rate, nan=0.0),
                              side="right")  # 0: below the first level
    image = table[indices]
    image[np.isnan(rate)] = NO_DATA_COLOUR[::-1]
    return image


def draw_rain_rate_colorbar(height: int, width: int = 70) -> np.ndarray:
    """A vertical colour bar of pysteps' mm/h scale, each box labelled with its lower bound,
    and a gray "no data" box under it."""
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes = len(RAIN_RATE_COLOURS) + 1
    top, bottom = 18, 10
    box_height = max(4, (height - top - bottom) // boxes)
    put_text(image, "mm/h", (6, 13), 0.42)
    labelled = [(f"{level:g}", rgb) for level, rgb in zip(RAIN_RATE_LEVELS, RAIN_RATE_COLOURS)]
    for index, (label, rgb) in enumerate([*reversed(labelled), ("n/a", NO_DATA_COLOUR)]):
        y0 = top + index * box_height
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), rgb[::-1], -1)
        cv2.rectangle(image, (6, y0), (22, y0 + box_height - 1), GRID, 1)
        if box_height >= 9 or index % 2 == 0 or label == "n/a":
            put_text(image, label, (27, y0 + box_height - 1), 0.36)
    return image


def draw_gray_colorbar(height: int, low: float, high: float, label: str,
                       width: int = 70, ticks: Sequence[float] | None = None) -> np.ndarray:
    """A vertical gray bar from ``low`` (black, bottom) to ``high`` (white, top), labelled.

    ``ticks``: the values at the bottom, middle and top when the scale is not linear
    (default: ``low``, their mean, ``high``).
    """
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    top, bottom = 18, 10
    put_text(image, label, (4, 13), 0.38)
    span = max(height - top - bottom, 2)
    for row in range(span):
        level = int(round(255 * (1.0 - row / (span - 1))))
        image[top + row, 6:22] = level
    cv2.rectangle(image, (6, top), (22, top + span - 1), GRID, 1)
    values = ticks if ticks is not None else [low + f * (high - low) for f in (0.0, 0.5, 1.0)]
    for fraction, value in zip((0.0, 0.5, 1.0), values):
        y = int(top + (1.0 - fraction) * (span - 1))
        put_text(image, f"{value:.3g}", (26, min(y + 4, height - 2)), 0.36)
    return image


def draw_value_colorbar(height: int, value_mapping: dict[str, Any] | None) -> np.ndarray:
    """The colour bar of :func:`frame_to_bgr` in physical units: dBZ, other units, or pixels."""
    if value_mapping and str(value_mapping.get("units", "")).lower() == "dbz":
        return draw_dbz_colorbar(height)
    if units.is_rain_rate_mapping({"value_mapping": value_mapping}):
        return draw_rain_rate_colorbar(height)
    if value_mapping:
        low = float(value_mapping["offset"])
        return draw_gray_colorbar(height, low, low + 255.0 * float(value_mapping["scale"]),
                                  str(value_mapping.get("units", "value")))
    return draw_gray_colorbar(height, 0.0, 1.0, "pixel")


def frame_to_bgr(frame01: np.ndarray, value_mapping: dict[str, Any] | None) -> np.ndarray:
    """One [0, 1] frame ``[H, W, C]`` -> BGR: dBZ colours with a dBZ mapping, pysteps'
    precipitation colours with a rain-rate one (the no-data pixel gray), else gray/RGB."""
    frame01 = np.clip(np.asarray(frame01, np.float32), 0.0, 1.0)
    if units.is_rain_rate_mapping({"value_mapping": value_mapping}):
        rate = units.pixels_to_rain_rate(frame01[..., 0], value_mapping)
        return colorize_rain_rate(np.where(units.valid_pixels(frame01[..., 0], value_mapping),
                                           rate, np.nan))
    if value_mapping and str(value_mapping.get("units", "dBZ")).lower() == "dbz":
        return colorize_dbz(units.pixels_to_units(frame01[..., 0], value_mapping))
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


def draw_prediction_strips(inputs: np.ndarray, truth: np.ndarray | None,
                           predictions: np.ndarray,
                           value_mapping: dict[str, Any] | None = None, title: str = "",
                           baselines: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Per sequence: "truth" (inputs, then the true future), "forecast", then each baseline.

    Args:
      inputs: ``[N, T_in, H, W, C]`` in [0, 1].
      truth: ``[N, T_out, H, W, C]``, or None (the first row shows the inputs only).
      predictions: ``[N, T_out, H, W, C]`` (clipped here).
      value_mapping: the data's value mapping (colours and the labelled colour bar).
      title: drawn on top.
      baselines: name -> ``[N, T_out, H, W, C]`` rows drawn under the forecast
        (e.g. persistence, extrapolation).
    """
    rows = [("truth" if truth is not None else "input", truth), ("forecast", predictions)]
    rows += list((baselines or {}).items())
    return draw_labelled_rows(inputs, rows, value_mapping, title)


def draw_labelled_rows(inputs: np.ndarray, rows: list[tuple[str, np.ndarray | None]],
                       value_mapping: dict[str, Any] | None = None,
                       title: str = "") -> np.ndarray:
    """Rows of frames per sequence; the first row starts with the inputs, the others align.

    Args:
      inputs: ``[N, T_in, H, W, C]`` in [0, 1].
      rows: ``(label, [N, T_out, H, W, C] or None)``; None leaves the row's future empty.
      value_mapping: the data's value mapping (colours and the labelled colour bar).
      title: drawn on top.
    """
    count, input_length = inputs.shape[:2]
    output_length = max((frames.shape[1] for _, frames in rows if frames is not None),
                        default=0)
    scale = display_scale(inputs.shape[2])
    tile_height, tile_width = inputs.shape[2] * scale, inputs.shape[3] * scale
    gap, label_width, header = 2, 84, 40
    columns = input_length + output_length
    width = label_width + columns * (tile_width + gap) + gap
    row_height, block = tile_height + gap, len(rows) * (tile_height + gap) + 12
    height = header + count * block
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
            frame_to_bgr(np.clip(frame, 0, 1), value_mapping), scale)
        cv2.rectangle(canvas, (x - 1, row_top - 1), (x + tile_width, row_top + tile_height),
                      GRID, 1)

    for index in range(count):
        top = header + index * block
        for row, (label, frames) in enumerate(rows):
            row_top = top + row * row_height
            text = f"#{index} {label}" if row == 0 else label
            put_text(canvas, text, (4, row_top + tile_height // 2 + 4), 0.4)
            if row == 0:
                for column in range(input_length):
                    place(inputs[index, column], row_top, column)
            for step in range(0 if frames is None else frames.shape[1]):
                place(frames[index, step], row_top, input_length + step)
    return np.concatenate([canvas, draw_value_colorbar(height, value_mapping)], axis=1)


def draw_animation_frames(inputs: np.ndarray, truth: np.ndarray | None,
                          predictions: np.ndarray,
                          value_mapping: dict[str, Any] | None = None) -> list[np.ndarray]:
    """GIF frames: sequences side by side (truth left, forecast right), one frame per step.

    Without ``truth`` each sequence has one panel: its inputs, then the forecast.
    """
    count, input_length = inputs.shape[:2]
    output_length = predictions.shape[1]
    scale = display_scale(inputs.shape[2])
    tile_height, tile_width = inputs.shape[2] * scale, inputs.shape[3] * scale
    gap, header = 4, 36
    panels = ["forecast"] if truth is None else ["truth", "forecast"]
    group_width = len(panels) * (tile_width + gap) - gap
    width = count * (group_width + 3 * gap) + gap
    height = header + tile_height + gap
    colorbar = draw_value_colorbar(height, value_mapping)
    frames = []
    for step in range(input_length + output_length):
        canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
        forecasting = step >= input_length
        label = (f"forecast +{step - input_length + 1}" if forecasting
                 else f"input t-{input_length - 1 - step}")
        put_text(canvas, label, (gap, 14), 0.45)
        for index in range(count):
            for panel, name in enumerate(panels):
                x = gap + index * (group_width + 3 * gap) + panel * (tile_width + gap)
                if not forecasting:
                    frame, name = inputs[index, step], "input"
                elif name == "truth":
                    frame = truth[index, min(step - input_length, truth.shape[1] - 1)]
                else:
                    frame = predictions[index, step - input_length]
                put_text(canvas, name, (x, header - 6), 0.38)
                canvas[header:header + tile_height, x:x + tile_width] = _upscale(
                    frame_to_bgr(np.clip(frame, 0, 1), value_mapping), scale)
                cv2.rectangle(canvas, (x - 1, header - 1),
                              (x + tile_width, header + tile_height), GRID, 1)
        frames.append(np.concatenate([canvas, colorbar], axis=1))
    return frames


def write_image(path: str, image: np.ndarray) -> None:
    """Writes a PNG atomically (through :func:`predrnn_tf.files.atomic_path`)."""
    with files.atomic_path(path) as temporary:
        if not cv2.imwrite(temporary, image):
            raise OSError(f"could not write image {path}")


def gif_writer_available() -> bool:
    """Whether OpenCV's animation writer (OpenCV >= 4.11) or Pillow can write a GIF."""
    if hasattr(cv2, "Animation") and hasattr(cv2, "imwriteanimation"):
        return True
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def _write_gif_file(path: str, frames: Sequence[np.ndarray], duration_ms: int) -> None:
    """Writes the GIF to ``path`` with OpenCV, else Pillow; OSError if neither can."""
    if hasattr(cv2, "Animation") and hasattr(cv2, "imwriteanimation"):
        animation = cv2.Animation()
        animation.loop_count = 0
        animation.frames = [np.ascontiguousarray(frame) for frame in frames]
        animation.durations = [duration_ms] * len(frames)
        if cv2.imwriteanimation(path, animation):
            return
    try:
        from PIL import Image
    except ImportError as error:
        raise OSError(f"OpenCV could not write the GIF {path} and Pillow is missing") from error
    images = [Image.fromarray(np.ascontiguousarray(frame[..., ::-1])) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def write_gif(path: str, frames: Sequence[np.ndarray], frames_per_second: float = 2.0) -> bool:
    """Writes an endlessly looping GIF atomically; False if no GIF writer is available.

    Uses OpenCV's animation writer (OpenCV >= 4.11), else Pillow if installed.
    """
    if not gif_writer_available():
        return False
    with files.atomic_path(path) as temporary:
        _write_gif_file(temporary, frames, int(round(1000.0 / frames_per_second)))
    return True
