"""Reference forecasts evaluated by the same code as the models.

- ``persistence``: every forecast frame is the last input frame (any dataset).
- ``extrapolation``: optical-flow nowcast for radar with pysteps, a Lucas-Kanade motion field
  from the last input frames and semi-Lagrangian advection of the last frame. pysteps is an
  optional dependency (``pip install pysteps``), imported only when this baseline is used.
- ``sprog``: pysteps' S-PROG (smoothed extrapolation), on rain-rate datasets.
- ``steps``: pysteps' STEPS ensemble (:mod:`.steps_baseline`), on rain-rate datasets with a
  grid (``pixel_km``, ``interval_minutes``); as a deterministic forecast, its members' median.
- ``advection``: the radar recipe's own advection prior alone, in TensorFlow ops (block
  matching + semi-Lagrangian advection, :mod:`predrnn_tf.models.advection`): what the
  recipe's model forecasts before training (zero learned change), so a table shows what the
  network adds to it.

A baseline is a callable ``input_frames [B, T_in, H, W, C] -> [B, T_out, H, W, C]`` like a
model's ``forecast``. :class:`GuardedBaseline` runs one so that a sequence it fails on (e.g.
S-PROG's "x contains non-finite values" on a field of no data) is left out, counted and
named, and never stops an evaluation.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from predrnn_tf import units
from predrnn_tf.evaluation.pysteps_settings import (
    DBR_THRESHOLD_MMH,
    DBR_ZEROVALUE,
    MOTION_FRAMES,
    SPROG_CASCADE_LEVELS,
    SPROG_PRECIP_THRESHOLD_DBR,
    STEPS_DEFAULT_MEMBERS,
    STEPS_DEFAULT_SEED,
    import_pysteps,
)

BASELINES = ("persistence", "extrapolation", "sprog", "advection", "steps")
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


class AdvectionBaseline:
    """Callable advection forecast in TensorFlow ops (:func:`.advection.extrapolate_frames`).

    Advects the [0, 1] pixels as the radar recipe's model does (on a dBR dataset: the log
    scale), so it equals that model with a zero learned change.
    """

    name = "advection"

    def __init__(self, output_length: int):
        self.output_length = output_length

    def __call__(self, input_frames: Any) -> np.ndarray:
        from predrnn_tf.models.advection import extrapolate_frames

        frames = np.asarray(input_frames, np.float32)
        if frames.ndim != 5 or frames.shape[1] < 2:
            raise ValueError(f"advection needs frames [B, T >= 2, H, W, C], got shape "
                             f"{frames.shape}")
        return np.clip(extrapolate_frames(frames, self.output_length).numpy(), 0.0, 1.0)


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


class RainRateNowcast:
    """pysteps extrapolation or S-PROG on a dBR rain-rate dataset, as pysteps' examples run them.

    Input and output are the model's [0, 1] pixels; inside they are rain rates in mm/h
    (:mod:`predrnn_tf.units`), no-data pixels (pixel 0) become no rain before the motion
    estimation, as pysteps' examples fill missing values. Pixels advected in from outside
    the domain get no rain.

    Args:
      method: ``"extrapolation"`` or ``"sprog"``.
      output_length: lead times to forecast.
      metadata: the dataset's metadata (a dBR ``value_mapping``).
    """

    def __init__(self, method: str, output_length: int, metadata: dict[str, Any]):
        if method not in ("extrapolation", "sprog"):
            raise ValueError(f"method must be extrapolation or sprog, got {method!r}")
        self.name = method
        self.output_length = output_length
        self.metadata = metadata
        pysteps = import_pysteps()
        self._motion = pysteps.motion.get_method("LK")
        self._nowcast = pysteps.nowcasts.get_method(method)
        self._transform = pysteps.utils.transformation.dB_transform
        self._last_inputs: np.ndarray | None = None
        self._last_rates: np.ndarray | None = None

    def forecast_rate_one(self, frames01: np.ndarray) -> np.ndarray:
        """``[T_in, H, W]`` pixels -> ``[T_out, H, W]`` mm/h, NaN where advected from outside."""
        rate = units.pixels_to_rain_rate(frames01[-MOTION_FRAMES:], self.metadata)
        rate = np.where(units.valid_pixels(frames01[-MOTION_FRAMES:], self.metadata), rate, 0.0)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            dbr, _ = self._transform(rate, {"transform": None, "threshold": DBR_THRESHOLD_MMH,
                                            "zerovalue": 0.0, "unit": "mm/h"},
                                     threshold=DBR_THRESHOLD_MMH, zerovalue=DBR_ZEROVALUE)
            dbr[~np.isfinite(dbr)] = DBR_ZEROVALUE
            velocity = self._motion(dbr, verbose=False)
            if self.name == "extrapolation":
                forecast = self._nowcast(rate[-1], velocity, self.output_length)
            else:
                forecast = self._nowcast(dbr, velocity, self.output_length,
                                         n_cascade_levels=SPROG_CASCADE_LEVELS,
                                         precip_thr=SPROG_PRECIP_THRESHOLD_DBR)
                forecast = self._transform(forecast, threshold=SPROG_PRECIP_THRESHOLD_DBR,
                                           inverse=True)[0]
        return forecast

    def _frames(self, input_frames: Any) -> np.ndarray:
        frames = np.asarray(input_frames, np.float32)
        if frames.ndim != 5 or frames.shape[-1] != 1 or frames.shape[1] < MOTION_FRAMES:
            raise ValueError(f"{self.name} needs one-channel frames [B, T >= {MOTION_FRAMES}, "
                             f"H, W, 1], got shape {frames.shape}")
        return frames

    def __call__(self, input_frames: Any) -> np.ndarray:
        rates = self.forecast_rates(input_frames)  # [B, T_out, H, W, 1]
        return units.rain_rate_to_unit_pixels(np.where(np.isfinite(rates), rates, 0.0)
                                              ).astype(np.float32)

    def forecast_rates(self, input_frames: Any) -> np.ndarray:
        """``[B, T_out, H, W, 1]`` mm/h, NaN where advected in from outside the domain.

        The last inputs' nowcast is kept: the baseline and the probability matching that
        targets it (``--probability_matching=extrapolation``) share one motion estimate.
        """
        frames = self._frames(input_frames)
        if self._last_inputs is None or not np.array_equal(self._last_inputs, frames):
            self._last_rates = np.stack([self.forecast_rate_one(sequence[..., 0])
                                         for sequence in frames])[..., None]
            self._last_inputs = frames
        return self._last_rates


def make_baseline(name: str, output_length: int, metadata: dict[str, Any] | None = None,
                  num_members: int = STEPS_DEFAULT_MEMBERS, ensemble_seed: int = 0) -> Any:
    """The baseline called ``name`` (one of :data:`BASELINES`).

    On a rain-rate dataset (dBR ``value_mapping`` in ``metadata``) ``extrapolation`` and
    ``sprog`` run in mm/h with pysteps' example settings; elsewhere ``extrapolation`` advects
    the [0, 1] pixels and ``sprog`` is refused. ``steps`` needs a rain-rate dataset with a
    ``grid`` and draws ``num_members`` members per sequence, from seed
    ``STEPS_DEFAULT_SEED + ensemble_seed`` for the first sequence.
    """
    if name == "persistence":
        return PersistenceBaseline(output_length)
    if name == "advection":
        return AdvectionBaseline(output_length)
    if name == "steps":
        from predrnn_tf.evaluation.steps_baseline import StepsNowcast

        return StepsNowcast(output_length, metadata or {}, num_members=num_members,
                            seed=STEPS_DEFAULT_SEED + int(ensemble_seed))
    rain_rate = units.is_rain_rate_mapping(metadata)
    if name in ("extrapolation", "sprog") and rain_rate:
        return RainRateNowcast(name, output_length, metadata)
    if name == "extrapolation":
        return ExtrapolationBaseline(output_length)
    if name == "sprog":
        raise ValueError("--baselines=sprog needs a rain-rate dataset (tools/make_radar.py "
                         "--storage=rain_rate)")
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")


def default_baselines(output_length: int, metadata: dict[str, Any] | None = None,
                      channels: int = 1, input_length: int = MOTION_FRAMES
                      ) -> tuple[dict[str, Callable[[Any], Any]], dict[str, str]]:
    """The baselines scored beside every model: persistence, and extrapolation with pysteps.

    Extrapolation needs one-channel frames, at least :data:`MOTION_FRAMES` inputs and pysteps.

    Returns:
      ``({name: forecaster}, {name: why it was skipped})``.
    """
    chosen = {"persistence": make_baseline("persistence", output_length, metadata)}
    skipped = {}
    if channels != 1 or input_length < MOTION_FRAMES:
        skipped["extrapolation"] = (f"extrapolation needs one-channel frames and at least "
                                    f"{MOTION_FRAMES} inputs, not {channels} channel(s) and "
                                    f"{input_length} input(s)")
        return chosen, skipped
    try:
        chosen["extrapolation"] = make_baseline("extrapolation", output_length, metadata)
    except ImportError as error:
        skipped["extrapolation"] = str(error)
    return chosen, skipped


class GuardedBaseline:
    """A baseline that never raises: failed sequences are left out, counted and named.

    A batch is forecast at once; if that fails, sequence by sequence, and the sequences that
    fail again are dropped from the returned forecast.

    Args:
      name: the baseline's name (in messages).
      forecaster: ``inputs [B, T_in, H, W, C] -> [B, T_out, H, W, C]``.
    """

    def __init__(self, name: str, forecaster: Callable[[Any], Any]):
        self.name = name
        self.forecaster = forecaster
        self.failed_sequences = 0
        self.scored_sequences = 0
        self.errors: Counter[str] = Counter()

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(forecasts [K, T_out, H, W, C] float32, indices [K] of the sequences done)``."""
        inputs = np.asarray(inputs, np.float32)
        try:
            forecast = np.asarray(self.forecaster(inputs), np.float32)
            done = np.arange(inputs.shape[0])
        except Exception:  # noqa: BLE001 (retried one sequence at a time, errors named)
            forecast, done = self._one_by_one(inputs)
        self.scored_sequences += done.size
        return forecast, done

    def _one_by_one(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forecasts, done = [], []
        for index in range(inputs.shape[0]):
            try:
                forecasts.append(np.asarray(self.forecaster(inputs[index:index + 1]),
                                            np.float32))
                done.append(index)
            except Exception as error:  # noqa: BLE001 (a failing baseline never aborts)
                self.failed_sequences += 1
                self.errors[f"{type(error).__name__}: {str(error)[:200]}"] += 1
        if not forecasts:
            return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        return np.concatenate(forecasts), np.asarray(done, np.int64)

    def report(self) -> dict[str, Any]:
        """``{"failed_sequences", "scored_sequences", "errors": {message: count}}``."""
        return {"failed_sequences": self.failed_sequences,
                "scored_sequences": self.scored_sequences, "errors": dict(self.errors)}


def fill_failed(forecast: np.ndarray, done: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The forecasts of a whole batch ``shape``, NaN for the sequences not ``done``."""
    if isinstance(done, slice):
        return forecast
    whole = np.full(shape, np.nan, np.float32)
    whole[done] = forecast
    return whole
