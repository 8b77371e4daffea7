"""Ensemble nowcasts from one trained radar model: N members by perturbing its motion.

The radar recipe's model forecasts ``prior + learned change``, the prior being the step's
frame advected one step along the motion of the input frames
(:mod:`predrnn_tf.models.radar_head`). :class:`MotionEnsemble` draws N members as STEPS
perturbs its velocity (Bowler, Pierce and Seed 2006, pysteps' ``noise.motion`` "bps"): member
m's motion at forecast lead k is

    motion + (g_par(t) eps_par u_par + g_perp(t) eps_perp u_perp) / vsf,   t = k * interval

with ``u_par`` the motion's unit direction per pixel (zero where the motion is zero),
``u_perp`` it turned by 90 degrees, ``eps`` one Laplace draw (variance 1) per member and
component, ``g(t) = p0 t^p1 + p2`` km/h (t in minutes; pysteps' defaults (10.88, 0.23,
-7.68) and (5.76, 0.31, -2.72)) and ``vsf = 60 / (interval * pixels per km)``: a smooth
perturbation that grows with lead time, and the displacement it adds accumulates.

The batch is tiled to ``B * N`` and the model runs once; the result is ``[B, N, T, H, W, C]``.
The perturbation is injected by :class:`PerturbedMotionHead`, a :class:`RadarHead` that counts
the unroll's steps (reset by ``input_motion``, which the unroll calls once before its steps).
The members run on a copy of the model's weights (the model itself is not changed).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from predrnn_tf import units
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.models.radar_head import RadarHead

BPS_PARALLEL = (10.88, 0.23, -7.68)  # pysteps get_default_params_bps_par(), km/h vs minutes
BPS_PERPENDICULAR = (5.76, 0.31, -2.72)  # pysteps get_default_params_bps_perp()
NOISE_CELL = 4  # state noise: one coarse draw per NOISE_CELL x NOISE_CELL patched pixels


def smooth_noise(like: tf.Tensor, std: float, normal) -> tf.Tensor:
    """A smooth field of ``like``'s shape ``[B, H, W, C]``: ``std`` times standard normal
    draws on a grid NOISE_CELL times coarser, upsampled bilinearly (``normal(shape)`` draws)."""
    shape = tf.shape(like)
    coarse_shape = tf.stack([shape[0], shape[1] // NOISE_CELL + 2, shape[2] // NOISE_CELL + 2,
                             shape[3]])
    coarse = normal(coarse_shape)  # [B, H / cell + 2, W / cell + 2, C]
    return tf.cast(std * tf.image.resize(coarse, shape[1:3], method="bilinear"), like.dtype)


def bps_speed(parameters: tuple[float, float, float], minutes: float) -> float:
    """``p0 * t^p1 + p2``: the perturbation's standard speed in km/h at ``t`` minutes."""
    return parameters[0] * minutes ** parameters[1] + parameters[2]


def laplace_from_uniform(uniform: tf.Tensor) -> tf.Tensor:
    """Laplace samples of variance 1 (scale 1/sqrt 2, as pysteps' eps) from U(-0.5, 0.5)."""
    magnitude = tf.maximum(1.0 - 2.0 * tf.abs(uniform), 1e-12)
    return -tf.sign(uniform) * tf.math.log(magnitude) / math.sqrt(2.0)


def laplace_draws(shape: Any, seed_generator: keras.random.SeedGenerator) -> tf.Tensor:
    """Laplace samples of variance 1 (scale 1/sqrt 2, as pysteps' eps) of ``shape``."""
    return laplace_from_uniform(keras.random.uniform(shape, minval=-0.5, maxval=0.5,
                                                     seed=seed_generator))


