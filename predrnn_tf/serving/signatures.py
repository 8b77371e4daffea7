"""The exported object: a model's variables and its float32 serving signatures.

- ``serving_default``: ``frames`` float32 ``[batch, input_length, H, W, C]`` in [0, 1] ->
  ``predictions`` float32 ``[batch, output_length, H, W, C]`` clipped to [0, 1]. Batch is
  dynamic; H and W are dynamic (any multiple of ``patch_size``) unless the model has
  size-bound weights (``layer_norm``, ConvLSTM peepholes).
- ``predict_dbz`` (datasets whose metadata maps pixels to dBZ): ``frames_dbz`` ->
  ``predictions_dbz``, the same forecast through the dataset's value mapping.
- ``predict_mm_per_hour`` (rain-rate datasets, a dBR ``value_mapping``):
  ``frames_mm_per_hour`` (rain rate >= 0, NaN = no data) -> ``predictions_mm_per_hour``
  (NaN where the newest input frame has no data: outside radar coverage), converted as
  :mod:`predrnn_tf.units` converts rain rate (the same numbers as ``predrnn-predict``).
- ``predict_ensemble_mm_per_hour`` (rain-rate models with the advection prior, exported with
  an ensemble size N > 0): ``frames_mm_per_hour`` -> ``members_mm_per_hour``
  ``[batch, N, output_length, H, W, C]`` (the :class:`~predrnn_tf.models.ensemble.MotionEnsemble`
  members, one batched call; new random perturbations at every request) and
  ``exceedance_probabilities`` ``[batch, output_length, H, W, K]``, the fraction of members at
  or above each of K thresholds (default 1 and 5 mm/h). NaN where the newest input frame has
  no data.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.config import Config
from predrnn_tf.errors import ExportError
from predrnn_tf.models.ensemble import exceedance_probabilities
from predrnn_tf.models.forecasting import clipped_forecast

SERVING_SIGNATURE = "serving_default"
DBZ_SIGNATURE = "predict_dbz"
INPUT_KEY = "frames"
OUTPUT_KEY = "predictions"
DBZ_INPUT_KEY = "frames_dbz"
DBZ_OUTPUT_KEY = "predictions_dbz"
RAIN_RATE_SIGNATURE = "predict_mm_per_hour"
RAIN_RATE_INPUT_KEY = "frames_mm_per_hour"
RAIN_RATE_OUTPUT_KEY = "predictions_mm_per_hour"
ENSEMBLE_SIGNATURE = "predict_ensemble_mm_per_hour"
MEMBERS_OUTPUT_KEY = "members_mm_per_hour"
PROBABILITIES_OUTPUT_KEY = "exceedance_probabilities"
DEFAULT_THRESHOLDS = (1.0, 5.0)  # mm/h, as predrnn-predict's probability maps


def physical_signature(value_mapping: dict[str, Any] | None) -> tuple[str, str, str] | None:
    """``(signature, input key, output key)`` in the mapping's physical units, or None."""
    if units.is_rain_rate_mapping(value_mapping):
        return RAIN_RATE_SIGNATURE, RAIN_RATE_INPUT_KEY, RAIN_RATE_OUTPUT_KEY
    if units.dbz_mapping(value_mapping):
        return DBZ_SIGNATURE, DBZ_INPUT_KEY, DBZ_OUTPUT_KEY
    return None


def spatial_size_is_dynamic(config: Config) -> bool:
    """Whether the model accepts frame sizes other than ``img_width`` (no size-bound weights)."""
    size_bound = config.layer_norm or (config.model_name == "convlstm"
                                       and config.conv_lstm_peephole)
    return not size_bound


def tensorflow_variable(variable) -> tf.Variable:
    """The ``tf.Variable`` behind a Keras 3 variable (TensorFlow backend)."""
    value = getattr(variable, "value", variable)
    if not isinstance(value, tf.Variable):
        raise ExportError(f"variable {variable.path!r} is not backed by a tf.Variable "
                          f"(got {type(value).__name__}); export needs the TensorFlow backend")
    return value


