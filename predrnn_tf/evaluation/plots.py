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

from predrnn_tf import files
from predrnn_tf.evaluation.charts import BACKGROUND, GRID, put_text

# The NWS reflectivity scale: (lower bound in dBZ, RGB). Below the first bound: background.
DBZ_LEVELS = (
    (5, (4, 233, 231)), (10, (1, 159, 244)), (15, (3, 0, 244)), (20, (2, 253, 2)),
    (25, (1, 197, 1)), (30, (0, 142, 0)), (35, (253, 248, 2)), (40, (229, 188, 0)),
    (45, (253, 149, 0)), (50, (253, 0, 0)), (55, (212, 0, 0)), (60, (188, 0, 0)),
    (65, (248, 0, 253)), (70, (152, 84, 198)), (75, (253, 253, 253)),
)
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
