"""Training: ``train_and_evaluate(config, workdir)``, the library behind ``predrnn_tf.train``.

One frame's path: ``data.reader`` streams TFRecord sequences as ``[B, T, H, W, C]`` batches
in [0, 1]; :mod:`~predrnn_tf.training.trainer` holds the model, the optimizer and the
checkpoint, and :mod:`~predrnn_tf.training.train_step` turns a batch and the sampling
probabilities of :mod:`~predrnn_tf.training.schedules` into one optimizer update; this
module runs the steps, the test passes (:mod:`~predrnn_tf.training.test_pass`, the same
numbers as ``evaluate``), the reports (:mod:`~predrnn_tf.training.reporting`) and the
checkpoints (layout: :mod:`predrnn_tf.checkpoints`). The work directory (its config, data
card and checkpoints) is read and written through :mod:`predrnn_tf.workdir`; it is restored
if it holds a checkpoint, so running the same command again resumes where it stopped.

Fault tolerance (:mod:`~predrnn_tf.training.fault_tolerance`): a lock on the work directory,
SIGTERM/SIGINT finish the step and checkpoint (through ``PreemptionCheckpointHandler`` on
multi-worker runs, see :mod:`~predrnn_tf.training.distribution`), non-finite losses never
reach a checkpoint, and ``WORKDIR/losses.jsonl`` holds the loss trajectory of the kept run.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import tensorflow as tf
from absl import logging

from predrnn_tf import checkpoints
from predrnn_tf.config import Config, changed_model_fields, validate_config
from predrnn_tf.data import mixing, scale_out
from predrnn_tf.data.sources import check_data_source, planned_metadata, prepare_data
from predrnn_tf.errors import ConfigError, DataError, NonFiniteLossError, WorkdirError
from predrnn_tf.models.forecasting import make_forecast_function
from predrnn_tf.training import data_checks, distribution, fault_tolerance, reporting
from predrnn_tf.training.distribution import make_strategy
from predrnn_tf.training.schedules import sampling_probabilities
from predrnn_tf.training.test_pass import (
    BaselineCache,
    make_test_baselines,
    make_test_dataset,
    run_test_pass,
)
from predrnn_tf.training.trainer import Trainer, ensemble_grid, make_optimizer
from predrnn_tf.workdir import WorkDir, describe, make_card, step_of

__all__ = ["ConfigError", "NonFiniteLossError", "Trainer", "WorkdirError", "check_resume",
           "make_optimizer", "make_strategy", "run_test_pass", "train_and_evaluate"]


def check_resume(config: Config, workdir: str) -> str | None:
    """Refuses to resume a workdir with flags that change the model's weights.

    Returns:
      The checkpoint the run will resume from (the newest intact one), or None.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f"--workdir={workdir} is a file, not a folder")
    work = WorkDir(workdir)
    path = work.resumable_checkpoint()
    if not work.has_config() or path is None:
        return path
    saved = work.config
    changed = changed_model_fields(saved, config)
    if changed:
        name = changed[0]
        saved_value = getattr(saved, name)
        shown = ",".join(map(str, saved_value)) if isinstance(saved_value, tuple) else saved_value
        raise ConfigError(f"--{name}={getattr(config, name)} differs from the checkpoint's "
                          f"{name}={saved_value} in {workdir}: pass --{name}={shown} to resume "
                          f"it, or another --workdir to train this model")
    return path


def _log_start(workdir: str, resume_from: str | None) -> None:
    """One line: the absolute work directory and whether this is a new run or a resume."""
    where = os.path.abspath(workdir)
    if resume_from is None:
        logging.info("Work directory %s: starting a new run.", where)
    else:
        logging.info("Work directory %s: resuming from step %d (%s).", where,
                     step_of(resume_from), os.path.basename(resume_from))


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
    multi_worker = distribution.is_multi_worker(config)
    is_chief = fault_tolerance.cluster_task()[2] if multi_worker else True
    # Every input is checked before anything is created: a bad flag, --data_dir or workdir
    # leaves no work directory and no .lock behind.
    resume_from = check_resume(config, workdir)
    data_dir, generate = check_data_source(config, workdir)
    ensemble_grid(config, planned_metadata(config, data_dir, generate))  # --ensemble_loss
    _log_start(workdir, resume_from)
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
    # Again under the lock: another run may have written the workdir meanwhile.
    resume_from = check_resume(config, workdir)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    data_dir, metadata = prepare_data(config, workdir, is_chief)
    if resume_from:  # a model trained on other units cannot continue on these
        WorkDir(workdir).check_data_agrees(metadata, config.dataset_name)
    strategy = make_strategy(config)
    shutdown.reinstall()
    distribution.check_global_batch(config, strategy)
    trainer = Trainer(config, workdir, strategy, is_chief=is_chief,
                      grid=ensemble_grid(config, metadata))
    if is_chief:
        fault_tolerance.check_workdir_writable(workdir, 2 * trainer.checkpoint_bytes())
    try:
        start_step = _restore(trainer, data_dir)
        if is_chief:
            WorkDir(workdir).save_config(config)
            _record_units(config, workdir, metadata)
        return _train_loop(_make_run(trainer, data_dir, metadata, start_step, shutdown),
                           start_step)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError,
            tf.errors.NotFoundError) as error:
        named = data_checks.name_corrupt_shard(error, data_dir, config)
        if named is error:
            raise
        raise DataError(f"{named}{_checkpoint_before_stopping(trainer)}") from error
    finally:
        trainer.close()