def checked_frames(model, frames: tf.Tensor) -> tf.Tensor:
    """``frames`` behind a graph-side check of their shape against the model.

    Turns a wrong frame count or channel count, or a frame size that is not a multiple of
    ``patch_size``, into a clear InvalidArgument error for the client (a graph-mode server
    feeds the placeholder without checking its declared shape, and the unrolled model would
    otherwise answer a wrong-length request with a wrong forecast).
    """
    shape = tf.shape(frames)
    valid = tf.reduce_all([
        tf.equal(tf.size(shape), 5),
        tf.equal(shape[1], model.input_length),
        tf.equal(shape[-1], model.img_channel),
        tf.reduce_all(tf.equal(tf.math.floormod(shape[2:4], model.patch_size), 0)),
    ])
    expected = (f"frames must be [batch, {model.input_length}, H, W, {model.img_channel}] with "
                f"H and W multiples of patch_size={model.patch_size}; received shape")
    check = tf.debugging.Assert(valid, [expected, shape])
    with tf.control_dependencies([check]):
        in_range = tf.logical_and(tf.reduce_all(frames >= 0.0), tf.reduce_all(frames <= 1.0))
        range_check = tf.debugging.Assert(in_range, [
            "frames must be finite and in [0, 1] (0-255 values? divide by 255; no-data pixels: "
            "send 0); received min and max", tf.reduce_min(frames), tf.reduce_max(frames)])
    with tf.control_dependencies([check, range_check]):
        return tf.identity(frames)


def checked_physical_frames(frames: tf.Tensor, mapping: dict[str, Any],
                            name: str = DBZ_INPUT_KEY) -> tf.Tensor:
    """Physical-unit ``frames`` behind a graph-side check: finite, and not [0, 1] pixels.

    A request whose every value lies in [0, 1] while the mapping's no-echo value is negative
    holds no "no echo" pixel at all: it is [0, 1] pixels sent to the physical-unit signature.
    """
    finite = tf.reduce_all(tf.math.is_finite(frames))
    checks = [tf.debugging.Assert(finite, [
        f"{name} must be finite (no-data pixels: send the no-echo value "
        f"{float(mapping['offset']):g})"])]
    if float(mapping["offset"]) < 0.0:
        looks_like_pixels = tf.logical_and(tf.reduce_all(frames >= 0.0),
                                           tf.reduce_all(frames <= 1.0))
        checks.append(tf.debugging.Assert(tf.logical_not(looks_like_pixels), [
            f"{name} are all in [0, 1]: these look like pixels, not "
            f"{mapping.get('units', 'physical units')}; send them to {SERVING_SIGNATURE}"]))
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def served_forecast(model, frames: tf.Tensor) -> tf.Tensor:
    """The shape-checked :func:`~predrnn_tf.models.forecasting.clipped_forecast`."""
    return clipped_forecast(model, checked_frames(model, frames))


