"""Training: ``train_and_evaluate(config, workdir)``, the library behind ``predrnn_tf.train``.

One ``tf.function`` train step does the whole unroll, the loss and the optimizer update
(twice with ``reverse_input``). The sampling schedule is computed in Python from the
iteration and turned into a Bernoulli mask inside the step from a checkpointed
``tf.random.Generator``. The work directory is restored if it holds a checkpoint, so running
the same command again resumes where it stopped.

Scale-out runs on ``tf.distribute`` (``--distribution_strategy``): ``batch_size`` is the
global batch, losses are averaged over it, and the mask is drawn for the global batch and
sliced per replica, so results do not depend on the replica count. Only the chief writes
into the work directory. Fault tolerance (see :mod:`predrnn_tf.fault_tolerance`): a lock
on the work directory, SIGTERM/SIGINT finish the step and checkpoint (through
``PreemptionCheckpointHandler`` on multi-worker runs), non-finite losses never reach a
checkpoint, and ``WORKDIR/losses.jsonl`` holds the loss trajectory of the kept run.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from predrnn_tf import checkpoints
from predrnn_tf.config import (
    Config,
    ConfigError,
    changed_model_fields,
    load_config,
    save_config,
    validate_config,
)
from predrnn_tf.data import reader, schema
from predrnn_tf.data.sources import prepare_data
from predrnn_tf.errors import NonFiniteLossError, WorkdirError
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.losses import frame_mse
from predrnn_tf.training import fault_tolerance
from predrnn_tf.training.schedules import draw_mask, sampling_probabilities

__all__ = ["NonFiniteLossError", "Trainer", "WorkdirError", "train_and_evaluate"]

def check_resume(config: Config, workdir: str) -> None:
    """Refuses to resume a workdir with flags that change the model's weights."""
    if not os.path.exists(os.path.join(workdir, "config.json")):
        return
    if checkpoints.latest_checkpoint(workdir) is None:
        return
    saved = load_config(workdir)
    changed = changed_model_fields(saved, config)
    if changed:
        name = changed[0]
        raise ConfigError(f"--{name}={getattr(config, name)} differs from the checkpoint's "
                          f"{name}={getattr(saved, name)} in {workdir}: use a new --workdir")


def make_strategy(config: Config) -> tf.distribute.Strategy:
    """The tf.distribute strategy named by ``config.distribution_strategy``.

    ``mirrored`` uses every visible GPU (the first ``num_devices`` if set); without GPUs it
    uses the logical CPU devices (several only if configured with
    ``tf.config.set_logical_device_configuration``, as the tests do).
    """
    if config.distribution_strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if config.num_devices:
            if config.num_devices > len(devices):
                raise ConfigError(f"--num_devices={config.num_devices} but only {len(devices)} "
                                  f"device(s) are visible")
            devices = devices[:config.num_devices]
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    if config.distribution_strategy == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """Adam with ``lr`` (and global-norm clipping); loss scaling for mixed_float16."""
    clip = config.gradient_clip_norm or None
    optimizer = keras.optimizers.Adam(learning_rate=config.lr, global_clipnorm=clip)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _all_finite(tensors) -> tf.Tensor:
    checks = [tf.reduce_all(tf.math.is_finite(tensor)) for tensor in tensors if tensor is not None]
    return tf.reduce_all(tf.stack(checks))


def _error_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error message without TensorFlow's ``{{function_node ...}}``."""
    message = (getattr(error, "message", None) or str(error) or type(error).__name__).strip()
    message = message.splitlines()[0] if message else type(error).__name__
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    return message[:limit]