def motion_perturbation(motion: tf.Tensor, epsilon: tf.Tensor, lead: int, pixel_km: float,
                        interval_minutes: float, parallel=BPS_PARALLEL,
                        perpendicular=BPS_PERPENDICULAR) -> tf.Tensor:
    """The BPS perturbation ``[B, H, W, 2]`` (dy, dx pixels per step) at forecast lead ``lead``.

    Args:
      motion: ``[B, H, W, 2]`` (dy, dx) pixels per step.
      epsilon: ``[B, 2]`` Laplace draws (parallel, perpendicular) per batch row.
      lead: forecast lead time in steps (1 = the first forecast frame).
      pixel_km: grid spacing in km.
      interval_minutes: time between frames.
      parallel, perpendicular: BPS parameters (p0, p1, p2) of the two components.
    """
    minutes = lead * interval_minutes
    scale = 60.0 / (interval_minutes / pixel_km)  # pysteps' vsf: km/h per pixel per step
    norm = tf.norm(motion, axis=-1, keepdims=True)  # [B, H, W, 1]
    direction = tf.where(norm > 1e-12, motion / tf.maximum(norm, 1e-12), 0.0)
    turned = tf.stack([direction[..., 1], -direction[..., 0]], axis=-1)  # 90 degrees
    along = bps_speed(parallel, minutes) * epsilon[:, 0, None, None, None] * direction
    across = bps_speed(perpendicular, minutes) * epsilon[:, 1, None, None, None] * turned
    return (along + across) / scale


@keras.saving.register_keras_serializable(package="predrnn_tf")
class PerturbableMotionHead(RadarHead):
    """A weightless radar head that perturbs its advection motion with given Laplace draws.

    Outside :meth:`perturbing` it is a :class:`RadarHead` (the same frames, no variables);
    inside, the batch holds each sequence ``num_members`` times in a row (``tf.repeat``), the
    motion is estimated once per sequence and repeated, and forecast step ``lead >= 1`` moves
    along ``motion + motion_perturbation(motion, epsilon, lead, ...)``. The trainer's
    ``--ensemble_loss=fair_crps`` members use it (draws from the train step).

    Args:
      input_length: the model's true input frames (forecast lead 1 is step input_length).
      pixel_km: grid spacing in km.
      interval_minutes: time between frames.
      parallel, perpendicular: BPS parameters of the two components.
      state_noise_std: std of each member's smooth noise (:func:`smooth_noise`) added to
        every recurrent state of the unroll before its first forecast step (0 = none).
      **kwargs: :class:`RadarHead` arguments (``advection_prior`` must be True).
    """

    def __init__(self, input_length: int, pixel_km: float, interval_minutes: float,
                 parallel=BPS_PARALLEL, perpendicular=BPS_PERPENDICULAR,
                 state_noise_std: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not self.advection_prior:
            raise ValueError("a motion ensemble needs a radar head with advection_prior=True")
        self.input_length = int(input_length)
        self.pixel_km, self.interval_minutes = float(pixel_km), float(interval_minutes)
        self.parallel = tuple(float(value) for value in parallel)
        self.perpendicular = tuple(float(value) for value in perpendicular)
        self.state_noise_std = float(state_noise_std)
        self.num_members, self._steps, self._epsilon, self._noise_seed = 1, 0, None, None

    @contextlib.contextmanager
    def perturbing(self, epsilon: tf.Tensor, num_members: int, noise_seed=None):
        """Within: ``epsilon [B, 2]`` Laplace draws per row of a batch tiled ``num_members``
        (and, with ``state_noise_std``, state noise drawn statelessly from ``noise_seed``)."""
        saved = self.num_members, self._epsilon, self._noise_seed
        self.num_members, self._epsilon, self._noise_seed = int(num_members), epsilon, noise_seed
        try:
            yield self
        finally:
            self.num_members, self._epsilon, self._noise_seed = saved

    def normal(self, shape: tf.Tensor) -> tf.Tensor:
        """Standard normal draws of the state noise (stateless, from the ``noise_seed``)."""
        return tf.random.stateless_normal(shape, self._noise_seed)

    def perturb_state(self, state: list[tf.Tensor]) -> list[tf.Tensor]:
        """The unroll's states ``[B, H, W, C_i]`` plus each member's smooth noise (the same
        states outside :meth:`perturbing` or with ``state_noise_std=0``)."""
        if self.state_noise_std <= 0 or self._epsilon is None:
            return state
        noise = smooth_noise(tf.concat(state, axis=-1), self.state_noise_std, self.normal)
        split = tf.split(noise, [tensor.shape[-1] for tensor in state], axis=-1)
        return [tensor + part for tensor, part in zip(state, split, strict=True)]

    def input_motion(self, input_frames: tf.Tensor) -> tf.Tensor:
        """The inputs' motion, estimated once per sequence; restarts the step count."""
        unique = input_frames[::self.num_members]  # [B / N, T, H, W, C]: one per sequence
        motion = tf.repeat(super().input_motion(unique), self.num_members, axis=0)  # [B, H, W, 2]
        self._steps = 0
        return motion

    def call(self, change, step_input, motion=None, patch_size: int = 1):
        """:meth:`RadarHead.call` with the perturbed motion at forecast steps."""
        self._steps += 1
        lead = self._steps - (self.input_length - 1)
        if motion is not None and lead >= 1 and self._epsilon is not None:
            motion = motion + motion_perturbation(motion, self._epsilon, lead, self.pixel_km,
                                                  self.interval_minutes, self.parallel,
                                                  self.perpendicular)
        return super().call(change, step_input, motion, patch_size)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"input_length": self.input_length, "pixel_km": self.pixel_km,
                       "interval_minutes": self.interval_minutes,
                       "parallel": list(self.parallel),
                       "perpendicular": list(self.perpendicular),
                       "state_noise_std": self.state_noise_std})
        return config


