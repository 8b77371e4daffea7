"""Pure loss functions: the frame losses (MSE, masked and balanced MSE for radar), the soft-CSI
rain-area loss, the fair CRPS of an ensemble and the PredRNN-V2 memory decoupling loss."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from predrnn_tf import units

# The official code uses F.normalize (eps 1e-12) then torch.cosine_similarity (eps 1e-8).
_NORMALIZE_EPSILON = 1e-12
_COSINE_EPSILON = 1e-8


def frame_mse(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Per-sample mean squared error over all frames and pixels: ``[B]`` float32."""
    difference = tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32)
    return tf.reduce_mean(tf.square(difference), axis=tf.range(1, tf.rank(difference)))


def decoupling_cosine(delta_c: tf.Tensor, delta_m: tf.Tensor) -> tf.Tensor:
    """|cosine| between the adapted memory increments, per sample: ``[B]`` float32.

    Each increment ``[B, H, W, C]`` is flattened over space per channel and L2-normalised
    over space; the absolute cosine similarity of the two is averaged over channels.

    Args:
      delta_c: the cell-memory increment after the shared adapter convolution.
      delta_m: the spatiotemporal-memory increment after the same adapter.
    """
    delta_c = tf.cast(delta_c, tf.float32)
    delta_m = tf.cast(delta_m, tf.float32)
    shape = tf.shape(delta_c)
    flat_c = tf.reshape(delta_c, [shape[0], -1, shape[3]])  # [B, H*W, C]
    flat_m = tf.reshape(delta_m, [shape[0], -1, shape[3]])  # [B, H*W, C]
    unit_c = flat_c / tf.maximum(tf.norm(flat_c, axis=1, keepdims=True), _NORMALIZE_EPSILON)
    unit_m = flat_m / tf.maximum(tf.norm(flat_m, axis=1, keepdims=True), _NORMALIZE_EPSILON)
    dot = tf.reduce_sum(unit_c * unit_m, axis=1)  # [B, C]
    norms = tf.norm(unit_c, axis=1) * tf.norm(unit_m, axis=1)  # [B, C]
    cosine = dot / tf.maximum(norms, _COSINE_EPSILON)
    return tf.reduce_mean(tf.abs(cosine), axis=1)


def adapted_decoupling_cosine(adapter, delta_c: tf.Tensor, delta_m: tf.Tensor) -> tf.Tensor:
    """Per-sample |cosine| between ``delta_c`` and ``delta_m`` after the shared 1x1 adapter.

    Both increments go through ``adapter`` in one call (``[2B, Hp, Wp, nh]``), as the
    official code applies the same ``adapter`` convolution to each.
    """
    both = adapter(tf.concat([delta_c, delta_m], axis=0))  # [2B, Hp, Wp, nh]
    adapted_c, adapted_m = tf.split(both, 2, axis=0)
    return decoupling_cosine(adapted_c, adapted_m)


# Balanced MSE (Shi et al. 2017, "Deep learning for precipitation nowcasting: a benchmark and
# a new model"): weight 1, 2, 5, 10, 30 for true rain rates below 2, 5, 10, 30 and above (mm/h).
BALANCED_THRESHOLDS_MMH = (2.0, 5.0, 10.0, 30.0)
BALANCED_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)


def valid_target_pixels(targets: tf.Tensor) -> tf.Tensor:
    """1.0 where a [0, 1] target holds data, 0.0 at the no-data pixel (units.NO_DATA_PIXEL)."""
    level = (units.NO_DATA_PIXEL + 0.5) / 255.0
    return tf.cast(tf.cast(targets, tf.float32) > level, tf.float32)


def rain_rate_weights(targets: tf.Tensor) -> tf.Tensor:
    """The balanced-MSE weight of each [0, 1] target pixel of a dBR rain-rate dataset."""
    levels = units.rain_rate_to_unit_pixels(np.array(BALANCED_THRESHOLDS_MMH))
    targets = tf.cast(targets, tf.float32)
    weights = tf.fill(tf.shape(targets), BALANCED_WEIGHTS[0])
    for level, weight in zip(levels, BALANCED_WEIGHTS[1:], strict=True):
        weights = tf.where(targets >= float(level), weight, weights)
    return weights


