"""SavedModel export for TF Serving: float32 in and out, compute in the chosen precision.

``export_workdir(workdir, export_dir)`` restores a trained model and writes the TF Serving
layout ``EXPORT_DIR/MODEL_NAME/VERSION/`` (``saved_model.pb``, ``variables/`` and
``assets.extra/`` with the warm-up requests and ``export_info.json``). The signatures are
described in :mod:`predrnn_tf.serving.signatures`; the version folder is published by
:mod:`predrnn_tf.serving.publishing`. Under a mixed precision the layers compute in
float16/bfloat16 while the signatures keep float32 inputs and outputs (Keras 3
``model.export`` would declare half-precision tensors), and the relative L2 difference to
the float32 model is logged.

This module reads no dataset: the caller (``predrnn_tf.cli.export``) passes the dataset's
dBZ value mapping and the comparison frames.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf import files, units
from predrnn_tf.config import PRECISIONS, Config
from predrnn_tf.errors import ExportError
from predrnn_tf.models.forecasting import make_forecast_function
from predrnn_tf.serving import graph_ops, publishing, warmup
from predrnn_tf.serving.signatures import (
    INPUT_KEY,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
    ForecastModule,
    spatial_size_is_dynamic,
)
from predrnn_tf.workdir import WorkDir, step_of

ASSETS_EXTRA = "assets.extra"
WARMUP_FILENAME = warmup.WARMUP_FILENAME
EXPORT_INFO_FILENAME = "export_info.json"


# --- comparison against float32 ---------------------------------------------------------------
def relative_l2(values: np.ndarray, reference: np.ndarray) -> float:
    """``||values - reference|| / ||reference||`` (absolute norm if the reference is zero)."""
    values = np.asarray(values, np.float64)
    reference = np.asarray(reference, np.float64)
    norm = float(np.linalg.norm(reference))
    difference = float(np.linalg.norm(values - reference))
    return difference / norm if norm > 0 else difference


def random_frames(config: Config, count: int = 2, seed: int = 0) -> np.ndarray:
    """Seeded uniform inputs ``[count, input_length, W, W, C]`` for the precision check."""
    shape = (count, config.input_length, config.img_width, config.img_width, config.img_channel)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def keras_forecast(model, frames: np.ndarray) -> np.ndarray:
    """The Keras model's clipped forecast, through the one compiled forecast function."""
    return make_forecast_function(model)(tf.constant(frames)).numpy()


def compare_with_reference(saved_model_dir: str, reference_model,
                           frames: np.ndarray) -> dict[str, float]:
    """Runs the saved ``serving_default`` and the float32 Keras forecast on ``frames``."""
    loaded = tf.saved_model.load(saved_model_dir)
    served = loaded.signatures[SERVING_SIGNATURE](**{INPUT_KEY: tf.constant(frames)})
    served = served[OUTPUT_KEY].numpy()
    reference = keras_forecast(reference_model, frames)
    result = {"max_abs_difference": float(np.max(np.abs(served - reference))),
              "relative_l2_vs_float32": relative_l2(served, reference)}
    logging.info("Exported serving_default vs the float32 Keras model on %d sequences: "
                 "relative L2 %.3g, max |difference| %.3g", len(frames),
                 result["relative_l2_vs_float32"], result["max_abs_difference"])
    return result


# --- writing the version folder ---------------------------------------------------------------
def write_saved_model(module: ForecastModule, path: str) -> list[str]:
    """Saves ``module`` with its signatures into ``path``; returns the sorted op types.

    Raises ExportError if an op is not registered in plain TensorFlow (TF Serving has no
    custom ops).
    """
    tf.saved_model.save(module, path, signatures=module.signatures())
    return graph_ops.check_stock_ops(path)


def write_assets(folder: str, config: Config, model_name: str, summary: dict[str, Any],
                 value_mapping: dict[str, Any] | None, write_warmup: bool) -> None:
    """Writes ``assets.extra/``: the warm-up requests and ``export_info.json``."""
    assets = os.path.join(folder, ASSETS_EXTRA)
    os.makedirs(assets, exist_ok=True)
    if write_warmup:
        summary["warmup_requests"] = warmup.write_warmup_requests(
            os.path.join(assets, WARMUP_FILENAME), model_name,
            warmup.warmup_inputs(config, value_mapping))
    recorded = {key: value for key, value in summary.items() if key != "path"}
    files.write_json(os.path.join(assets, EXPORT_INFO_FILENAME),
                     {**recorded, "config": config.to_dict()}, sort_keys=True)