@keras.saving.register_keras_serializable(package="predrnn_tf")
class PerturbedMotionHead(PerturbableMotionHead):
    """A radar head whose advection motion gets a BPS perturbation at every forecast step.

    Draws its own Laplace pair per batch row at every unroll (:meth:`input_motion`).

    Args:
      input_length, pixel_km, interval_minutes, parallel, perpendicular: as
        :class:`PerturbableMotionHead`.
      seed: seed of the members' Laplace draws.
      num_members: the batch holds each sequence this many times in a row (tiled with
        ``tf.repeat``): the motion is estimated once per sequence, then repeated.
      **kwargs: :class:`RadarHead` arguments (``advection_prior`` must be True).
    """

    def __init__(self, input_length: int, pixel_km: float, interval_minutes: float,
                 parallel=BPS_PARALLEL, perpendicular=BPS_PERPENDICULAR,
                 seed: int | None = 0, num_members: int = 1, **kwargs):
        super().__init__(input_length, pixel_km, interval_minutes, parallel, perpendicular,
                         **kwargs)
        self.seed, self.num_members = seed, int(num_members)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def input_motion(self, input_frames: tf.Tensor) -> tf.Tensor:
        """The inputs' motion; draws each row's Laplace pair and restarts the step count."""
        motion = super().input_motion(input_frames)
        self._epsilon = laplace_draws(tf.stack([tf.shape(motion)[0], 2]), self.seed_generator)
        return motion

    def normal(self, shape: tf.Tensor) -> tf.Tensor:
        """Standard normal draws of the state noise (from the head's seed generator)."""
        return keras.random.normal(shape, seed=self.seed_generator)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"seed": self.seed, "num_members": self.num_members})
        return config


def member_model(model: keras.Model, head: PerturbableMotionHead,
                 name: str | None = None) -> keras.Model:
    """A new, unbuilt model of ``model``'s class and config with ``head`` as its output head."""
    config = model.get_config()
    config.pop("output_head", None)
    config["name"] = name or f"{model.name}_members"
    return type(model)(output_head=head, **config)


