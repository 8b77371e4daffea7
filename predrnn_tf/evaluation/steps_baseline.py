"""pysteps' STEPS ensemble nowcast as a baseline, with the settings of pysteps' own example.

pysteps' ``examples/plot_steps_nowcast.py``: rain rates in mm/h go to dBR with threshold
0.1 mm/h and zero value -15 dBR (``utils.transformation.dB_transform``), missing values
become -15 dBR, the motion is dense Lucas-Kanade on the last 3 input frames, and STEPS
(``nowcasts.get_method("steps")``) runs on the last 3 frames with 6 cascade levels, a -10 dBR
precipitation threshold, FFT decomposition, Gaussian band-pass filter, non-parametric noise,
BPS motion perturbations, the incremental precipitation mask and a seed; the members go back
to mm/h with ``dB_transform(..., threshold=-10, inverse=True)``. Pixels STEPS leaves non-finite
(advected in from outside the domain) are no rain, as the other pysteps baselines do.

:func:`steps_members` works on rain rates; :class:`StepsNowcast` is the baseline callable on
the model's [0, 1] pixels of a dBR rain-rate dataset, like ``baselines.RainRateNowcast``:
``members(inputs)`` gives the ensemble and ``__call__(inputs)`` its median in mm/h (the
deterministic forecast scored beside the others, as the model ensemble's median is).
pysteps is imported only when STEPS runs.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.evaluation.pysteps_settings import (
    DBR_THRESHOLD_MMH,
    DBR_ZEROVALUE,
    MOTION_FRAMES,
    STEPS_DEFAULT_MEMBERS,
    STEPS_DEFAULT_SEED,
    import_pysteps,
)

STEPS_CASCADE_LEVELS = 6
STEPS_PRECIP_THRESHOLD_DBR = -10.0
STEPS_SETTINGS = {"n_cascade_levels": STEPS_CASCADE_LEVELS,
                  "precip_thr": STEPS_PRECIP_THRESHOLD_DBR, "decomp_method": "fft",
                  "bandpass_filter_method": "gaussian", "noise_method": "nonparametric",
                  "vel_pert_method": "bps", "mask_method": "incremental"}
DEFAULT_MEMBERS = STEPS_DEFAULT_MEMBERS


def to_dbr(rain_rate: np.ndarray) -> np.ndarray:
    """mm/h (NaN = no data) -> dBR with pysteps' example settings; no data -> -15 dBR."""
    pysteps = import_pysteps()
    rate = np.asarray(rain_rate, np.float64)
    metadata = {"transform": None, "threshold": DBR_THRESHOLD_MMH, "zerovalue": 0.0,
                "unit": "mm/h"}
    with np.errstate(invalid="ignore", divide="ignore"):
        dbr, _ = pysteps.utils.transformation.dB_transform(
            rate, metadata, threshold=DBR_THRESHOLD_MMH, zerovalue=DBR_ZEROVALUE)
    dbr[~np.isfinite(dbr)] = DBR_ZEROVALUE
    return dbr