def _clear_directory(path: str) -> None:
    for name in os.listdir(path) if os.path.isdir(path) else []:
        entry = os.path.join(path, name)
        if os.path.isdir(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            os.remove(entry)


class Trainer:
    """Holds the model, optimizer, checkpoint and step functions of one training run."""

    def __init__(self, config: Config, workdir: str, strategy: tf.distribute.Strategy,
                 is_chief: bool = True):
        self.config = config
        self.workdir = workdir
        self.strategy = strategy
        self.is_chief = is_chief
        self.global_batch = config.batch_size
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.model = build_model(config)
            self.optimizer = make_optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.generator = tf.random.Generator.from_seed(config.seed)
        self.train_iterator = None
        self.checkpoint = None
        self.manager = None
        self.write_manager = None
        self._temporary_dir = None

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

    def make_train_iterator(self, data_dir: str, skip_steps: int = 0):
        """Creates the (distributed) training iterator.

        Args:
          data_dir: the dataset folder.
          skip_steps: steps whose input is skipped (a deterministic resume without a
            checkpointed iterator: the seeded order is replayed and the first
            ``skip_steps * batch_size`` records are dropped before decoding).
        """
        config = self.config

        def dataset_fn(input_context=None):
            batch = self.global_batch
            pipelines = 1
            if input_context is not None:
                batch = input_context.get_per_replica_batch_size(self.global_batch)
                pipelines = input_context.num_input_pipelines
            return reader.make_dataset(
                data_dir, config.dataset_name, "train", batch, config.total_length,
                shuffle=True, repeat=True, seed=config.seed, deterministic=config.deterministic,
                skip_corrupt=config.skip_corrupt, shuffle_buffer=config.shuffle_buffer,
                input_context=input_context,
                skip_records=skip_steps * self.global_batch // pipelines)

        if self.distributes_input:
            dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        else:
            dataset = dataset_fn()
        self.train_iterator = iter(dataset)
        return self.train_iterator

    # --- checkpoint -------------------------------------------------------------------------
    def make_checkpoint(self) -> tf.train.CheckpointManager:
        """Builds the checkpoint (with the input position when deterministic) and manager."""
        objects = {"model": self.model, "optimizer": self.optimizer, "step": self.step,
                   "generator": self.generator}
        if self.checkpoints_iterator and self.train_iterator is not None:
            objects["iterator"] = self.train_iterator
        self._checkpoint_objects = objects
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = checkpoints.make_manager(self.checkpoint, self.workdir)
        self.write_manager = self.manager
        if not self.is_chief:  # other workers save (collectively) into a removed temp dir
            self._temporary_dir = tempfile.mkdtemp(prefix="predrnn-worker-")
            self.write_manager = checkpoints.make_manager(self.checkpoint, self._temporary_dir,
                                                          max_to_keep=1)
        return self.manager

    def restore_or_initialize(self) -> int:
        """Restores the newest checkpoint if any; returns the step to start from."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.check_checkpoint_shapes(latest)
            try:
                status = self.checkpoint.restore(latest)
                status.assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                raise ConfigError(
                    f"checkpoint {latest} does not match the model of these flags (another "
                    f"model or a damaged file: {_error_line(error)}); use a new --workdir"
                ) from error
            logging.info("Resumed from %s at step %d.", latest, int(self.step.numpy()))
        else:
            logging.info("No checkpoint in %s: starting from scratch.", self.manager.directory)
        return int(self.step.numpy())

    def check_checkpoint_shapes(self, path: str) -> None:
        """Refuses a checkpoint whose variables differ from this run's (ConfigError).

        Compares variable names and shapes with a probe checkpoint of the same objects (a
        variable is named by its first path in the object graph, so the probe must hold the
        optimizer too), so a checkpoint of another model is named before a restore could
        half-apply it.
        """
        try:
            stored = dict(tf.train.list_variables(path))
        except (tf.errors.OpError, ValueError) as error:
            raise ConfigError(f"checkpoint {path} cannot be read ({_error_line(error)}); "
                              f"use a new --workdir") from error
        with tempfile.TemporaryDirectory(prefix="predrnn-probe-") as scratch:
            objects = {key: value for key, value in self._checkpoint_objects.items()
                       if key != "iterator"}
            probe = tf.train.Checkpoint(**objects).write(os.path.join(scratch, "probe"))
            expected = dict(tf.train.list_variables(probe))
        for name, shape in sorted(expected.items()):
            if not name.startswith(("model/", "optimizer/")) or not name.endswith(
                    "VARIABLE_VALUE"):
                continue
            if name not in stored:
                raise ConfigError(f"checkpoint {path} holds another model: it has no variable "
                                  f"{name}; use a new --workdir")
            if list(stored[name]) != list(shape):
                raise ConfigError(f"checkpoint {path} holds another model: variable {name} has "
                                  f"shape {list(stored[name])} there but {list(shape)} with "
                                  f"these flags; use a new --workdir")

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
        if not bool(_all_finite(self.model.trainable_variables)):
            raise NonFiniteLossError(
                f"non-finite weights at step {step}: checkpoint not written; the last "
                f"checkpoint ({self.manager.latest_checkpoint}) is untouched")
        try:
            path = self.write_manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            raise WorkdirError(
                f"--workdir={self.workdir}: writing the checkpoint of step {step} failed "
                f"({_error_line(error)}); the previous checkpoint "
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

    # --- steps ------------------------------------------------------------------------------
    def _replica_loss(self, frames, mask):
        predictions, decouple = self.model(frames, mask, training=True)
        mse = frame_mse(predictions, frames[:, 1:])  # [b]
        per_sample = mse + self.config.decouple_beta * decouple
        loss = tf.nn.compute_average_loss(per_sample, global_batch_size=self.global_batch)
        mse_mean = tf.nn.compute_average_loss(mse, global_batch_size=self.global_batch)
        decouple_mean = tf.nn.compute_average_loss(decouple, global_batch_size=self.global_batch)
        return loss, mse_mean, decouple_mean

    def _update(self, frames, mask):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, mse, decouple = self._replica_loss(frames, mask)
            scaled = loss
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        context = tf.distribute.get_replica_context()
        finite = tf.math.is_finite(loss)
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            finite = tf.logical_and(finite, _all_finite(gradients))
        bad_replicas = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                          1.0 - tf.cast(finite, tf.float32))
        finite = bad_replicas < 0.5
        if self.config.nan_policy == "skip_step":
            tf.cond(finite, lambda: self._apply(gradients, variables), tf.no_op)
        else:
            self._apply(gradients, variables)
        return loss, mse, decouple, tf.cast(finite, tf.float32)

    def _apply(self, gradients, variables):
        self.optimizer.apply_gradients(zip(gradients, variables))
        return tf.no_op()

    def _replica_step(self, frames, mask):
        context = tf.distribute.get_replica_context()
        local = tf.shape(frames)[0]
        start = context.replica_id_in_sync_group * local
        mask = mask[start:start + local]  # this replica's rows of the global mask
        passes = [frames]
        if self.config.reverse_input:
            passes.append(tf.reverse(frames, axis=[1]))
        totals = [0.0, 0.0, 0.0]
        finite = 1.0
        for inputs in passes:
            loss, mse, decouple, ok = self._update(inputs, mask)
            totals = [total + value for total, value in zip(totals, (loss, mse, decouple))]
            finite = finite * ok
        count = float(len(passes))
        return {"loss": totals[0] / count, "mse": totals[1] / count,
                "decouple_loss": totals[2] / count,
                "finite": finite / self.strategy.num_replicas_in_sync}

    def make_train_step(self):
        """The compiled train step: (iterator, encoder p, decoder p) -> metrics dict."""
        config = self.config

        def train_step(iterator, encoder_probability, decoder_probability):
            frames = next(iterator)
            mask = draw_mask(self.generator, self.global_batch, encoder_probability,
                             decoder_probability, config)
            results = self.strategy.run(self._replica_step, args=(frames, mask))
            results = {key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                       for key, value in results.items()}
            self.step.assign_add(1)
            return results

        return tf.function(train_step, jit_compile=config.jit_compile or None,
                           reduce_retracing=True)


def make_forecast_fn(model):
    """A compiled forecast: [B, input_length, H, W, C] -> [B, output_length, H, W, C]."""
    def forecast(frames):
        return model.forecast(frames)

    return tf.function(forecast, reduce_retracing=True)


def run_test_pass(forecast_fn, dataset, config: Config) -> dict[str, Any]:
    """Per-frame MSE (sum over pixels, the paper's "per-frame MSE") of model and persistence.

    Returns:
      ``{"mse_per_frame": [...], "mse": float, "persistence_mse": float, "sequences": n}``;
      ``mse`` averages the per-frame values.
    """
    totals = np.zeros(config.output_length)
    persistence_totals = np.zeros(config.output_length)
    count = 0
    for index, frames in enumerate(dataset):
        if config.num_test_batches and index >= config.num_test_batches:
            break
        inputs = frames[:, :config.input_length]
        truth = frames[:, config.input_length:].numpy()
        predictions = np.clip(forecast_fn(inputs).numpy(), 0.0, 1.0)
        persistence = np.repeat(inputs[:, -1:].numpy(), config.output_length, axis=1)
        totals += np.square(predictions - truth).sum(axis=(2, 3, 4)).sum(axis=0)
        persistence_totals += np.square(persistence - truth).sum(axis=(2, 3, 4)).sum(axis=0)
        count += truth.shape[0]
    if count == 0:
        raise schema.DataError("the test split yielded no complete batch: lower --batch_size")
    per_frame = totals / count
    return {"mse_per_frame": per_frame.tolist(), "mse": float(per_frame.mean()),
            "persistence_mse": float((persistence_totals / count).mean()), "sequences": count}


def image_strip(truth: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Truth above prediction for one sequence: ``[1, 2H, T*W, C]`` in [0, 1]."""
    top = np.concatenate(list(truth), axis=1)  # [H, T*W, C]
    bottom = np.concatenate(list(np.clip(predictions, 0.0, 1.0)), axis=1)  # [H, T*W, C]
    return np.concatenate([top, bottom], axis=0)[None]  # [1, 2H, T*W, C]


def format_duration(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLogger:
    """Progress lines with rate and ETA, and scalar summaries."""

    def __init__(self, start_step: int, max_iterations: int, writer):
        self.start_step = start_step
        self.max_iterations = max_iterations
        self.writer = writer
        self.start_time = time.time()
        self.last_time = self.start_time
        self.last_step = start_step

    def log(self, step: int, results: dict[str, float], probabilities: tuple[float, float],
            learning_rate: float) -> None:
        now = time.time()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        overall = (step - self.start_step) / max(now - self.start_time, 1e-9)
        remaining = (self.max_iterations - step) / max(overall, 1e-9)
        self.last_time, self.last_step = now, step
        logging.info("step %d/%d  loss %.5f  mse %.5f  decouple %.4f  p_true %.3f/%.3f  "
                     "%.2f it/s  eta %s", step, self.max_iterations, results["loss"],
                     results["mse"], results["decouple_loss"], probabilities[0],
                     probabilities[1], rate, format_duration(remaining))
        with self.writer.as_default(step=step):
            for key in ("loss", "mse", "decouple_loss"):
                tf.summary.scalar(f"train/{key}", results[key])
            tf.summary.scalar("train/encoder_true_probability", probabilities[0])
            tf.summary.scalar("train/decoder_true_probability", probabilities[1])
            tf.summary.scalar("train/learning_rate", learning_rate)
            tf.summary.scalar("train/steps_per_second", rate)


def _write_test_summaries(writer, step: int, test: dict[str, Any]) -> None:
    with writer.as_default(step=step):
        tf.summary.scalar("test/mse_per_frame_mean", test["mse"])
        tf.summary.scalar("test/persistence_mse_per_frame_mean", test["persistence_mse"])
        for index, value in enumerate(test["mse_per_frame"]):
            tf.summary.scalar(f"test_frames/mse_frame_{index + 1:02d}", value)


class _Preempted(Exception):
    """Raised by the PreemptionCheckpointHandler's exit function after its checkpoint."""


def _is_multi_worker(config: Config) -> bool:
    return config.distribution_strategy == "multi_worker_mirrored"


def _data_error(error: tf.errors.OpError, data_dir: str, config: Config) -> Exception:
    """A DataError naming the corrupt shard behind ``error``, or ``error`` itself."""
    frame_shape = (config.img_width, config.img_width, config.img_channel)
    paths = []
    for split in schema.SPLITS:
        paths += schema.shard_paths(data_dir, config.dataset_name, split)
    found = reader.find_corrupt_shard(paths, config.total_length, frame_shape)
    if found is None:
        return error
    path, message = found
    return schema.DataError(f"corrupt or truncated record in {path}: {message} (repair or "
                            f"remove the file, or pass --skip_corrupt to skip such records)")


def _count_skipped_records(config: Config, data_dir: str, writer, step: int) -> None:
    """With ``skip_corrupt``: logs and summarises the records each pass will skip."""
    scan = reader.scan_split(data_dir, config.dataset_name, "train", config.total_length)
    if scan["readable"] < config.batch_size:
        raise schema.DataError(
            f"only {scan['readable']} readable train records in {data_dir} (corrupt shards: "
            f"{', '.join(scan['corrupt_shards']) or 'none'}) for --batch_size={config.batch_size}")
    if scan["skipped"]:
        logging.warning("--skip_corrupt: %d train record(s) per pass are unreadable and skipped "
                        "(corrupt shards: %s).", scan["skipped"],
                        ", ".join(scan["corrupt_shards"]))
    else:
        logging.info("--skip_corrupt: all %d train records are readable.", scan["readable"])
    with writer.as_default(step=step):
        tf.summary.scalar("data/skipped_train_records_per_pass", scan["skipped"])


def _barrier(strategy: tf.distribute.Strategy) -> None:
    """Waits until every replica of every worker gets here (an all-reduce of ones)."""
    ones = strategy.run(lambda: tf.constant(1.0))
    strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)


def _make_preemption_handler(strategy, trainer: Trainer,
                             shutdown: fault_tolerance.ShutdownRequest):
    """PreemptionCheckpointHandler: all workers agree on a step, checkpoint, then return.

    Our signal handlers feed its termination watcher; its exit function raises
    ``_Preempted`` so that training returns normally (exit status 0).
    """
    def exit_fn():
        raise _Preempted()

    termination = tf.distribute.experimental.TerminationConfig(
        termination_watcher_fn=lambda: shutdown.requested, exit_fn=exit_fn,
        save_fn=lambda: trainer.save())
    return tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver, trainer.manager, termination_config=termination)


def _prepare_workdir(trainer: Trainer, start_step: int, restored: bool) -> None:
    """Chief only: removes leftovers of interrupted writes and cuts the loss log back."""
    removed = fault_tolerance.remove_stray_files(trainer.workdir, checkpoints.CHECKPOINT_SUBDIR,
                                                 start_step if restored else None)
    for path in removed:
        logging.info("Removed %s (left by an interrupted run).", path)
    fault_tolerance.LossLog(trainer.workdir).truncate_after(start_step)


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
    """Trains ``config`` in ``workdir`` (resuming if possible) and returns the last test pass.

    The chief takes a lock on ``workdir`` for the whole run. SIGTERM or SIGINT end the run
    after the current step with a checkpoint; the result then holds ``"interrupted"`` (the
    signal name) and no test metrics.

    Args:
      config: the run configuration (validated here).
      workdir: checkpoints, ``config.json``, TensorBoard events and images go here.

    Returns:
      The final test metrics (see :func:`run_test_pass`) plus ``"step"`` and ``"train"``.
    """
    config = validate_config(config)
    is_chief = fault_tolerance.cluster_task()[2] if _is_multi_worker(config) else True
    lock = None
    if is_chief:
        fault_tolerance.check_workdir_writable(workdir)
        lock = fault_tolerance.WorkdirLock(workdir).acquire()
    try:
        with fault_tolerance.ShutdownRequest() as shutdown:
            return _train(config, workdir, is_chief, shutdown)
    finally:
        if lock is not None:
            lock.release()


def _train(config: Config, workdir: str, is_chief: bool,
           shutdown: fault_tolerance.ShutdownRequest) -> dict[str, Any]:
    check_resume(config, workdir)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    data_dir, _ = prepare_data(config, workdir, is_chief)
    strategy = make_strategy(config)
    shutdown.reinstall()
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--batch_size={config.batch_size} (the global batch) must be a "
                          f"multiple of the {replicas} replicas")
    trainer = Trainer(config, workdir, strategy, is_chief=is_chief)
    if is_chief:
        fault_tolerance.check_workdir_writable(workdir, 2 * trainer.checkpoint_bytes())
    try:
        if trainer.checkpoints_iterator:
            trainer.make_train_iterator(data_dir)
        trainer.make_checkpoint()
        restored = trainer.manager.latest_checkpoint is not None
        start_step = trainer.restore_or_initialize()
        if not trainer.checkpoints_iterator:
            trainer.make_train_iterator(data_dir, start_step if config.deterministic else 0)
        if is_chief:
            _prepare_workdir(trainer, start_step, restored)
            save_config(config, workdir)
        return _train_loop(config, trainer, data_dir, start_step, shutdown)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        named = _data_error(error, data_dir, config)
        if named is error:
            raise
        raise named from error
    finally:
        trainer.close()


def _train_loop(config: Config, trainer: Trainer, data_dir: str, start_step: int,
                shutdown: fault_tolerance.ShutdownRequest) -> dict[str, Any]:
    is_chief = trainer.is_chief
    workdir = trainer.workdir
    if is_chief:
        writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
    else:
        writer = tf.summary.create_noop_writer()
    if config.skip_corrupt:
        _count_skipped_records(config, data_dir, writer, start_step)
    test_dataset = reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                                       config.total_length, shuffle=False, repeat=False,
                                       deterministic=True, skip_corrupt=config.skip_corrupt)
    display_frames = None
    if is_chief:
        display_frames = next(iter(test_dataset.take(1))).numpy()[:1]
    handler = None
    if _is_multi_worker(config):
        handler = _make_preemption_handler(trainer.strategy, trainer, shutdown)
    train_step = trainer.make_train_step()
    forecast_fn = make_forecast_fn(trainer.model)
    progress = ProgressLogger(start_step, config.max_iterations, writer)
    loss_log = fault_tolerance.LossLog(workdir)
    results: dict[str, Any] = {}
    test: dict[str, Any] = {}
    step = start_step
    while step < config.max_iterations:
        probabilities = sampling_probabilities(config, step)
        arguments = (trainer.train_iterator, tf.constant(probabilities[0], tf.float32),
                     tf.constant(probabilities[1], tf.float32))
        try:
            outputs = handler.run(train_step, *arguments) if handler else train_step(*arguments)
        except _Preempted:
            logging.info("Received %s: all workers saved a checkpoint at step %d; exiting. "
                         "Run the same command again to resume.", shutdown.signal_name, step)
            return {"step": step, "interrupted": shutdown.signal_name, "train": results}
        step += 1
        results = {key: float(value) for key, value in outputs.items()}
        if results["finite"] < 1.0 or not math.isfinite(results["loss"]):
            if config.nan_policy == "stop":
                raise NonFiniteLossError(
                    f"non-finite loss {results['loss']} at step {step}; the last checkpoint "
                    f"({trainer.manager.latest_checkpoint}) is untouched (try a lower --lr, "
                    f"--gradient_clip_norm or --nan_policy=skip_step)")
            logging.warning("Non-finite loss at step %d: update skipped.", step)
        if step % config.log_every == 0 or step == config.max_iterations:
            progress.log(step, results, probabilities, config.lr)
            if is_chief:
                loss_log.append(step, results)
        if is_chief and (step % config.display_interval == 0 or step == config.max_iterations):
            predictions = forecast_fn(display_frames[:, :config.input_length]).numpy()
            strip = image_strip(display_frames[0, config.input_length:], predictions[0])
            with writer.as_default(step=step):
                tf.summary.image("test/truth_over_prediction", strip)
        if is_chief and (step % config.test_interval == 0 or step == config.max_iterations):
            test = run_test_pass(forecast_fn, test_dataset, config)
            logging.info("test at step %d: per-frame MSE %.2f (persistence %.2f) over %d "
                         "sequences", step, test["mse"], test["persistence_mse"],
                         test["sequences"])
            _write_test_summaries(writer, step, test)
        if step % config.snapshot_interval == 0 or step == config.max_iterations:
            path = trainer.save()
            if path:
                logging.info("Saved checkpoint %s", path)
        writer.flush()
        if shutdown.requested and handler is None:
            path = trainer.manager.latest_checkpoint
            if not path or not path.endswith(f"-{step}"):
                path = trainer.save()
            logging.info("Received %s: finished step %d and saved checkpoint %s; exiting. Run "
                         "the same command again to resume.", shutdown.signal_name, step, path)
            writer.close()
            return {"step": step, "interrupted": shutdown.signal_name, "train": results}
    writer.close()
    if _is_multi_worker(config):
        _barrier(trainer.strategy)  # no worker leaves while the chief still tests and saves
    if not test and start_step >= config.max_iterations and is_chief:
        logging.info("Already at step %d >= --max_iterations=%d: nothing to train.",
                     start_step, config.max_iterations)
        test = run_test_pass(forecast_fn, test_dataset, config)
    return dict(test, step=step, train=results)