def export_model(model, config: Config, export_dir: str, model_name: str,
                 version: int, *, value_mapping: dict[str, Any] | None = None,
                 reference_model=None, reference_frames: np.ndarray | None = None,
                 info: dict[str, Any] | None = None, warmup: bool = True,
                 ensemble=None) -> dict[str, Any]:
    """Writes ``EXPORT_DIR/MODEL_NAME/VERSION`` atomically and returns the export summary.

    Args:
      model: the built model, under the precision policy to serve with.
      config: its configuration.
      export_dir: the model base folder root (TF Serving's ``--model_base_path`` parent).
      model_name: the served model name (a folder under ``export_dir``).
      version: the version folder number; an existing version raises ExportError.
      value_mapping: a dBZ value mapping (adds ``predict_dbz``) or a dBR rain-rate one (adds
        ``predict_mm_per_hour``).
      reference_model: a float32 model with the same weights; with ``reference_frames``,
        the exported signature is compared against its forecast before publishing.
      reference_frames: inputs ``[N, input_length, W, W, C]`` for that comparison.
      info: extra entries for ``assets.extra/export_info.json``.
      warmup: write ``assets.extra/tf_serving_warmup_requests``.
      ensemble: a :class:`~predrnn_tf.models.ensemble.MotionEnsemble` of ``model`` (adds
        ``predict_ensemble_mm_per_hour``), or None.

    Returns:
      A JSON-ready dict: path, version, precision, signatures, op count and, with a
      reference, ``max_abs_difference`` and ``relative_l2_vs_float32``.
    """
    final_path = publishing.version_path(export_dir, model_name, version)
    summary = {"path": final_path, "model_name": model_name, "version": version,
               "precision": model.dtype_policy.name,
               "value_mapping": dict(value_mapping) if value_mapping else None, **(info or {})}
    with publishing.staged_folder(final_path) as staging:
        module = ForecastModule(model, config, value_mapping, ensemble=ensemble)
        ops = write_saved_model(module, staging)
        summary["signatures"] = sorted(module.signatures())
        summary["num_op_types"] = len(ops)
        summary["spatial_size"] = "dynamic" if spatial_size_is_dynamic(config) else (
            config.img_width)
        logging.info("Exported %d op types, all registered in plain TensorFlow.", len(ops))
        if reference_model is not None and reference_frames is not None:
            summary.update(compare_with_reference(staging, reference_model, reference_frames))
        write_assets(staging, config, model_name, summary, value_mapping, warmup)
    logging.info("Wrote %s", final_path)
    return summary


def motion_ensemble(model, ensemble_size: int, data_card: dict[str, Any] | None,
                    state_noise_std: float = 0.0):
    """The N-member :class:`~predrnn_tf.models.ensemble.MotionEnsemble` of ``model`` (with the
    work directory's ``ensemble_noise_std``), or None for N = 0; ExportError naming
    ``--ensemble_size`` if the model or data card cannot."""
    if not ensemble_size:
        return None
    from predrnn_tf.models.ensemble import MotionEnsemble

    try:
        return MotionEnsemble(model, ensemble_size, *units.grid_spacing(data_card),
                              state_noise_std=state_noise_std)
    except (TypeError, ValueError) as error:  # TypeError: a card whose values are None
        raise ExportError(f"--ensemble_size={ensemble_size} needs a rain-rate model trained "
                          f"with --residual_frames --advection_prior and a data card with "
                          f"pixel_km and interval_minutes: {error!r}") from error