def head_arguments(model: keras.Model) -> dict[str, Any]:
    """The :class:`RadarHead` arguments of ``model``'s head; ValueError without the advection
    prior (the members perturb its motion)."""
    head = getattr(model, "output_head", None)
    if not isinstance(head, RadarHead) or not head.advection_prior:
        raise ValueError("a motion ensemble needs a model with a RadarHead(advection_prior="
                         "True) output head (--residual_frames --advection_prior)")
    return {key: value for key, value in head.get_config().items()
            if key in ("advection_prior", "dry_below", "zero_mean_change")}


def perturbable_model(model: keras.Model, pixel_km: float, interval_minutes: float,
                      frames_shape: tuple, state_noise_std: float = 0.0) -> keras.Model:
    """``model`` again (class, config, name and weight values) with a
    :class:`PerturbableMotionHead`, built for ``frames_shape``.

    The trainer's model of ``--ensemble_loss=fair_crps``: the head holds no variable, so its
    checkpoints hold the variables of ``model`` and restore into it unchanged.
    ``state_noise_std``: as :class:`PerturbableMotionHead` (``--ensemble_noise_std``).
    """
    head = PerturbableMotionHead(model.input_length, pixel_km, interval_minutes,
                                 state_noise_std=state_noise_std, name=model.output_head.name,
                                 **head_arguments(model))
    perturbable = member_model(model, head, name=model.name)
    perturbable.build(tuple(frames_shape))
    copy_weights(model, perturbable)
    return perturbable


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copies every weight of ``source`` into ``target`` (the head's seed state excepted)."""
    mine = [weight for weight in target.weights if "seed_generator" not in weight.path]
    theirs = [weight for weight in source.weights if "seed_generator" not in weight.path]
    if len(mine) != len(theirs):
        raise ValueError(f"the member model has {len(mine)} weights, the model {len(theirs)}")
    for target_weight, source_weight in zip(mine, theirs, strict=True):
        if tuple(target_weight.shape) != tuple(source_weight.shape):
            raise ValueError(f"weight {source_weight.path} has shape {source_weight.shape}, "
                             f"its copy {target_weight.shape}")
        target_weight.assign(source_weight)


@keras.saving.register_keras_serializable(package="predrnn_tf")
class MotionEnsemble(keras.Model):
    """N members of a radar model with the advection prior, drawn in one batched forecast.

    Args:
      model: a built PredRNN-family model whose ``output_head`` is a :class:`RadarHead` with
        ``advection_prior=True`` (e.g. the restored pretrained ``radar_real`` model).
      num_members: ensemble members N.
      pixel_km: grid spacing in km (the data card's ``pixel_km``).
      interval_minutes: time between frames (the data card's ``interval_minutes``).
      parallel, perpendicular: BPS parameters (pysteps' defaults).
      seed: seed of the members' perturbations.
      state_noise_std: each member's smooth state noise (:class:`PerturbableMotionHead`; the
        ``--ensemble_noise_std`` the model was trained with, 0 = motion only).
      **kwargs: standard Keras model arguments.
    """

    def __init__(self, model: keras.Model, num_members: int, pixel_km: float,
                 interval_minutes: float, parallel=BPS_PARALLEL,
                 perpendicular=BPS_PERPENDICULAR, seed: int | None = 0,
                 state_noise_std: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        head_config = head_arguments(model)
        if int(num_members) < 1:
            raise ValueError(f"num_members must be positive, received {num_members}")
        self.model, self.num_members = model, int(num_members)
        self.pixel_km, self.interval_minutes, self.seed = pixel_km, interval_minutes, seed
        self.parallel, self.perpendicular = tuple(parallel), tuple(perpendicular)
        self.state_noise_std = float(state_noise_std)
        self.member_head = PerturbedMotionHead(
            model.input_length, pixel_km, interval_minutes, parallel, perpendicular, seed,
            self.num_members, state_noise_std=self.state_noise_std,
            name="perturbed_radar_head", **head_config)
        self.members = member_model(model, self.member_head)

    def build(self, frames_shape):
        """Builds the member model for ``[B, T, H, W, C]`` and copies the model's weights."""
        self.members.build(tuple(frames_shape))
        copy_weights(self.model, self.members)
        self.built = True

    def call(self, input_frames, output_length: int | None = None):
        """``[B, input_length, H, W, C]`` in [0, 1] -> members ``[B, N, T, H, W, C]`` in [0, 1]."""
        frames = tf.cast(input_frames, tf.float32)
        shape = tf.shape(frames)
        tiled = tf.repeat(frames, self.num_members, axis=0)  # [B*N, T_in, H, W, C], b-major
        forecast = tf.clip_by_value(tf.cast(self.members.forecast(tiled, output_length),
                                            tf.float32), 0.0, 1.0)  # [B*N, T, H, W, C]
        return tf.reshape(forecast, tf.concat([[shape[0], self.num_members],
                                               tf.shape(forecast)[1:]], axis=0))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"model": keras.saving.serialize_keras_object(self.model),
                       "num_members": self.num_members, "pixel_km": self.pixel_km,
                       "interval_minutes": self.interval_minutes,
                       "parallel": list(self.parallel),
                       "perpendicular": list(self.perpendicular), "seed": self.seed,
                       "state_noise_std": self.state_noise_std})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MotionEnsemble:
        config = dict(config)
        model = keras.saving.deserialize_keras_object(  # PredRNN is not registered
            config.pop("model"), custom_objects={"PredRNN": PredRNN})
        return cls(model=model, **config)