def unit_pixels_to_rain_rate(pixels01: tf.Tensor) -> tf.Tensor:
    """[0, 1] dBR pixels (the recipe's :func:`units.rain_rate_mapping`) -> mm/h, smoothly.

    ``10 ** (dBR / 10)`` without the dry cut-off of :func:`units.pixels_to_rain_rate`, so that
    a forecast keeps a gradient below the no-rain pixel (where it tends to 0 mm/h); pixels
    above 1 are taken as 1 (the mapping's maximum, about 200 mm/h).
    """
    return tf.pow(10.0, unit_pixels_to_dbr(tf.minimum(tf.cast(pixels01, tf.float32), 1.0)) / 10.0)


_RAIN_RATE_MAPPING = units.rain_rate_mapping()


def unit_pixels_to_dbr(pixels01: tf.Tensor) -> tf.Tensor:
    """[0, 1] dBR pixels -> dBR, linearly (no dry cut-off, no clipping).

    The recipe's mapping through :func:`predrnn_tf.units.pixels_to_units` (the one owner of
    the pixel -> physical value map), on a float32 tensor.
    """
    return units.pixels_to_units(tf.cast(pixels01, tf.float32), _RAIN_RATE_MAPPING)


def observed_rain_rate(targets: tf.Tensor) -> tf.Tensor:
    """True [0, 1] dBR pixels -> mm/h as the metrics read them (0 at or below the no-rain
    pixel)."""
    targets = tf.cast(targets, tf.float32)
    wet = tf.cast(targets >= units.DRY_BELOW_PIXEL / 255.0, tf.float32)
    return unit_pixels_to_rain_rate(targets) * wet


