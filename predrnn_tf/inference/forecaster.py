"""One ``forecast`` call over a work directory's checkpoint or an exported SavedModel.

Both forecast through the same clipped forecast (``models/forecasting.py``; the exported
``serving_default`` is that function traced), so a workdir and its export give the same
numbers on the same input.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from predrnn_tf import files, units
from predrnn_tf.errors import ConfigError, DataError, ExportError, InputError, PredRNNError
from predrnn_tf.workdir import WorkDir


@dataclasses.dataclass
class Forecaster:
    """A model behind ``forecast(frames01, output_length) -> [B, T_out, H, W, C]`` in [0, 1].

    Attributes:
      source: what was loaded (for logs).
      input_length: frames the model reads.
      trained_output_length: frames it forecasts by default.
      img_channel: channels per frame.
      img_width: the training frame size.
      patch_size: the patch size (H and W must be multiples of it).
      value_mapping: pixels -> physical units of the training data, or None.
      data: the training data's metadata (``value_mapping``, ``grid``, ``details``: how a
        radar archive is converted like it), or None.
      run: ``(frames01, output_length) -> predictions`` (numpy in, numpy out).
      fixed_output_length: True for a SavedModel (its horizon is fixed at export).
      run_members: ``(frames01, output_length, N) -> [B, N, T, H, W, C]`` in [0, 1]: N
        members in one batched call (a work directory's radar model with the advection
        prior: :class:`predrnn_tf.models.ensemble.MotionEnsemble`), or None.
    """

    source: str
    input_length: int
    trained_output_length: int
    img_channel: int
    img_width: int
    patch_size: int
    value_mapping: dict[str, Any] | None
    run: Callable[[np.ndarray, int], np.ndarray]
    fixed_output_length: bool = False
    data: dict[str, Any] | None = None
    run_members: Callable[[np.ndarray, int, int], np.ndarray] | None = None

    def forecast(self, frames01: np.ndarray, output_length: int | None = None,
                 batch_size: int = 8) -> np.ndarray:
        """Forecasts every sequence of ``frames01`` ``[B, input_length, H, W, C]``."""
        from predrnn_tf.models.inputs import check_frames, check_output_length

        length = check_output_length(output_length, self.trained_output_length)
        if self.fixed_output_length and length != self.trained_output_length:
            raise InputError(f"output_length={length}: an exported SavedModel forecasts "
                             f"{self.trained_output_length} frames (use --workdir for others)")
        check_frames(frames01, self.input_length, self.img_channel, self.patch_size)
        chunks = [self.run(np.asarray(frames01[start:start + batch_size], np.float32), length)
                  for start in range(0, len(frames01), batch_size)]
        return np.concatenate(chunks, axis=0)

    def forecast_members(self, frames01: np.ndarray, num_members: int,
                         output_length: int | None = None) -> np.ndarray:
        """N members ``[B, N, T, H, W, C]`` in [0, 1], one batched call per sequence."""
        from predrnn_tf.models.inputs import check_frames, check_output_length

        if self.run_members is None:
            raise ConfigError(f"--ensemble_size needs a work directory's radar model with the "
                              f"advection prior (--workdir); {self.source} has none")
        length = check_output_length(output_length, self.trained_output_length)
        check_frames(frames01, self.input_length, self.img_channel, self.patch_size)
        return np.concatenate([self.run_members(np.asarray(frames01[index:index + 1],
                                                           np.float32), length, num_members)
                               for index in range(len(frames01))], axis=0)


def members_function(model: Any, metadata: dict[str, Any] | None, state_noise_std: float = 0.0
                     ) -> Callable[[np.ndarray, int, int], np.ndarray] | None:
    """``(frames01, output_length, N) -> members`` of a radar model with the advection prior
    (``state_noise_std``: the work directory's ``ensemble_noise_std``).

    None for other models (no :class:`~predrnn_tf.models.radar_head.RadarHead` with the
    advection prior, or no grid in the training data's metadata).
    """
    from predrnn_tf.models import ensemble
    from predrnn_tf.models.radar_head import RadarHead

    head = getattr(model, "output_head", None)
    if not isinstance(head, RadarHead) or not head.advection_prior:
        return None
    try:
        pixel_km, interval_minutes = units.grid_spacing(metadata)
    except ValueError:
        return None
    built: dict[tuple[int, int], Any] = {}

    def run_members(frames01: np.ndarray, output_length: int, num_members: int) -> np.ndarray:
        if (output_length, num_members) not in built:
            built[output_length, num_members] = ensemble.MemberForecaster(ensemble.MotionEnsemble(
                model, num_members, pixel_km, interval_minutes,
                state_noise_std=state_noise_std), output_length)
        return built[output_length, num_members].members(frames01)

    return run_members


def workdir_metadata(work: WorkDir) -> dict[str, Any] | None:
    """The training data's metadata: the dataset's, completed by the data card, or None.

    The dataset folder may be gone: the work directory's ``data_card.json`` (written by
    training) then gives the ``value_mapping`` and ``grid``.
    """
    from predrnn_tf.data import sources

    return work.metadata(sources.dataset_metadata(work.config, work.path))


def from_workdir(workdir: str, checkpoint: str | None = None) -> Forecaster:
    """The newest (or the given) checkpoint of a work directory."""
    from predrnn_tf.models.forecasting import make_forecast_function

    work = WorkDir(workdir)
    model, config = work.restore_model(checkpoint)
    metadata = workdir_metadata(work)
    functions: dict[int, Callable] = {}

    def run(frames01: np.ndarray, output_length: int) -> np.ndarray:
        if output_length not in functions:
            functions[output_length] = make_forecast_function(model, output_length)
        return functions[output_length](frames01).numpy()

    return Forecaster(
        source=f"workdir {os.path.abspath(workdir)}", input_length=config.input_length,
        trained_output_length=config.total_length - config.input_length,
        img_channel=config.img_channel, img_width=config.img_width,
        patch_size=config.patch_size, value_mapping=units.mapping_of(metadata), run=run,
        data=metadata, run_members=members_function(
            model, metadata, config.ensemble_noise_std))


def saved_model_version_dir(path: str) -> str:
    """``path`` itself if it holds a saved_model.pb, else its newest numeric version folder."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise ConfigError(f"--saved_model={path} does not exist")
    versions = files.saved_model_versions(path)
    if not versions:
        raise ConfigError(f"--saved_model={path} holds no saved_model.pb and no version folder")
    return os.path.join(path, str(versions[-1]))


def load_export(path: str) -> tuple[str, dict[str, Any], Any]:
    """``(version folder, export_info, loaded SavedModel)`` of ``--saved_model=path``.

    A version folder is loaded as given (one line naming its damaged file otherwise); a
    model folder gives its newest intact version, a damaged newer one passed over with a
    warning, as TF Serving does.
    """
    import tensorflow as tf

    from predrnn_tf import checkpoints
    from predrnn_tf.serving import publishing

    def load(folder: str) -> tuple[dict[str, Any], Any]:
        problem = publishing.version_problem(folder)
        if problem:
            raise ExportError(f"--saved_model={folder} is damaged: {problem}")
        return read_export_info(folder), tf.saved_model.load(folder)

    folder = saved_model_version_dir(path)
    if folder == path:
        try:
            info, loaded = load(folder)
        except PredRNNError:
            raise
        except Exception as error:  # noqa: BLE001 (any failure to load: a damaged export)
            raise ExportError(f"--saved_model={folder} is damaged: saved_model.pb: "
                              f"{checkpoints.error_line(error, limit=200)}") from None
        return folder, info, loaded
    _, folder, (info, loaded) = publishing.load_newest_intact(path, load)
    return folder, info, loaded


def read_export_info(folder: str) -> dict[str, Any]:
    """``assets.extra/export_info.json`` of a version folder (DataError when unreadable)."""
    info_path = os.path.join(folder, "assets.extra", "export_info.json")
    try:
        with open(info_path) as stream:
            info = json.load(stream)
        info["config"]  # noqa: B018 (checked to exist)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{info_path} is missing or unreadable ({error}): export with "
                        f"predrnn-export") from None
    return info