def steps_members(rain_rate: np.ndarray, output_length: int, num_members: int = DEFAULT_MEMBERS,
                  pixel_km: float = 1.0, interval_minutes: float = 5.0, seed: int = 24,
                  num_workers: int = 1) -> np.ndarray:
    """A STEPS ensemble from a sequence of rain-rate fields.

    Args:
      rain_rate: ``[T_in, H, W]`` mm/h, NaN = no data, ``T_in >= 3``.
      output_length: lead times to forecast.
      num_members: ensemble members N.
      pixel_km: grid spacing in km (STEPS' ``kmperpixel``).
      interval_minutes: time between frames (STEPS' ``timestep``).
      seed: STEPS' seed (noise and motion perturbations).
      num_workers: STEPS' threads over members (needs dask when > 1).

    Returns:
      ``[N, output_length, H, W]`` float32 rain rates in mm/h (no NaN).
    """
    rain_rate = np.asarray(rain_rate, np.float64)
    if rain_rate.ndim != 3 or rain_rate.shape[0] < MOTION_FRAMES:
        raise ValueError(f"STEPS needs rain rates [T >= {MOTION_FRAMES}, H, W], got shape "
                         f"{rain_rate.shape}")
    pysteps = import_pysteps()
    dbr = to_dbr(rain_rate)  # [T_in, H, W]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        recent = dbr[-MOTION_FRAMES:]  # the example's 3 frames: motion and AR(2) both
        velocity = pysteps.motion.get_method("LK")(recent, verbose=False)  # [2, H, W]
        members = pysteps.nowcasts.get_method("steps")(
            recent, velocity, output_length, num_members,
            kmperpixel=pixel_km, timestep=interval_minutes, seed=seed,
            num_workers=num_workers, **STEPS_SETTINGS)  # [N, T_out, H, W] dBR
        members = pysteps.utils.transformation.dB_transform(
            members, threshold=STEPS_PRECIP_THRESHOLD_DBR, inverse=True)[0]
    return np.where(np.isfinite(members), members, 0.0).astype(np.float32)


class StepsNowcast:
    """STEPS on a dBR rain-rate dataset's [0, 1] pixels (the baseline ``steps``).

    Args:
      output_length: lead times to forecast.
      metadata: the dataset's metadata (a dBR ``value_mapping`` and a ``grid``).
      num_members: ensemble members N.
      seed: seed of the first sequence; sequence k of the object's life uses ``seed + k``.
    """

    name = "steps"

    def __init__(self, output_length: int, metadata: dict[str, Any],
                 num_members: int = DEFAULT_MEMBERS, seed: int = STEPS_DEFAULT_SEED):
        if not units.is_rain_rate_mapping(metadata):
            raise ValueError("--baselines=steps needs a rain-rate dataset (a dBR value_mapping)")
        import_pysteps()
        self.output_length, self.metadata = output_length, metadata
        self.num_members, self.seed = int(num_members), int(seed)
        self.pixel_km, self.interval_minutes = units.grid_spacing(metadata)
        self.sequences_done = 0

    def rain_rate(self, frames01: np.ndarray) -> np.ndarray:
        """``[T, H, W]`` pixels -> mm/h with NaN where the pixel is no data."""
        rate = units.pixels_to_rain_rate(frames01, self.metadata)
        return np.where(units.valid_pixels(frames01, self.metadata), rate, np.nan)

    def members_one(self, frames01: np.ndarray) -> np.ndarray:
        """``[T_in, H, W]`` pixels -> ``[N, T_out, H, W]`` rain rates in mm/h."""
        seed = self.seed + self.sequences_done
        self.sequences_done += 1
        return steps_members(self.rain_rate(frames01), self.output_length, self.num_members,
                             self.pixel_km, self.interval_minutes, seed)

    def members(self, input_frames: Any) -> np.ndarray:
        """``[B, T_in, H, W, 1]`` pixels -> ``[B, N, T_out, H, W, 1]`` float32 pixels."""
        frames = self._checked(input_frames)
        rates = np.stack([self.members_one(sequence[..., 0]) for sequence in frames])
        return units.rain_rate_to_unit_pixels(rates)[..., None].astype(np.float32)

    def __call__(self, input_frames: Any) -> np.ndarray:
        """The members' median rain rate as pixels ``[B, T_out, H, W, 1]``."""
        frames = self._checked(input_frames)
        medians = np.stack([np.median(self.members_one(sequence[..., 0]), axis=0)
                            for sequence in frames])  # [B, T_out, H, W] mm/h
        return units.rain_rate_to_unit_pixels(medians)[..., None].astype(np.float32)

    def _checked(self, input_frames: Any) -> np.ndarray:
        frames = np.asarray(input_frames, np.float32)
        if frames.ndim != 5 or frames.shape[-1] != 1 or frames.shape[1] < MOTION_FRAMES:
            raise ValueError(f"steps needs one-channel frames [B, T >= {MOTION_FRAMES}, H, W, "
                             f"1], got shape {frames.shape}")
        return frames
