"""Reference forecasts evaluated by the same code as the models.

- ``persistence``: every forecast frame is the last input frame (any dataset).
- ``extrapolation``: optical-flow nowcast for radar with pysteps, a Lucas-Kanade motion field
  from the last input frames and semi-Lagrangian advection of the last frame. pysteps is an
  optional dependency (``pip install pysteps``), imported only when this baseline is used.

A baseline is a callable ``input_frames [B, T_in, H, W, C] -> [B, T_out, H, W, C]`` like a
model's ``forecast``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np

BASELINES = ("persistence", "extrapolation")
PYSTEPS_MISSING = ("the extrapolation baseline needs pysteps, which is not installed: "
                   "pip install pysteps")


def persistence(input_frames: Any, output_length: int) -> np.ndarray:
    """Repeats the last input frame ``output_length`` times: ``[B, T_out, H, W, C]``."""
    frames = np.asarray(input_frames, np.float32)
    if frames.ndim != 5:
        raise ValueError(f"input_frames must be [B, T, H, W, C], got shape {frames.shape}")
    return np.repeat(frames[:, -1:], output_length, axis=1)


class PersistenceBaseline:
    """Callable persistence forecast of ``output_length`` frames."""

    name = "persistence"

    def __init__(self, output_length: int):
        self.output_length = output_length

    def __call__(self, input_frames: Any) -> np.ndarray:
        return persistence(input_frames, self.output_length)


def import_pysteps() -> Any:
    """Imports pysteps quietly; ImportError with the install command if missing."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps
            import pysteps.extrapolation
            import pysteps.motion
    except ImportError as error:
        raise ImportError(PYSTEPS_MISSING) from error
    return pysteps


class ExtrapolationBaseline:
    """Lucas-Kanade motion + semi-Lagrangian advection of the last input frame (pysteps).

    The motion is estimated on the [0, 1] pixel fields (a linear function of dBZ, so the same
    motion as on dBZ); pixels advected in from outside the domain get the field's minimum
    (no echo).

    Args:
      output_length: frames to forecast.
      motion_frames: last input frames used for the motion field (at least 2).
    """

    name = "extrapolation"

    def __init__(self, output_length: int, motion_frames: int = 3):
        if motion_frames < 2:
            raise ValueError(f"motion_frames must be at least 2, got {motion_frames}")
        self.output_length = output_length
        self.motion_frames = motion_frames
        pysteps = import_pysteps()
        self._motion = pysteps.motion.get_method("LK")
        self._extrapolate = pysteps.extrapolation.get_method("semilagrangian")

    def forecast_one(self, frames: np.ndarray) -> np.ndarray:
        """``[T_in, H, W]`` -> ``[T_out, H, W]`` float32."""
        history = frames[-self.motion_frames:].astype(np.float64)
        background = float(np.min(frames))
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            velocity = self._motion(history, verbose=False)
            forecast = self._extrapolate(history[-1], velocity, self.output_length)
        forecast = np.where(np.isfinite(forecast), forecast, background)
        return forecast.astype(np.float32)

    def __call__(self, input_frames: Any) -> np.ndarray:
        frames = np.asarray(input_frames, np.float32)
        if frames.ndim != 5 or frames.shape[-1] != 1:
            raise ValueError(f"extrapolation works on one-channel radar frames [B, T, H, W, 1], "
                             f"got shape {frames.shape}")
        if frames.shape[1] < 2:
            raise ValueError(f"extrapolation needs at least 2 input frames, got {frames.shape[1]}")
        forecasts = [self.forecast_one(sequence[..., 0]) for sequence in frames]
        return np.stack(forecasts)[..., None]  # [B, T_out, H, W, 1]


def make_baseline(name: str, output_length: int) -> Any:
    """The baseline called ``name`` (one of :data:`BASELINES`)."""
    if name == "persistence":
        return PersistenceBaseline(output_length)
    if name == "extrapolation":
        return ExtrapolationBaseline(output_length)
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