def rain_rate_squared_error(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Squared error in (mm/h)^2: the forecast through :func:`unit_pixels_to_rain_rate`, the
    target as the metrics read it (:func:`observed_rain_rate`)."""
    return tf.square(unit_pixels_to_rain_rate(predictions) - observed_rain_rate(targets))


def frame_loss(predictions: tf.Tensor, targets: tf.Tensor, name: str = "mse") -> tf.Tensor:
    """The training frame loss ``[B]`` named by ``--frame_loss`` (the one the train step uses).

    - ``mse``: :func:`frame_mse` (the official loss, every pixel).
    - ``masked_mse``: squared error averaged over the pixels whose target holds data (a
      radar dataset's no-data pixel 0 is ignored).
    - ``balanced_mse``: as ``masked_mse``, each pixel weighted by the true rain rate
      (:data:`BALANCED_WEIGHTS`); the sum is divided by the number of valid pixels.
    - ``rain_rate_mse``: as ``masked_mse``, but the squared error in (mm/h)^2 after the dBR
      transform (:func:`rain_rate_squared_error`): the evaluation's MSE in physical units.
    """
    if name == "mse":
        return frame_mse(predictions, targets)
    if name not in ("masked_mse", "balanced_mse", "rain_rate_mse"):
        raise ValueError("frame_loss must be mse, masked_mse, balanced_mse or rain_rate_mse, "
                         f"got {name!r}")
    if name == "rain_rate_mse":
        squared = rain_rate_squared_error(predictions, targets)
    else:
        squared = tf.square(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32))
    valid = valid_target_pixels(targets)
    if name == "balanced_mse":
        valid = valid * rain_rate_weights(targets)
    axes = tf.range(1, tf.rank(squared))
    count = tf.reduce_sum(valid_target_pixels(targets), axis=axes)
    return tf.reduce_sum(squared * valid, axis=axes) / tf.maximum(count, 1.0)


# Soft CSI (critical success index) on rain area: the forecast's exceedance of a threshold is
# a sigmoid of its distance in dBR, the target's is hard, both over valid pixels only.
SOFT_CSI_EPSILON = 1e-6


def soft_csi_frames(predictions: tf.Tensor, targets: tf.Tensor, threshold_mmh: float,
                    temperature_db: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Soft CSI of each frame at one threshold, and whether the frame counts: ``[B, T]`` each.

    The forecast's exceedance is ``sigmoid((dBR - 10 log10(threshold)) / temperature_db)``
    (dBR of the [0, 1] pixel, linear below the no-rain pixel so that the gradient never
    vanishes there); the target's is ``rain rate >= threshold`` as the metrics read it. A frame
    counts when the target or the hard forecast (dBR >= the threshold's) has an exceeding valid
    pixel: as temperature_db -> 0 the soft CSI of a counted frame tends to the hard CSI.

    Args:
      predictions: ``[B, T, H, W, C]`` forecast frames in [0, 1] dBR pixels.
      targets: the true frames, same shape; pixel 0 is no data.
      threshold_mmh: the rain-rate threshold in mm/h (> 0).
      temperature_db: the sigmoid's width in dB (> 0).
    """
    predictions = tf.cast(predictions, tf.float32)
    targets = tf.cast(targets, tf.float32)
    valid = valid_target_pixels(targets)
    margin = unit_pixels_to_dbr(predictions) - 10.0 * float(np.log10(threshold_mmh))  # dB
    forecast = tf.sigmoid(margin / temperature_db) * valid
    observed = tf.cast(observed_rain_rate(targets) >= threshold_mmh, tf.float32) * valid
    axes = tf.range(2, tf.rank(predictions))
    hits = tf.reduce_sum(forecast * observed, axis=axes)
    union = tf.reduce_sum(forecast, axis=axes) + tf.reduce_sum(observed, axis=axes) - hits
    csi = hits / (union + SOFT_CSI_EPSILON)
    hard_forecast = tf.cast(margin >= 0.0, tf.float32) * valid
    counted = tf.reduce_max(tf.maximum(hard_forecast, observed), axis=axes)
    return csi, counted


def soft_csi_loss(predictions: tf.Tensor, targets: tf.Tensor,
                  thresholds_mmh: tuple[float, ...] = (1.0,),
                  temperature_db: float = 1.0) -> tf.Tensor:
    """Per-sample ``1 - soft CSI`` ``[B]``, averaged over thresholds and counted frames.

    A differentiable score of the rain *area* beside the pixel loss (``--csi_loss_weight``):
    :func:`soft_csi_frames` at each threshold; frames with no rain in either the target or
    the forecast give no term, and a sample with no counted frame gives 0.
    """
    if not thresholds_mmh or min(thresholds_mmh) <= 0:
        raise ValueError(f"thresholds_mmh must be positive rain rates, got {thresholds_mmh!r}")
    if not temperature_db > 0:
        raise ValueError(f"temperature_db must be positive, got {temperature_db!r}")
    terms, weights = [], []
    for threshold in thresholds_mmh:
        csi, counted = soft_csi_frames(predictions, targets, threshold, temperature_db)
        terms.append(tf.reduce_sum((1.0 - csi) * counted, axis=1))
        weights.append(tf.reduce_sum(counted, axis=1))
    return tf.add_n(terms) / tf.maximum(tf.add_n(weights), 1.0)


def fair_crps(members: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Per-sample fair CRPS ``[B]`` of M members, averaged over the valid target pixels.

    Per pixel ``mean_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 M (M - 1))`` (Ferro 2014: the
    ensemble CRPS that is unbiased for the CRPS of the members' distribution, so a loss
    minimised by members drawn from the forecast distribution rather than by equal ones; the
    standard ensemble CRPS of pysteps' ``probscores.CRPS`` has ``2 M^2``). In the units of
    ``members`` and ``targets`` (the trainer: [0, 1] pixels, as ``--frame_loss=masked_mse``);
    target pixels at the no-data pixel (:func:`valid_target_pixels`) are left out.

    Args:
      members: ``[B, M, T, H, W, C]`` forecasts, M >= 2.
      targets: ``[B, T, H, W, C]`` true frames.
    """
    members = tf.cast(members, tf.float32)
    targets = tf.cast(targets, tf.float32)
    count = members.shape[1]
    if count is None or count < 2:
        raise ValueError(f"fair_crps needs a static member axis of at least 2, got {count}")
    absolute = tf.reduce_mean(tf.abs(members - targets[:, None]), axis=1)  # [B, T, H, W, C]
    pairs = tf.add_n([tf.reduce_sum(tf.abs(members - members[:, index, None]), axis=1)
                      for index in range(count)])  # sum over i and j, [B, T, H, W, C]
    crps = absolute - pairs / (2.0 * count * (count - 1))
    valid = valid_target_pixels(targets)
    axes = tf.range(1, tf.rank(crps))
    return tf.reduce_sum(crps * valid, axis=axes) / tf.maximum(tf.reduce_sum(valid, axis=axes),
                                                                1.0)