def export_metadata(info: dict[str, Any]) -> dict[str, Any] | None:
    """The training data's metadata an export records (its data card, or its value_mapping).

    ``export_info.json`` may hold ``data_card`` (the work directory's ``data_card.json``);
    otherwise the card of its ``workdir`` is read when that folder still exists.
    """
    card = info.get("data_card")
    if not card and info.get("workdir") and os.path.isdir(info["workdir"]):
        try:
            card = WorkDir(info["workdir"]).data_card
        except DataError:
            card = None
    metadata = {"value_mapping": (card or {}).get("value_mapping") or info.get("value_mapping"),
                "grid": (card or {}).get("grid")}
    return metadata if metadata["value_mapping"] else None


def from_saved_model(path: str) -> Forecaster:
    """An export of ``predrnn-export`` (a version folder, or the model folder: newest)."""
    import tensorflow as tf

    from predrnn_tf.serving.signatures import INPUT_KEY, OUTPUT_KEY, SERVING_SIGNATURE

    folder, info, loaded = load_export(path)
    config = info["config"]
    signature = loaded.signatures[SERVING_SIGNATURE]
    metadata = export_metadata(info)

    def run(frames01: np.ndarray, output_length: int) -> np.ndarray:
        del output_length
        return signature(**{INPUT_KEY: tf.constant(frames01, tf.float32)})[OUTPUT_KEY].numpy()

    return Forecaster(
        source=f"SavedModel {os.path.abspath(folder)}", input_length=config["input_length"],
        trained_output_length=config["total_length"] - config["input_length"],
        img_channel=config["img_channel"], img_width=config["img_width"],
        patch_size=config["patch_size"],
        value_mapping=metadata["value_mapping"] if metadata else None, run=run,
        fixed_output_length=True, data=metadata)