class ForecastModule(tf.Module):
    """The exported object: the model's variables and its float32 serving functions.

    The Keras model itself is not an attribute (SavedModel would trace its default
    ``call`` signature, which needs a mask). Its variables are tracked as the underlying
    ``tf.Variable`` objects, not as Keras variables: a Keras 3 variable exports a second
    copy of itself that the SavedModel's restore op fills while the functions read the
    original, so graph-mode loaders (TF Serving, ``saved_model_cli run``) would fail with
    "Could not find variable".

    Args:
      model: a built :class:`~predrnn_tf.models.predrnn.PredRNN` (any precision policy).
      config: its configuration (input length, channels, frame size, patch size).
      value_mapping: a dBZ ``value_mapping`` (adds ``predict_dbz``), a dBR rain-rate one
        (adds ``predict_mm_per_hour``), or None.
      ensemble: a :class:`~predrnn_tf.models.ensemble.MotionEnsemble` of ``model`` (adds
        ``predict_ensemble_mm_per_hour``; needs the rain-rate mapping), or None.
      thresholds: the ensemble signature's exceedance thresholds in mm/h.
    """

    def __init__(self, model, config: Config, value_mapping: dict[str, Any] | None = None,
                 ensemble=None, thresholds=DEFAULT_THRESHOLDS):
        super().__init__(name="predrnn_forecast")
        self.model_variables = [tensorflow_variable(variable) for variable in model.variables]
        size = None if spatial_size_is_dynamic(config) else config.img_width
        shape = [None, config.input_length, size, size, config.img_channel]

        def serve(frames):
            return {OUTPUT_KEY: served_forecast(model, frames)}

        self.serve = tf.function(serve,
                                 input_signature=[tf.TensorSpec(shape, tf.float32, INPUT_KEY)])
        self.serve_physical = None
        self.physical = physical_signature(value_mapping)
        if self.physical is not None:
            make = (make_rain_rate_function if self.physical[0] == RAIN_RATE_SIGNATURE
                    else make_dbz_function)
            self.serve_physical = tf.function(
                make(model, value_mapping),
                input_signature=[tf.TensorSpec(shape, tf.float32, self.physical[1])])
        self.serve_ensemble = None
        if ensemble is not None:
            self.ensemble_variables = ensemble_variables(ensemble, config, value_mapping)
            self.serve_ensemble = tf.function(
                make_ensemble_function(ensemble, value_mapping, thresholds),
                input_signature=[tf.TensorSpec(shape, tf.float32, RAIN_RATE_INPUT_KEY)])

    def signatures(self) -> dict[str, Any]:
        """The signature functions to pass to ``tf.saved_model.save``."""
        signatures = {SERVING_SIGNATURE: self.serve.get_concrete_function()}
        if self.serve_physical is not None:
            signatures[self.physical[0]] = self.serve_physical.get_concrete_function()
        if self.serve_ensemble is not None:
            signatures[ENSEMBLE_SIGNATURE] = self.serve_ensemble.get_concrete_function()
        return signatures


def make_dbz_function(model, value_mapping: dict[str, Any]):
    """``frames_dbz -> {predictions_dbz}``: the forecast through the dBZ value mapping."""
    mapping = dict(value_mapping)

    def serve_dbz(frames_dbz):
        frames_dbz = checked_physical_frames(frames_dbz, mapping)
        pixels = tf.clip_by_value(units.units_to_pixels(frames_dbz, mapping), 0.0, 1.0)
        predictions = served_forecast(model, pixels)
        return {DBZ_OUTPUT_KEY: units.pixels_to_units(predictions, mapping)}

    return serve_dbz


def rain_rate_to_pixels(rate: tf.Tensor, mapping: dict[str, Any]) -> tf.Tensor:
    """mm/h (NaN = no data) -> [0, 1] pixels, as :func:`predrnn_tf.units.rain_rate_to_unit_pixels`
    (below 0.1 mm/h: the no-rain pixel; NaN: the no-data pixel)."""
    missing = tf.math.is_nan(rate)
    rate = tf.where(missing, tf.zeros_like(rate), rate)
    no_rain = float(mapping.get("no_rain_pixel", units.NO_RAIN_PIXEL))
    dbr = 10.0 * tf.math.log(tf.maximum(rate, units.RAIN_RATE_FLOOR)) / tf.math.log(10.0)
    pixels = tf.clip_by_value(units.units_to_pixels(dbr, mapping) * 255.0, no_rain, 255.0)
    pixels = tf.where(rate < units.RAIN_RATE_FLOOR, no_rain, pixels)
    pixels = tf.where(missing, float(mapping.get("no_data_pixel", units.NO_DATA_PIXEL)), pixels)
    return pixels / 255.0


def pixels_to_rain_rate(pixels01: tf.Tensor, mapping: dict[str, Any]) -> tf.Tensor:
    """[0, 1] pixels -> mm/h, as :func:`predrnn_tf.units.pixels_to_rain_rate`."""
    rate = tf.pow(10.0, units.pixels_to_units(pixels01, mapping) / 10.0)
    dry_below = float(mapping.get("no_rain_pixel", units.NO_RAIN_PIXEL)) + units.NO_RAIN_MARGIN
    return tf.where(pixels01 * 255.0 < dry_below, tf.zeros_like(rate), rate)