def _checkpoint_before_stopping(trainer: Trainer) -> str:
    """Saves the steps trained since the last checkpoint; the clause saying so (or why not)."""
    if not trainer.is_chief:
        return ""
    step, latest = int(trainer.step.numpy()), trainer.manager.latest_checkpoint
    if latest and checkpoints.checkpoint_step(latest) >= step or not latest and step == 0:
        return f"; the last checkpoint is {latest}" if latest else ""
    try:
        path = trainer.save()
    except (WorkdirError, NonFiniteLossError) as error:
        return f"; the steps since {latest or 'step 0'} are lost ({error})"
    return f"; saved checkpoint {path} at step {step}: run the same command to resume"


def _record_units(config: Config, workdir: str, metadata: dict[str, Any]) -> None:
    """Writes ``WORKDIR/data_card.json`` (unit, transform, km/pixel, interval) and logs it."""
    sources = dict(mixing.parse_sources(config.dataset_name))
    wet_sampling = scale_out.card_entry(scale_out.options_from_config(config), metadata)
    path = WorkDir(workdir).write_data_card(metadata, config.dataset_name, sources,
                                            wet_sampling)
    logging.info("Data units: %s (recorded in %s).",
                 describe(make_card(metadata, config.dataset_name)), path)


def _restore(trainer: Trainer, data_dir: str) -> int:
    """Builds iterator and checkpoint, restores, tidies the workdir; returns the start step."""
    config = trainer.config
    if trainer.checkpoints_iterator:
        trainer.make_train_iterator(data_dir)
    trainer.make_checkpoint()
    start_step = trainer.restore_or_initialize()
    if not trainer.checkpoints_iterator:
        if config.deterministic:  # replay the seeded order up to the resumed step
            trainer.make_train_iterator(data_dir, skip_steps=start_step)
        else:  # a fresh order: no re-reading of the first steps' sequences
            trainer.make_train_iterator(data_dir, resumed_step=start_step)
    if trainer.is_chief:
        removed = fault_tolerance.remove_stray_files(trainer.workdir, checkpoints.CHECKPOINT_SUBDIR)
        for path in removed:
            logging.info("Removed %s (left by an interrupted run).", path)
        fault_tolerance.LossLog(trainer.workdir).truncate_after(start_step)
    return start_step


@dataclasses.dataclass
class _Run:
    """Everything the loop needs besides the step counter."""

    config: Config
    trainer: Trainer
    shutdown: fault_tolerance.ShutdownRequest
    writer: Any
    test_dataset: tf.data.Dataset
    display_frames: Any
    forecast_fn: Any
    train_step: Any
    progress: reporting.ProgressLogger
    loss_log: fault_tolerance.LossLog
    handler: Any = None
    baselines: BaselineCache | None = None  # the chief's: computed once, reused every pass

    def due(self, step: int, interval: int) -> bool:
        return step % interval == 0 or step == self.config.max_iterations


def _make_run(trainer: Trainer, data_dir: str, metadata: dict[str, Any], start_step: int,
              shutdown: fault_tolerance.ShutdownRequest) -> _Run:
    config = trainer.config
    writer = reporting.make_writer(trainer.workdir, trainer.is_chief)
    if config.skip_corrupt:
        data_checks.count_skipped_records(config, data_dir, writer, start_step)
    test_dataset = make_test_dataset(config, data_dir)
    display_frames = baseline_cache = None
    if trainer.is_chief:
        baseline_cache = BaselineCache(make_test_baselines(config, metadata))
        first = next(iter(test_dataset.take(1)), None)
        if first is None:
            raise DataError(f"the test split of {config.dataset_name!r} in {data_dir} yielded "
                            f"no sequence (every record skipped or unreadable)")
        display_frames = first.numpy()[:1]
    handler = None
    if distribution.is_multi_worker(config):
        handler = distribution.make_preemption_handler(
            trainer.strategy, trainer.manager, trainer.save, lambda: shutdown.requested)
    return _Run(config, trainer, shutdown, writer, test_dataset, display_frames,
                make_forecast_function(trainer.model), trainer.make_train_step(),
                reporting.ProgressLogger(start_step, config.max_iterations, writer),
                fault_tolerance.LossLog(trainer.workdir), handler, baseline_cache)


