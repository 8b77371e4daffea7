"""Scale-out: the ``tf.distribute`` strategy of a run, barriers and preemption handling.

``batch_size`` is the global batch whatever the replica count; each replica gets its slice
(see :mod:`predrnn_tf.training.trainer`). On multi-worker runs only the chief writes into
the work directory and ``PreemptionCheckpointHandler`` makes every worker checkpoint at the
same step when a SIGTERM/SIGINT arrives.
"""

from __future__ import annotations

import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.errors import ConfigError


class Preempted(Exception):
    """Raised by the PreemptionCheckpointHandler's exit function after its checkpoint."""


def is_multi_worker(config: Config) -> bool:
    """True for ``--distribution_strategy=multi_worker_mirrored``."""
    return config.distribution_strategy == "multi_worker_mirrored"


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
    if is_multi_worker(config):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def check_global_batch(config: Config, strategy: tf.distribute.Strategy) -> None:
    """Refuses a global batch that does not split evenly over the replicas."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--batch_size={config.batch_size} (the global batch) must be a "
                          f"multiple of the {replicas} replicas")


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Waits until every replica of every worker gets here (an all-reduce of ones)."""
    ones = strategy.run(lambda: tf.constant(1.0))
    strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)


def make_preemption_handler(strategy: tf.distribute.Strategy, manager, save_fn,
                            is_requested):
    """PreemptionCheckpointHandler: all workers agree on a step, checkpoint, then return.

    Args:
      strategy: the multi-worker strategy.
      manager: the run's CheckpointManager.
      save_fn: writes the checkpoint (``Trainer.save``).
      is_requested: returns True once a SIGTERM/SIGINT arrived; feeds the handler's
        termination watcher.

    The handler's exit function raises :class:`Preempted`, so that training returns
    normally (exit status 0).
    """
    def exit_fn():
        raise Preempted()

    termination = tf.distribute.experimental.TerminationConfig(
        termination_watcher_fn=is_requested, exit_fn=exit_fn, save_fn=save_fn)
    return tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver, manager, termination_config=termination)
