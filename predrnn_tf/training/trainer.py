"""The Trainer: model, optimizer, checkpoint and the compiled train step of one run.

One ``tf.function`` train step reads a batch ``[B, T, H, W, C]`` from the input iterator,
draws the sampling mask for the global batch from a checkpointed ``tf.random.Generator``,
runs the whole unroll, the loss (per-pixel frame loss + ``decouple_beta`` x decoupling
loss) and the optimizer update on every replica (twice with ``reverse_input``), and adds
one to ``step``. Losses are averaged over the global batch and each replica takes its rows
of the global mask, so results do not depend on the replica count. The checkpoint layout
itself belongs to :mod:`predrnn_tf.checkpoints`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf import checkpoints, units
from predrnn_tf.config import Config, parse_csi_thresholds
from predrnn_tf.data import reader, scale_out
from predrnn_tf.errors import CheckpointError, ConfigError, NonFiniteLossError, WorkdirError
from predrnn_tf.models import ensemble, losses
from predrnn_tf.models.builder import build_model
from predrnn_tf.training import train_step
from predrnn_tf.workdir import WorkDir


class TorchAdam(keras.optimizers.Adam):
    """Adam computed as ``torch.optim.Adam`` (the official code's optimizer), epsilon 1e-8.

    Keras adds epsilon to ``sqrt(v)`` before the bias correction, which makes its epsilon
    ``epsilon * sqrt(1 - beta_2^t)`` in PyTorch's terms (and its default is 1e-7); PyTorch
    adds it to the bias-corrected ``sqrt(v) / sqrt(1 - beta_2^t)``. Same slots as Adam, so
    checkpoints of either restore into the other.
    """

    def __init__(self, learning_rate=1e-3, epsilon=1e-8, **kwargs):
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = keras.ops.cast(gradient, dtype)
        step = keras.ops.cast(self.iterations + 1, dtype)
        correction_1 = 1.0 - keras.ops.power(keras.ops.cast(self.beta_1, dtype), step)
        correction_2 = 1.0 - keras.ops.power(keras.ops.cast(self.beta_2, dtype), step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1.0 - self.beta_1))
        self.assign_add(v, (keras.ops.square(gradient) - v) * (1.0 - self.beta_2))
        denominator = keras.ops.sqrt(v) / keras.ops.sqrt(correction_2) + self.epsilon
        step_size = keras.ops.cast(learning_rate, dtype) / correction_1
        self.assign_sub(variable, step_size * m / denominator)


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """Adam with ``lr`` (and global-norm clipping); loss scaling for mixed_float16.

    PyTorch's Adam (:class:`TorchAdam`, the official code's) unless ``config.keras_adam``.
    """
    clip = config.gradient_clip_norm or None
    adam = keras.optimizers.Adam if config.keras_adam else TorchAdam
    optimizer = adam(learning_rate=config.lr, global_clipnorm=clip)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def ensemble_grid(config: Config, metadata: dict) -> tuple[float, float] | None:
    """``(pixel_km, interval_minutes)`` for ``--ensemble_loss=fair_crps`` (None without it).

    Raises:
      ConfigError: one line when the dataset's metadata has no grid (:func:`units.grid_spacing`).
    """
    if config.ensemble_loss == "none":
        return None
    try:
        return units.grid_spacing(metadata)
    except ValueError as error:
        raise ConfigError(f"--ensemble_loss={config.ensemble_loss} needs the dataset's grid, "
                          f"but --dataset_name={config.dataset_name} has {error}; convert it "
                          f"with tools/make_radar.py or use --ensemble_loss=none") from error


def resume_input_seed(seed: int, resumed_step: int) -> int:
    """The input-order seed of a run resumed at ``resumed_step`` without ``--deterministic``.

    A resume that reused ``seed`` would replay the seeded order from its start and re-read the
    sequences of the first steps; a seed mixed from ``(seed, resumed_step)`` draws a fresh
    order instead. Step 0 (a new run) keeps ``seed``.
    """
    if resumed_step <= 0:
        return seed
    return int(np.random.SeedSequence([seed, resumed_step]).generate_state(1)[0] >> 1)


class Trainer:
    """Holds the model, optimizer, checkpoint and step function of one training run.

    Args:
      config: the validated run configuration.
      workdir: the work directory (checkpoints go to ``WORKDIR/checkpoints``).
      strategy: the ``tf.distribute`` strategy; model and optimizer are built in its scope.
      is_chief: whether this process writes the work directory (non-chief workers of a
        multi-worker run save collectively into a temporary folder that is emptied).
      grid: ``(pixel_km, interval_minutes)`` of the data (:func:`ensemble_grid`), needed by
        ``--ensemble_loss=fair_crps``: the model's head is then a
        :class:`~predrnn_tf.models.ensemble.PerturbableMotionHead` (no variable of its own).
    """

    def __init__(self, config: Config, workdir: str, strategy: tf.distribute.Strategy,
                 is_chief: bool = True, grid: tuple[float, float] | None = None):
        self.config = config
        self.workdir = workdir
        self.strategy = strategy
        self.is_chief = is_chief
        self.global_batch = config.batch_size
        self.members = config.ensemble_loss_members if config.ensemble_loss != "none" else 1
        if self.members > 1 and grid is None:
            raise ConfigError(f"--ensemble_loss={config.ensemble_loss} needs the data's grid "
                              f"(pixel_km, interval_minutes), received grid={grid}")
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.model = build_model(config)
            if self.members > 1:  # same initial weights as without the ensemble loss
                self.model = ensemble.perturbable_model(self.model, *grid, (
                    None, config.total_length, config.img_width, config.img_width,
                    config.img_channel), config.ensemble_noise_std)
            self.optimizer = make_optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.generator = tf.random.Generator.from_seed(config.seed)
        self.train_iterator = None
        self.checkpoint = None
        self.manager = None
        self.write_manager = None
        self._temporary_dir = None
        self._checkpoint_has_iterator = False

    # --- data -----------------------------------------------------------------------------
    @property
    def distributes_input(self) -> bool:
        """True if each replica gets its own slice of the input (several replicas/workers)."""
        return self.strategy.num_replicas_in_sync > 1 or isinstance(
            self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    @property
    def checkpoints_iterator(self) -> bool:
        """True if the input position is saved in the checkpoint (deterministic, one replica).

        A distributed iterator cannot be checkpointed; deterministic distributed runs skip
        the records of the steps already done instead (see :meth:`make_train_iterator`).
        """
        return self.config.deterministic and not self.distributes_input

    def make_train_iterator(self, data_dir: str, skip_steps: int = 0, resumed_step: int = 0):
        """Creates the (distributed) training iterator of ``[B, T, H, W, C]`` batches.

        Args:
          data_dir: the dataset folder.
          skip_steps: steps whose input is skipped (a deterministic resume without a
            checkpointed iterator: the seeded order is replayed and the first
            ``skip_steps * batch_size`` records are dropped before decoding).
          resumed_step: the step a non-deterministic run resumes at: its input order is
            reshuffled with :func:`resume_input_seed` instead of replaying the sequences
            the run read first.
        """
        config = self.config
        seed = resume_input_seed(config.seed, resumed_step)
        scale = scale_out.options_from_config(config)

        def dataset_fn(input_context=None):
            batch, pipelines = self.global_batch, 1
            if input_context is not None:
                batch = input_context.get_per_replica_batch_size(self.global_batch)
                pipelines = input_context.num_input_pipelines
            return reader.make_dataset(
                data_dir, config.dataset_name, "train", batch, config.total_length,
                shuffle=True, repeat=True, seed=seed, deterministic=config.deterministic,
                skip_corrupt=config.skip_corrupt, shuffle_buffer=config.shuffle_buffer,
                input_context=input_context, augment=config.augment,
                augment_time_reversal=config.augment_time_reversal,
                frame_size=config.img_width, scale=scale,
                skip_records=skip_steps * self.global_batch // pipelines)

        if self.distributes_input:
            dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        else:
            dataset = dataset_fn()
        self.train_iterator = iter(dataset)
        return self.train_iterator

    # --- checkpoint -------------------------------------------------------------------------
    def _training_checkpoint(self, with_iterator: bool) -> tf.train.Checkpoint:
        iterator = self.train_iterator if with_iterator else None
        return checkpoints.make_training_checkpoint(self.model, self.optimizer, self.step,
                                                    self.generator, iterator)

    def make_checkpoint(self) -> tf.train.CheckpointManager:
        """Builds the checkpoint (with the input position when deterministic) and manager."""
        with_iterator = self.checkpoints_iterator and self.train_iterator is not None
        self.checkpoint = self._training_checkpoint(with_iterator)
        self._checkpoint_has_iterator = with_iterator
        self.manager = checkpoints.make_manager(self.checkpoint, self.workdir)
        self.write_manager = self.manager
        if not self.is_chief:  # other workers save (collectively) into a removed temp dir
            self._temporary_dir = tempfile.mkdtemp(prefix="predrnn-worker-")
            self.write_manager = checkpoints.make_manager(self.checkpoint, self._temporary_dir,
                                                          max_to_keep=1)
        return self.manager

    def restore_or_initialize(self) -> int:
        """Restores the newest checkpoint if any; returns the step to start from.

        A checkpoint without an input position (written without ``--deterministic``, or
        imported from PyTorch) restores everything else; the input then starts from the
        beginning of its seeded order.
        """
        latest = WorkDir(self.workdir).latest_checkpoint()  # the newest intact one
        if not latest:
            logging.info("No checkpoint in %s: starting from scratch.", self.manager.directory)
            return 0
        checkpoints.check_variables_match(latest, self._training_checkpoint(False))
        checkpoint = self.checkpoint
        if self._checkpoint_has_iterator and not checkpoints.has_iterator(latest):
            logging.info("Checkpoint %s holds no input position: the input starts from the "
                         "beginning.", latest)
            checkpoint = self._training_checkpoint(False)
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise CheckpointError(
                f"checkpoint {latest} does not match the model of these flags (another "
                f"model or a damaged file: {checkpoints.error_line(error)}); use the flags "
                f"it was trained with") from error
        logging.info("Resumed from %s at step %d.", latest, int(self.step.numpy()))
        return int(self.step.numpy())

    def checkpoint_bytes(self) -> int:
        """A generous estimate of one checkpoint's size (weights, Adam slots, input state)."""
        weights = sum(int(np.prod(variable.shape)) * 4 for variable in self.model.weights)
        size = 3 * weights + (1 << 20)
        if self.config.deterministic:  # the iterator state holds the shuffle buffer
            frame = self.config.img_width * self.config.img_width * self.config.img_channel
            size += self.config.shuffle_buffer * self.config.total_length * frame * 2
        return size

    def save(self) -> str | None:
        """Saves a checkpoint at the current step unless a weight is non-finite.

        A failed write (full disk, lost permissions) raises WorkdirError; the previous
        checkpoint stays the newest one, since the manager registers a checkpoint only
        after it is completely written.
        """
        step = int(self.step.numpy())
        if not bool(train_step.all_finite(self.model.trainable_variables)):
            raise NonFiniteLossError(
                f"non-finite weights at step {step}: checkpoint not written; the last "
                f"checkpoint ({self.manager.latest_checkpoint}) is untouched")
        try:
            path = self.write_manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            raise WorkdirError(
                f"--workdir={self.workdir}: writing the checkpoint of step {step} failed "
                f"({checkpoints.error_line(error)}); the previous checkpoint "
                f"({self.manager.latest_checkpoint}) is intact") from error
        if not self.is_chief:  # keep the folder, drop its files
            _clear_directory(checkpoints.checkpoint_dir(self._temporary_dir))
            return None
        return path

    def close(self) -> None:
        """Removes a non-chief worker's temporary checkpoint folder."""
        if self._temporary_dir:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None

    # --- step -------------------------------------------------------------------------------
    def replica_loss(self, frames, mask, draws=None):
        """Forward pass on this replica's ``[b, T, H, W, C]`` frames.

        With ``--ensemble_loss=fair_crps`` the frames and the mask are tiled to ``b * M``
        rows (each sequence M times in a row) and member m's forecast moves along the motion
        perturbed by its ``draws`` row (``[b * M, 2]`` Laplace pairs).

        Returns:
          ``(loss, frame_loss_per_pixel, decouple_loss)``, each this replica's part of the
          global-batch average (summed over replicas they give the global average exactly);
          ``frame_loss_per_pixel`` is the frame loss per pixel over all frames (the fair
          CRPS with the ensemble loss).
        """
        inputs = frames
        if self.members > 1:
            inputs = tf.repeat(frames, self.members, axis=0)  # [b*M, T, H, W, C]
            mask = tf.repeat(mask, self.members, axis=0)  # [b*M, mask steps, ...]
            with self.model.output_head.perturbing(draws, self.members, self.noise_seed()):
                predictions, decouple = self.model(inputs, mask, training=True)
        else:
            predictions, decouple = self.model(frames, mask, training=True)
        frame_loss = tf.nn.compute_average_loss(self.frame_loss(predictions, frames),
                                                global_batch_size=self.global_batch)
        # The model's decoupling loss is its batch mean: weight it by b / global batch.
        share = tf.cast(tf.shape(frames)[0], tf.float32) / float(self.global_batch)
        decouple = decouple * share
        loss = frame_loss + self.config.decouple_beta * decouple
        if self.config.csi_loss_weight > 0:  # --csi_loss_weight: the rain-area term (members)
            loss = loss + self.config.csi_loss_weight * tf.nn.compute_average_loss(
                self.csi_loss(predictions, inputs),
                global_batch_size=self.global_batch * self.members)
        return loss, frame_loss, decouple

    def frame_loss(self, predictions, frames):
        """Per-sample frame loss ``[b]`` of the predicted frames 2..T against the truth
        (``--frame_loss``: :func:`predrnn_tf.models.losses.frame_loss`; with
        ``--ensemble_loss=fair_crps`` the ``[b * M, ...]`` predictions are the members and the
        loss is :func:`predrnn_tf.models.losses.fair_crps` in [0, 1] pixels)."""
        if self.members == 1:
            return losses.frame_loss(predictions, frames[:, 1:], self.config.frame_loss)
        shape = tf.shape(predictions)
        members = tf.reshape(predictions, tf.concat([[-1, self.members], shape[1:]], axis=0))
        members = tf.ensure_shape(members, [None, self.members, None, None, None, None])
        return losses.fair_crps(members, frames[:, 1:])  # members [b, M, T-1, H, W, C]

    def motion_draws(self) -> tf.Tensor:
        """``[global batch * M, 2]`` Laplace pairs of the step's members (``[0, 2]`` without
        the ensemble loss), drawn statelessly from ``(seed, step)``: a resume redraws them."""
        rows = self.global_batch * self.members if self.members > 1 else 0
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), self.step.read_value()])
        uniform = tf.random.stateless_uniform([rows, 2], seed, minval=-0.5, maxval=0.5)
        return ensemble.laplace_from_uniform(uniform)

    def noise_seed(self) -> tf.Tensor:
        """The stateless seed of this replica's state noise (``--ensemble_noise_std``): the
        ``(seed, step)`` pair folded with the replica's id."""
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), self.step.read_value()])
        replica = tf.distribute.get_replica_context()
        replica_id = 0 if replica is None else replica.replica_id_in_sync_group
        return tf.random.experimental.stateless_fold_in(seed, replica_id)

    def csi_loss(self, predictions, frames):
        """Per-sample soft-CSI loss ``[b]`` of the predicted frames 2..T (``--csi_loss_*``:
        :func:`predrnn_tf.models.losses.soft_csi_loss`)."""
        thresholds = parse_csi_thresholds(self.config.csi_loss_thresholds_mmh)
        return losses.soft_csi_loss(predictions, frames[:, 1:], thresholds,
                                    self.config.csi_loss_temperature_db)

    def make_train_step(self):
        """The compiled train step: (iterator, encoder p, decoder p) -> metrics dict."""
        return train_step.make_train_step(self)


def _clear_directory(path: str) -> None:
    for name in os.listdir(path) if os.path.isdir(path) else []:
        entry = os.path.join(path, name)
        if os.path.isdir(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            os.remove(entry)