def checked_rain_rates(frames: tf.Tensor) -> tf.Tensor:
    """Rain rates behind a graph-side check: no infinity, nothing negative (NaN = no data)."""
    finite_or_missing = tf.reduce_all(tf.logical_or(tf.math.is_finite(frames),
                                                    tf.math.is_nan(frames)))
    not_negative = tf.reduce_all(tf.logical_or(frames >= 0.0, tf.math.is_nan(frames)))
    checks = [tf.debugging.Assert(finite_or_missing, [
                  f"{RAIN_RATE_INPUT_KEY} must be rain rates in mm/h (NaN = no data), "
                  f"never infinite"]),
              tf.debugging.Assert(not_negative, [
                  f"{RAIN_RATE_INPUT_KEY} must be rain rates >= 0 mm/h (NaN = no data)"])]
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def make_rain_rate_function(model, value_mapping: dict[str, Any]):
    """``frames_mm_per_hour -> {predictions_mm_per_hour}``: the forecast in mm/h; NaN where
    the newest input frame has no data."""
    mapping = dict(value_mapping)

    def serve_rain_rate(frames_mm_per_hour):
        frames = checked_rain_rates(frames_mm_per_hour)
        predictions = pixels_to_rain_rate(
            served_forecast(model, rain_rate_to_pixels(frames, mapping)), mapping)
        no_data = tf.math.is_nan(frames[:, -1:])  # [B, 1, H, W, C]
        return {RAIN_RATE_OUTPUT_KEY: tf.where(no_data, float("nan"), predictions)}

    return serve_rain_rate


def ensemble_variables(ensemble, config: Config,
                       value_mapping: dict[str, Any] | None) -> list[tf.Variable]:
    """Builds ``ensemble`` (copying the model's weights) and returns its members' variables.

    Raises ExportError unless the export is a one-channel rain-rate one.
    """
    if not units.is_rain_rate_mapping(value_mapping) or config.img_channel != 1:
        raise ExportError(f"an ensemble signature needs a one-channel rain-rate (dBR) model; "
                          f"received img_channel={config.img_channel} and value mapping "
                          f"{value_mapping}")
    if not ensemble.built:
        ensemble.build((1, config.input_length, config.img_width, config.img_width,
                        config.img_channel))
    # The members' copy of the weights and the perturbations' seed state (which every request
    # advances, so each request draws new members).
    return [tensorflow_variable(variable) for variable in ensemble.members.variables]


def make_ensemble_function(ensemble, value_mapping: dict[str, Any], thresholds):
    """``frames_mm_per_hour -> {members_mm_per_hour, exceedance_probabilities}``; NaN where the
    newest input frame has no data."""
    mapping, thresholds = dict(value_mapping), tuple(float(value) for value in thresholds)

    def serve_ensemble(frames_mm_per_hour):
        frames = checked_rain_rates(frames_mm_per_hour)
        pixels = checked_frames(ensemble.model, rain_rate_to_pixels(frames, mapping))
        members = ensemble(pixels)  # [B, N, T, H, W, 1] in [0, 1]
        probabilities = exceedance_probabilities(members, thresholds, mapping)  # [B, K, T, H, W, 1]
        probabilities = tf.transpose(probabilities[..., 0], [0, 2, 3, 4, 1])  # [B, T, H, W, K]
        no_data = tf.math.is_nan(frames[:, -1:])  # [B, 1, H, W, 1]
        return {MEMBERS_OUTPUT_KEY: tf.where(no_data[:, None], float("nan"),
                                             pixels_to_rain_rate(members, mapping)),
                PROBABILITIES_OUTPUT_KEY: tf.where(no_data, float("nan"), probabilities)}

    return serve_ensemble