# --- from a work directory ---------------------------------------------------------------------
def export_destination(workdir: str, export_dir: str, model_name: str | None,
                       version: int | None, checkpoint: str | None) -> tuple[str, int, str]:
    """``(checkpoint, version, model_name)`` with the defaults filled in, checked up front.

    CheckpointError without a checkpoint, ExportError if the version folder already exists,
    so a doomed export fails before any slow work.
    """
    work = WorkDir(workdir)
    checkpoint = work.checkpoint(checkpoint)
    version = step_of(checkpoint) if version is None else version
    model_name = model_name or publishing.default_model_name(workdir, work.config)
    publishing.version_path(export_dir, model_name, version)
    return checkpoint, version, model_name


def restore_reference(workdir: str, checkpoint: str, model, precision: str):
    """The float32 model to compare against: ``model`` itself under float32."""
    if precision == "float32":
        return model
    reference_model, _ = WorkDir(workdir).restore_model(checkpoint, precision="float32")
    return reference_model


def comparison_inputs(workdir: str, checkpoint: str, model, precision: str,
                      frames: np.ndarray | None, source: str) -> tuple[Any, np.ndarray]:
    """``(float32 reference model, inputs)`` of the precision check (default inputs: seeded
    random frames at the model's trained size)."""
    reference_model = restore_reference(workdir, checkpoint, model, precision)
    if frames is None:
        frames, source = random_frames(WorkDir(workdir).config), "2 random sequences"
    logging.info("Comparing against the float32 model on %s.",
                 source or f"{len(frames)} sequences")
    return reference_model, frames


def export_workdir(workdir: str, export_dir: str, *, model_name: str | None = None,
                   precision: str = "float32", version: int | None = None,
                   checkpoint: str | None = None, warmup: bool = True,
                   compare: bool = True, value_mapping: dict[str, Any] | None = None,
                   reference_frames: np.ndarray | None = None,
                   reference_source: str = "", data_card: dict[str, Any] | None = None,
                   ensemble_size: int = 0) -> dict[str, Any]:
    """Exports the model of a training work directory for TF Serving.

    Args:
      workdir: a training work directory (``config.json`` and ``checkpoints/``).
      export_dir: root of the exports; the model goes to ``EXPORT_DIR/MODEL_NAME/VERSION``.
      model_name: served model name (default: the work directory's folder name).
      precision: ``float32``, ``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (CPUs with
        AVX-512 BF16/AMX, TPUs): the compute dtype; inputs and outputs stay float32.
      version: version number (default: the checkpoint's training step).
      checkpoint: checkpoint path prefix (default: the newest in the work directory).
      warmup: write TF Serving warm-up requests.
      compare: check the exported signature against the float32 Keras model and report
        the relative L2 difference (the precision loss under a mixed policy).
      value_mapping: the dataset's dBZ value mapping (adds ``predict_dbz``), or None: then
        a rain-rate mapping of ``data_card`` adds ``predict_mm_per_hour``.
      reference_frames: inputs of the comparison (default: seeded random frames).
      reference_source: what ``reference_frames`` are, for the log (e.g. "2 test sequences").
      data_card: the work directory's ``data_card.json`` (units, grid, interval), kept in
        ``assets.extra/export_info.json`` so the export reports in physical units on its own.
      ensemble_size: N > 0 adds ``predict_ensemble_mm_per_hour`` (N members), 0 does not.

    Returns:
      The export summary (see :func:`export_model`).
    """
    if precision not in PRECISIONS:
        raise ExportError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                          f"got {precision!r}")
    checkpoint, version, model_name = export_destination(workdir, export_dir, model_name,
                                                         version, checkpoint)
    if value_mapping is None and units.is_rain_rate_mapping(data_card):
        value_mapping = units.mapping_of(data_card)
    model, config = WorkDir(workdir).restore_model(checkpoint, precision=precision)
    reference_model = None
    if compare:
        reference_model, reference_frames = comparison_inputs(
            workdir, checkpoint, model, precision, reference_frames, reference_source)
    info = {"workdir": os.path.abspath(workdir), "checkpoint": checkpoint, "data_card": data_card,
            "trained_precision": config.precision, "ensemble_size": ensemble_size}
    return export_model(model, config, export_dir, model_name, version,
                        value_mapping=value_mapping, reference_model=reference_model,
                        reference_frames=reference_frames, info=info, warmup=warmup,
                        ensemble=motion_ensemble(model, ensemble_size, data_card,
                                                 config.ensemble_noise_std))