def _train_loop(run: _Run, start_step: int) -> dict[str, Any]:
    config, trainer = run.config, run.trainer
    results: dict[str, Any] = {}
    test: dict[str, Any] = {}
    step = start_step
    while step < config.max_iterations:
        probabilities = sampling_probabilities(config, step)
        arguments = (trainer.train_iterator, tf.constant(probabilities[0], tf.float32),
                     tf.constant(probabilities[1], tf.float32))
        try:
            outputs = run.handler.run(run.train_step, *arguments) if run.handler else \
                run.train_step(*arguments)
        except distribution.Preempted:
            logging.info("Received %s: all workers saved a checkpoint at step %d; exiting. "
                         "Run the same command again to resume.", run.shutdown.signal_name, step)
            return {"step": step, "interrupted": run.shutdown.signal_name, "train": results}
        step += 1
        results = {key: float(value) for key, value in outputs.items()}
        _check_finite(run, step, results)
        _report(run, step, results, probabilities)
        if run.due(step, config.snapshot_interval):  # before the test pass: a failing test
            path = trainer.save()                     # pass never costs the step's work
            if path:
                logging.info("Saved checkpoint %s", path)
        test = _test_if_due(run, step) or test
        run.writer.flush()
        if run.shutdown.requested and run.handler is None:
            return _stop_for_signal(run, step, results)
    return _finish(run, start_step, step, results, test)


def _check_finite(run: _Run, step: int, results: dict[str, float]) -> None:
    """Stops on a non-finite loss (``nan_policy="stop"``) or warns that it was skipped."""
    if results["finite"] >= 1.0 and math.isfinite(results["loss"]):
        return
    if run.config.nan_policy == "stop":
        raise NonFiniteLossError(
            f"non-finite loss {results['loss']} at step {step}; the last checkpoint "
            f"({run.trainer.manager.latest_checkpoint}) is untouched (try a lower --lr, "
            f"--gradient_clip_norm or --nan_policy=skip_step)")
    logging.warning("Non-finite loss at step %d: update skipped.", step)


def _report(run: _Run, step: int, results: dict[str, float],
             probabilities: tuple[float, float]) -> None:
    """Progress line, loss log and image strip when due."""
    config, is_chief = run.config, run.trainer.is_chief
    if run.due(step, config.log_every):
        run.progress.log(step, results, probabilities, config.lr)
        if is_chief:
            run.loss_log.append(step, results)
    if is_chief and run.due(step, config.display_interval):
        reporting.write_image_strip(run.writer, step, run.display_frames, run.forecast_fn,
                                    config.input_length)


def _test_if_due(run: _Run, step: int) -> dict[str, Any] | None:
    """The test pass when due (chief only); returns its metrics."""
    config = run.config
    if not (run.trainer.is_chief and run.due(step, config.test_interval)):
        return None
    test = run_test_pass(run.forecast_fn, run.test_dataset, config, run.baselines)
    reporting.log_test_pass(step, test)
    reporting.write_test_summaries(run.writer, step, test)
    return test


def _stop_for_signal(run: _Run, step: int, results: dict[str, float]) -> dict[str, Any]:
    """After a SIGTERM/SIGINT: makes sure step ``step`` is checkpointed, then returns."""
    path = run.trainer.manager.latest_checkpoint
    if not path or not path.endswith(f"-{step}"):
        path = run.trainer.save()
    logging.info("Received %s: finished step %d and saved checkpoint %s; exiting. Run the "
                 "same command again to resume.", run.shutdown.signal_name, step, path)
    run.writer.close()
    return {"step": step, "interrupted": run.shutdown.signal_name, "train": results}


def _finish(run: _Run, start_step: int, step: int, results: dict[str, float],
            test: dict[str, Any]) -> dict[str, Any]:
    """The result of a completed run (a test pass if none ran because nothing was left)."""
    config = run.config
    run.writer.close()
    if distribution.is_multi_worker(config):
        distribution.barrier(run.trainer.strategy)  # no worker leaves while the chief tests
    if not test and start_step >= config.max_iterations and run.trainer.is_chief:
        logging.info("Already at step %d >= --max_iterations=%d: nothing to train.",
                     start_step, config.max_iterations)
        test = run_test_pass(run.forecast_fn, run.test_dataset, config, run.baselines)
    return dict(test, step=step, train=results)