def threshold_pixels(thresholds: Any, metadata: dict[str, Any]) -> list[float]:
    """Physical thresholds (mm/h on a dBR dataset, else the mapping's unit) as [0, 1] pixels."""
    if units.is_rain_rate_mapping(metadata):
        return [float(units.rain_rate_to_unit_pixels(np.asarray(value, np.float64)))
                for value in thresholds]
    return [float(units.units_to_pixels(float(value), metadata)) for value in thresholds]


def exceedance_probabilities(members: Any, thresholds: Any,
                             metadata: dict[str, Any]) -> tf.Tensor:
    """Fraction of members at or above each physical threshold (pysteps' ``excprob``).

    Args:
      members: ``[B, N, T, H, W, C]`` [0, 1] pixels (:class:`MotionEnsemble`'s output).
      thresholds: K values in physical units (mm/h on a dBR dataset, e.g. (1, 5)).
      metadata: the dataset's metadata or data card (its ``value_mapping``).

    Returns:
      ``[B, K, T, H, W, C]`` float32 probabilities.
    """
    members = tf.convert_to_tensor(members, tf.float32)
    levels = threshold_pixels(thresholds, metadata)
    return tf.stack([tf.reduce_mean(tf.cast(members >= level, tf.float32), axis=1)
                     for level in levels], axis=1)


class MemberForecaster:
    """An ensemble as an evaluation forecaster: ``members(inputs)`` in one compiled call.

    Args:
      ensemble: a :class:`MotionEnsemble` (built on the first call if it is not).
      output_length: lead times to forecast.
    """

    def __init__(self, ensemble: MotionEnsemble, output_length: int):
        self.ensemble, self.output_length = ensemble, int(output_length)
        self.num_members = ensemble.num_members
        self._function = tf.function(
            lambda frames: ensemble(frames, output_length=self.output_length),
            reduce_retracing=True)

    def members(self, input_frames: Any) -> np.ndarray:
        """``[B, input_length, H, W, C]`` [0, 1] -> ``[B, N, T, H, W, C]`` float32 [0, 1]."""
        frames = tf.convert_to_tensor(np.asarray(input_frames, np.float32))
        if not self.ensemble.built:  # weights are created and copied eagerly, not in a trace
            self.ensemble.build(tuple(frames.shape))
        return self._function(frames).numpy()
