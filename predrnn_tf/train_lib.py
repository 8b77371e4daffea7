"""Training: ``train_and_evaluate(config, workdir)``, the library behind ``predrnn_tf.train``.

One ``tf.function`` train step does the whole unroll, the loss and the optimizer update
(twice with ``reverse_input``). The sampling schedule is computed in Python from the
iteration and turned into a Bernoulli mask inside the step from a checkpointed
``tf.random.Generator``. The work directory is restored if it holds a checkpoint, so running
the same command again resumes where it stopped.
"""

from __future__ import annotations

import math
import os
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
from predrnn_tf.data import reader, schema, synthetic_radar
from predrnn_tf.losses import frame_mse
from predrnn_tf.models.builder import build_model
from predrnn_tf.schedules import draw_mask, sampling_probabilities


class NonFiniteLossError(RuntimeError):
    """Training produced a non-finite loss under ``nan_policy=stop``."""


def resolve_data_dir(config: Config, workdir: str) -> str:
    """The dataset folder: ``config.data_dir``, or ``WORKDIR/data`` for synthetic data."""
    if config.data_dir:
        return config.data_dir
    if config.dataset_name == synthetic_radar.NAME:
        return os.path.join(workdir, "data")
    raise ConfigError(f"--data_dir is required for --dataset_name={config.dataset_name}")


def prepare_data(config: Config, workdir: str) -> tuple[str, dict[str, Any]]:
    """Generates synthetic data if needed, reads and checks the metadata of both splits.

    Returns:
      ``(data_dir, metadata)``.
    """
    data_dir = resolve_data_dir(config, workdir)
    if config.dataset_name == synthetic_radar.NAME:
        synthetic_radar.ensure_synthetic_dataset(data_dir, config.img_width, config.total_length,
                                                 seed=config.seed)
    elif not os.path.isdir(data_dir):
        raise ConfigError(f"--data_dir={data_dir} does not exist")
    metadata = schema.read_metadata(data_dir, config.dataset_name)
    for split in schema.SPLITS:
        reader.check_metadata(metadata, config, split)
    if metadata.get("synthetic"):
        logging.info("Dataset %r is SYNTHETIC (generated, not observed).", config.dataset_name)
    return data_dir, metadata


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
    """The tf.distribute strategy named by ``config.distribution_strategy``."""
    if config.distribution_strategy == "mirrored":
        devices = None
        gpus = tf.config.list_logical_devices("GPU")
        if config.num_devices and gpus:
            devices = [device.name for device in gpus[:config.num_devices]]
        return tf.distribute.MirroredStrategy(devices=devices)
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


class Trainer:
    """Holds the model, optimizer, checkpoint and step functions of one training run."""

    def __init__(self, config: Config, workdir: str, strategy: tf.distribute.Strategy):
        self.config = config
        self.workdir = workdir
        self.strategy = strategy
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

    # --- data -----------------------------------------------------------------------------
    def make_train_iterator(self, data_dir: str):
        """Creates the distributed training iterator."""
        config = self.config

        def dataset_fn(input_context=None):
            batch = self.global_batch
            if input_context is not None:
                batch = input_context.get_per_replica_batch_size(self.global_batch)
            return reader.make_dataset(
                data_dir, config.dataset_name, "train", batch, config.total_length,
                shuffle=True, repeat=True, seed=config.seed, deterministic=config.deterministic,
                skip_corrupt=config.skip_corrupt, shuffle_buffer=config.shuffle_buffer,
                input_context=input_context)

        if self.strategy.num_replicas_in_sync > 1 or isinstance(
                self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
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
        if self.config.deterministic and self.train_iterator is not None:
            objects["iterator"] = self.train_iterator
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = checkpoints.make_manager(self.checkpoint, self.workdir)
        return self.manager

    def restore_or_initialize(self) -> int:
        """Restores the newest checkpoint if any; returns the step to start from."""
        latest = self.manager.latest_checkpoint
        if latest:
            status = self.checkpoint.restore(latest)
            status.assert_existing_objects_matched()
            logging.info("Resumed from %s at step %d.", latest, int(self.step.numpy()))
        else:
            logging.info("No checkpoint in %s: starting from scratch.", self.manager.directory)
        return int(self.step.numpy())

    def save(self) -> str | None:
        """Saves a checkpoint at the current step unless a weight is non-finite."""
        if not bool(_all_finite(self.model.trainable_variables)):
            raise NonFiniteLossError(
                f"non-finite weights at step {int(self.step.numpy())}: checkpoint not written")
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

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


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
    """Trains ``config`` in ``workdir`` (resuming if possible) and returns the last test pass.

    Args:
      config: the run configuration (validated here).
      workdir: checkpoints, ``config.json``, TensorBoard events and images go here.

    Returns:
      The final test metrics (see :func:`run_test_pass`) plus ``"step"``.
    """
    config = validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    check_resume(config, workdir)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    data_dir, _ = prepare_data(config, workdir)
    strategy = make_strategy(config)
    trainer = Trainer(config, workdir, strategy)
    trainer.make_train_iterator(data_dir)
    trainer.make_checkpoint()
    start_step = trainer.restore_or_initialize()
    save_config(config, workdir)

    test_dataset = reader.make_dataset(data_dir, config.dataset_name, "test", config.batch_size,
                                       config.total_length, shuffle=False, repeat=False,
                                       deterministic=True)
    display_frames = next(iter(test_dataset.take(1))).numpy()[:1]
    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
    train_step = trainer.make_train_step()
    forecast_fn = make_forecast_fn(trainer.model)
    progress = ProgressLogger(start_step, config.max_iterations, writer)
    results: dict[str, Any] = {}
    test: dict[str, Any] = {}
    step = start_step
    while step < config.max_iterations:
        probabilities = sampling_probabilities(config, step)
        outputs = train_step(trainer.train_iterator,
                             tf.constant(probabilities[0], tf.float32),
                             tf.constant(probabilities[1], tf.float32))
        step += 1
        results = {key: float(value) for key, value in outputs.items()}
        if results["finite"] < 1.0 or not math.isfinite(results["loss"]):
            if config.nan_policy == "stop":
                raise NonFiniteLossError(
                    f"non-finite loss {results['loss']} at step {step}; the last checkpoint "
                    f"({trainer.manager.latest_checkpoint}) is untouched")
            logging.warning("Non-finite loss at step %d: update skipped.", step)
        if step % config.log_every == 0 or step == config.max_iterations:
            progress.log(step, results, probabilities, config.lr)
        if step % config.display_interval == 0 or step == config.max_iterations:
            predictions = forecast_fn(display_frames[:, :config.input_length]).numpy()
            strip = image_strip(display_frames[0, config.input_length:], predictions[0])
            with writer.as_default(step=step):
                tf.summary.image("test/truth_over_prediction", strip)
        if step % config.test_interval == 0 or step == config.max_iterations:
            test = run_test_pass(forecast_fn, test_dataset, config)
            logging.info("test at step %d: per-frame MSE %.2f (persistence %.2f) over %d "
                         "sequences", step, test["mse"], test["persistence_mse"],
                         test["sequences"])
            _write_test_summaries(writer, step, test)
        if step % config.snapshot_interval == 0 or step == config.max_iterations:
            path = trainer.save()
            logging.info("Saved checkpoint %s", path)
        writer.flush()
    writer.close()
    if not test and start_step >= config.max_iterations:
        logging.info("Already at step %d >= --max_iterations=%d: nothing to train.",
                     start_step, config.max_iterations)
        test = run_test_pass(forecast_fn, test_dataset, config)
    return dict(test, step=step, train=results)
