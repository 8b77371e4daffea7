"""``predrnn-evaluate`` as a library call: restore, open the test set, forecast and score.

:func:`evaluate` takes the frozen :class:`~predrnn_tf.config.Config` and an
:class:`EvaluateOptions` (what ``predrnn_tf/cli/evaluate.py`` builds from its flags) and
runs one of two paths, both scored by :mod:`predrnn_tf.evaluation.scores`:

- a rain-rate (dBR) dataset, or ``baselines`` given: the model and the named baselines in
  mm/h in one pass (:mod:`.radar_evaluation`: ``metrics_table.md``, ``metrics.json`` with
  ``forecasters``);
- otherwise: the paper metrics of the model (or of ``baseline``) beside the default
  baselines, dBZ scores on radar data (:mod:`.evaluator`).

The model is restored in :func:`restore_model` alone (the one place a work directory is read
for the model).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from absl import logging

from predrnn_tf import units
from predrnn_tf.config import Config
from predrnn_tf.errors import ConfigError, DataError
from predrnn_tf.evaluation import baselines, evaluator, lpips, radar_evaluation
from predrnn_tf.evaluation.metrics import DEFAULT_THRESHOLDS
from predrnn_tf.models import probability_matching
from predrnn_tf.models.probability_matching import MATCH_STRENGTH, MODEL_WEIGHT
from predrnn_tf.workdir import WorkDir


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """What ``predrnn-evaluate`` evaluates and writes (one field per evaluate-only flag).

    Attributes:
      output_dir: folder of the result files.
      checkpoint: checkpoint path prefix (None: the newest in the work directory).
      output_length: frames to forecast (0: as trained).
      baseline: evaluate this baseline instead of the model (``--baseline``).
      baselines: baselines scored beside the model in mm/h (``--baselines``).
      thresholds: dBZ thresholds of the contingency scores (dBZ datasets).
      fss_scales: FSS windows in pixels (dBZ datasets; empty: no FSS).
      rain_thresholds: mm/h thresholds of the contingency scores (rain-rate datasets).
      fss_thresholds: mm/h thresholds of the FSS (rain-rate datasets).
      fss_scales_km: FSS windows in km (rain-rate datasets).
      every_kth_sequence: rain-rate datasets: score every k-th test sequence.
      num_sequences: stop after this many test sequences (0: all).
      save_predictions: also write ``predictions.npz``.
      lpips_weights: LPIPS weights ``.npz`` (None: LPIPS reported as skipped).
      lpips_unscaled_inputs: feed LPIPS [0, 1] frames as the official trainer does.
      num_strips: sequences drawn in ``predictions.png`` / ``.gif``.
      frames_per_second: GIF frame rate.
      crop_to_model: read frames at ``config.img_width`` (False: as stored, baselines alone);
        whole test composites (``test_image_height`` in the metadata) are never cropped.
      probability_matching: also score ``model_pm``, the model's forecast post-processed by
        this method of :mod:`predrnn_tf.models.probability_matching` (``last_input``,
        ``extrapolation``; ``none``: not scored; True means ``last_input``), and with
        ``ensemble_size`` ``model_ensemble_pm``, each member post-processed so (``pooled``:
        the members only, each matched to their pooled distribution per lead).
      probability_matching_blend: ``extrapolation``: the model's share of the blend with
        pysteps' extrapolation (mm/h), in [0, 1].
      probability_matching_strength: ``extrapolation``: how far the blend moves to its
        probability-matched field (0: the blend, 1: matched), in [0, 1].
      ensemble_size: rain-rate datasets: N > 0 scores ensembles (CRPS, rank histogram,
        reliability, ROC, spread-skill): ``model_ensemble``, N members of the model's motion
        ensemble drawn in one batched call, STEPS with N members, every other forecaster as
        a one-member ensemble; 0: deterministic scores only.
      ensemble_seed: seed of the ensembles' draws: ``model_ensemble``'s members draw from it,
        STEPS' first sequence from ``STEPS_DEFAULT_SEED`` plus it (0: the usual draws).
    """

    output_dir: str
    checkpoint: str | None = None
    output_length: int = 0
    baseline: str | None = None
    baselines: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    fss_scales: tuple[int, ...] = ()
    rain_thresholds: tuple[float, ...] = radar_evaluation.RAIN_THRESHOLDS
    fss_thresholds: tuple[float, ...] = radar_evaluation.FSS_THRESHOLDS
    fss_scales_km: tuple[float, ...] = radar_evaluation.FSS_SCALES_KM
    every_kth_sequence: int = 1
    num_sequences: int = 0
    save_predictions: bool = False
    lpips_weights: str | None = None
    lpips_unscaled_inputs: bool = False
    num_strips: int = 3
    frames_per_second: float = 2.0
    crop_to_model: bool = True
    probability_matching: str = "none"
    probability_matching_blend: float = MODEL_WEIGHT  # (the field above hides the module)
    probability_matching_strength: float = MATCH_STRENGTH
    ensemble_size: int = 0
    ensemble_seed: int = 0


def restore_model(config: Config, workdir: str, checkpoint: str | None) -> tuple[Any, str]:
    """``(model, checkpoint path)`` of ``workdir`` under ``config.precision``."""
    work = WorkDir(workdir)
    trained = work.config
    if config.input_length != trained.input_length:
        raise ConfigError(f"--input_length={config.input_length} differs from the model's "
                          f"input_length={trained.input_length}")
    checkpoint = work.checkpoint(checkpoint)
    model, _ = work.restore_model(checkpoint, precision=config.precision)
    return model, checkpoint


def open_test_set(config: Config, workdir: str | None, needed: int, check_against_model: bool,
                  crop_to_model: bool) -> tuple[Any, dict[str, Any], str]:
    """``(dataset, metadata, data_dir)`` of the test split with ``needed`` frames each."""
    from predrnn_tf.data import mixing, reader
    from predrnn_tf.data.sources import resolve_data_dir

    data_dir = resolve_data_dir(config, workdir)
    metadata = mixing.read_metadata(data_dir, config.dataset_name)
    stored = metadata.get("test_sequence_length", metadata.get("sequence_length"))
    if stored is None or stored < needed:
        raise DataError(f"dataset {config.dataset_name!r} has test sequences of {stored} frames "
                        f"but input_length + output_length = {needed} are needed "
                        f"(--output_length={needed - config.input_length})")
    if check_against_model:
        reader.check_metadata(metadata, config, "test", sequence_length=needed)
    whole = bool(metadata.get("test_image_height"))
    if whole:
        logging.info("Whole test composites of %dx%d pixels: every forecaster sees them whole.",
                     metadata["test_image_height"], metadata["test_image_width"])
    dataset = reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                                  needed, shuffle=False, repeat=False, deterministic=True,
                                  drop_remainder=False,
                                  frame_size=config.img_width if crop_to_model and not whole
                                  else None)
    if metadata.get("synthetic"):
        logging.info("Evaluating on SYNTHETIC data %r (generated, not observed).",
                     config.dataset_name)
    return dataset, metadata, data_dir


def make_lpips(options: EvaluateOptions, frame_size: int) -> tuple[Any, str]:
    """The LPIPS callable of ``options.lpips_weights``, or ``(None, why it is skipped)``."""
    if options.lpips_weights is None:
        return None, (f"no --lpips_weights given; make the weights file with: "
                      f"{lpips.CONVERT_COMMAND} and pass --lpips_weights=lpips_alex.npz")
    weights = lpips.read_weights_file(options.lpips_weights)
    if frame_size < lpips.MINIMUM_SIZE:
        return None, (f"frames of {frame_size} pixels are smaller than AlexNet's "
                      f"{lpips.MINIMUM_SIZE}-pixel minimum")
    model = lpips.LPIPS(rescale_inputs=not options.lpips_unscaled_inputs)
    model.set_torch_weights(weights)
    return lpips.LPIPSDistance(model), ""


def evaluate(config: Config, workdir: str | None, options: EvaluateOptions,
             on_start: Callable[[str | None], None] | None = None) -> dict[str, Any]:
    """Evaluates the model of ``workdir`` (or baselines) on the test split; writes the files.

    Args:
      config: the evaluation's Config (the work directory's with the data flags applied).
      workdir: the training work directory; None with ``baseline`` / ``baselines`` alone.
      options: see :class:`EvaluateOptions`.
      on_start: called with the checkpoint path (None: no model) once the model is restored.

    Returns:
      The ``metrics.json`` content (``forecasters`` on the mm/h path).
    """
    output_length = options.output_length or config.output_length
    if options.lpips_weights:  # a wrong path fails before any slow work
        lpips.read_weights_file(options.lpips_weights)
    if pm_method(options.probability_matching) == "pooled" and not options.ensemble_size:
        raise ConfigError("--probability_matching=pooled matches an ensemble's members: give "
                          "--ensemble_size=N too")
    model = checkpoint = None
    if not options.baseline and (workdir or not options.baselines):
        model, checkpoint = restore_model(config, workdir, options.checkpoint)
    if on_start is not None:
        on_start(checkpoint)
    dataset, metadata, data_dir = open_test_set(
        config, workdir, config.input_length + output_length,
        check_against_model=model is not None, crop_to_model=options.crop_to_model)
    info = {"workdir": workdir, "checkpoint": checkpoint, "data_dir": data_dir}
    if options.baselines or units.is_rain_rate_mapping(metadata):
        info["ensemble_noise_std"] = config.ensemble_noise_std  # the members' state noise
        return _evaluate_rain_rate(model, dataset, metadata, config.input_length,
                                   output_length, options, info, config.batch_size)
    forecaster = model if model is not None else baselines.make_baseline(options.baseline,
                                                                          output_length)
    lpips_model, lpips_reason = make_lpips(
        options, min(metadata["image_height"], metadata["image_width"]))
    info.update(baseline=options.baseline, lpips_inputs="[0, 1] (official trainer)"
                if options.lpips_unscaled_inputs else "[-1, 1]")
    paper_options = evaluator.EvaluationOptions(
        input_length=config.input_length, output_length=output_length,
        thresholds=options.thresholds, fss_scales=options.fss_scales,
        num_sequences=options.num_sequences, save_predictions=options.save_predictions,
        num_strips=options.num_strips, frames_per_second=options.frames_per_second,
        name=options.baseline or config.model_name)
    return evaluator.evaluate(forecaster, dataset, options.output_dir, paper_options,
                              metadata=metadata, lpips_model=lpips_model,
                              lpips_skip_reason=lpips_reason, info=info)


def _evaluate_rain_rate(model: Any, dataset: Any, metadata: dict[str, Any], input_length: int,
                        output_length: int, options: EvaluateOptions,
                        info: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """The model and ``options.baselines`` in mm/h in one pass (rain-rate datasets;
    ``batch_size``: the config's, kept when every k-th sequence is taken)."""
    unknown = sorted(set(options.baselines) - set(baselines.BASELINES))
    if unknown:
        raise ConfigError(f"--baselines: unknown {unknown}; expected some of "
                          f"{', '.join(baselines.BASELINES)}")
    chosen_baselines = {name: baselines.make_baseline(
        name, output_length, metadata,
        num_members=options.ensemble_size or baselines.STEPS_DEFAULT_MEMBERS,
        ensemble_seed=options.ensemble_seed)
        for name in options.baselines}
    forecasters = {}
    if model is not None:
        forecasters["model"] = LastForecast(evaluator.as_forecaster(model, output_length))
        method = pm_method(options.probability_matching)
        extrapolation = chosen_baselines.get("extrapolation")
        if method == "extrapolation" and extrapolation is None:  # one for model_pm and members
            extrapolation = baselines.RainRateNowcast("extrapolation", output_length, metadata)
        if method not in ("none", "pooled"):
            forecasters["model_pm"] = ProbabilityMatched(
                forecasters["model"], metadata, method, output_length,
                extrapolation=extrapolation, blend=pm_blend(options))
    if model is not None and options.ensemble_size:
        ensemble = LastMembers(model_ensemble(model, options.ensemble_size, metadata,
                                              output_length, info.get("ensemble_noise_std", 0.0),
                                              seed=options.ensemble_seed))
        forecasters["model_ensemble"] = ensemble
        if method != "none":
            forecasters["model_ensemble_pm"] = ProbabilityMatchedMembers(
                ensemble, metadata, method, output_length, extrapolation=extrapolation,
                blend=pm_blend(options))
    forecasters.update(chosen_baselines)
    if not forecasters:
        raise ConfigError("nothing to evaluate: give --workdir and/or --baselines")
    return radar_evaluation.evaluate_forecasters(
        forecasters, radar_evaluation.every_kth(dataset, options.every_kth_sequence, batch_size),
        metadata,
        options.output_dir, input_length, output_length,
        save_predictions=options.save_predictions,
        info={"workdir": info["workdir"], "checkpoint": info["checkpoint"],
              "every_kth_sequence": options.every_kth_sequence,
              "ensemble_seed": options.ensemble_seed,
              "probability_matching": pm_method(options.probability_matching),
              "probability_matching_blend": options.probability_matching_blend,
              "probability_matching_strength": options.probability_matching_strength},
        thresholds=options.rain_thresholds, fss_thresholds=options.fss_thresholds,
        fss_scales_km=options.fss_scales_km, ensemble=options.ensemble_size > 0)


def model_ensemble(model: Any, num_members: int, metadata: dict[str, Any],
                   output_length: int, state_noise_std: float = 0.0, seed: int = 0) -> Any:
    """The model's N-member motion ensemble on the dataset's grid, as a ``members`` forecaster
    (``state_noise_std``: the work directory's ``ensemble_noise_std``; ``seed``: its draws')."""
    from predrnn_tf.models.ensemble import MemberForecaster, MotionEnsemble

    pixel_km, interval_minutes = units.grid_spacing(metadata)
    return MemberForecaster(MotionEnsemble(model, num_members, pixel_km, interval_minutes,
                                           seed=seed, state_noise_std=state_noise_std),
                            output_length)


class LastForecast:
    """A forecaster that remembers its last inputs and forecast (derived forecasters reuse it)."""

    def __init__(self, forecaster: Callable[[Any], Any]):
        self.forecaster = forecaster
        self.inputs: Any = None
        self.forecast: Any = None

    def __call__(self, inputs: Any) -> Any:
        if self.inputs is None or self.inputs.shape != np.shape(inputs) or not np.array_equal(
                self.inputs, inputs):
            self.inputs = np.array(inputs, np.float32)
            self.forecast = np.asarray(self.forecaster(inputs), np.float32)
        return self.forecast


class LastMembers(LastForecast):
    """An ensemble's ``members`` that remembers its last inputs and members (``[B, N, ...]``)."""

    def __init__(self, ensemble: Any):
        super().__init__(ensemble.members)
        self.num_members = int(ensemble.num_members)

    def members(self, inputs: Any) -> np.ndarray:
        """The ensemble's members of ``inputs``, computed once per inputs."""
        return self(inputs)


def pm_method(value: bool | str) -> str:
    """The probability-matching method of ``EvaluateOptions`` (a bool: True = last_input)."""
    if isinstance(value, bool):
        return "last_input" if value else "none"
    try:
        return probability_matching.check_method(value, members=True)
    except ValueError as error:
        raise ConfigError(f"--{error}") from None


def pm_blend(options: EvaluateOptions) -> tuple[float, float]:
    """``(model weight, strength)`` of the options (ConfigError naming a value outside [0, 1])."""
    try:
        return probability_matching.check_blend(options.probability_matching_blend,
                                                options.probability_matching_strength)
    except ValueError as error:
        raise ConfigError(f"--{error}") from None


class ProbabilityMatched:
    """``base``'s forecast post-processed by a :mod:`.probability_matching` method.

    ``blend``: ``(model weight, strength)`` of the ``extrapolation`` method (None: its
    defaults).
    """

    def __init__(self, base: LastForecast, metadata: dict[str, Any], method: str = "last_input",
                 output_length: int = 0, extrapolation: Any = None,
                 blend: tuple[float, float] | None = None):
        self.base = base
        self.metadata = metadata
        self.method = method
        self.blend = blend or (MODEL_WEIGHT, MATCH_STRENGTH)
        self.extrapolate = None
        if method == "extrapolation":  # the extrapolation baseline's, when it is scored too
            if not isinstance(extrapolation, baselines.RainRateNowcast):
                extrapolation = baselines.RainRateNowcast("extrapolation", output_length,
                                                          metadata)
            self.extrapolate = extrapolation.forecast_rates

    def __call__(self, inputs: Any) -> np.ndarray:
        return probability_matching.postprocess(self.method, inputs, self.base(inputs),
                                                self.metadata, self.extrapolate, *self.blend)


class ProbabilityMatchedMembers(ProbabilityMatched):
    """Every member of an ensemble post-processed by a :mod:`.probability_matching` method.

    As pysteps' STEPS matches each member's distribution (``probmatching_method="cdf"``):
    ``last_input`` matches each member and lead to the last input's rain rates;
    ``extrapolation`` blends each member with the one extrapolation nowcast, then matches;
    ``pooled`` matches each member to all the members' pooled distribution at that lead
    (:func:`~predrnn_tf.models.probability_matching.match_members_to_pool`).
    ``base``: the ensemble's :class:`LastMembers` (the raw members are drawn once).
    """

    def __init__(self, base: LastMembers, *args: Any, **kwargs: Any):
        super().__init__(base, *args, **kwargs)
        self.num_members = base.num_members

    def members(self, inputs: Any) -> np.ndarray:
        """``[B, T_in, H, W, 1]`` [0, 1] -> the matched ``[B, N, T, H, W, 1]`` [0, 1]."""
        members = self.base(inputs)  # [B, N, T, H, W, 1]
        if self.method == "pooled":
            return probability_matching.match_members_to_pool(inputs, members, self.metadata)
        count = members.shape[1]
        # [B * N, 1, H, W, 1]: each member beside its sequence's last input (b0 x N, b1 x N..)
        last_inputs = np.repeat(np.asarray(inputs, np.float32)[:, -1:], count, axis=0)
        extrapolate = None
        if self.extrapolate is not None:  # one extrapolation per sequence, for all its members
            rates = np.repeat(np.asarray(self.extrapolate(inputs)), count, axis=0)

            def extrapolate(_: Any) -> np.ndarray:
                return rates
        flat = members.reshape(-1, *members.shape[2:])  # [B * N, T, H, W, 1]
        matched = probability_matching.postprocess(self.method, last_inputs, flat,
                                                   self.metadata, extrapolate, *self.blend)
        return matched.reshape(members.shape)


def summary(result: dict[str, Any], output_dir: str) -> str:
    """The console lines of a result: headline scores, skipped scores, failures, files."""
    if "forecasters" in result:  # the mm/h table
        lines = [radar_evaluation.format_table(result["forecasters"], result["lead_minutes"])]
        for name, failure in result.get("failures", {}).items():
            lines.append(f"{name} failed on {failure['failed_sequences']} sequence(s), left "
                         f"out of its scores: {', '.join(failure['errors'])}")
        lines.append(f"wrote {os.path.join(output_dir, radar_evaluation.METRICS_FILENAME)}, "
                     f"{radar_evaluation.TABLE_FILENAME} and {radar_evaluation.PLOT_FILENAME}")
        return "\n".join(lines)
    lines = [evaluator.summary_line(result)]
    if "lpips" in result["skipped"]:
        lines.append(f"LPIPS skipped: {result['skipped']['lpips']}")
    lines.append(f"wrote {os.path.join(output_dir, evaluator.METRICS_FILENAME)} and "
                 f"{', '.join(sorted(result['files'].values()))}")
    return "\n".join(lines)
