"""The compiled train step: one batch in, one optimizer update (per pass) out.

``make_train_step(trainer)`` returns a ``tf.function`` ``(iterator, encoder p, decoder p)
-> {"loss", "frame_loss_per_pixel", "decouple_loss", "finite"}`` that reads the next batch,
draws the global Bernoulli mask (:func:`predrnn_tf.training.schedules.draw_mask`) and, with
``--ensemble_loss=fair_crps``, the members' motion draws (:meth:`Trainer.motion_draws`), runs
:meth:`Trainer.replica_loss` and the update on every replica, sums the replica results and
adds one to the step. With ``nan_policy="skip_step"`` a non-finite loss or gradient on any
replica skips the update everywhere.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from predrnn_tf.training.schedules import draw_mask


def all_finite(tensors) -> tf.Tensor:
    """True if no value of ``tensors`` (None entries ignored) is NaN or infinite."""
    checks = [tf.reduce_all(tf.math.is_finite(tensor)) for tensor in tensors if tensor is not None]
    return tf.reduce_all(tf.stack(checks))


def _apply(optimizer, gradients, variables) -> None:
    optimizer.apply_gradients(zip(gradients, variables))


def _apply_if_finite(strategy, finite, gradients, variables, optimizer) -> None:
    """Cross-replica context: applies the replicas' updates only if ``finite``.

    ``apply_gradients`` does a ``merge_call``, which a ``tf.cond`` in a replica context
    must not contain, so the condition is evaluated here (as Keras' LossScaleOptimizer
    does). Every replica holds the same all-reduced ``finite``.
    """
    finite = strategy.experimental_local_results(finite)[0]

    def apply():
        strategy.extended.call_for_each_replica(_apply, args=(optimizer, gradients, variables))

    tf.cond(finite, apply, lambda: None)


def _update(trainer, frames, mask, draws):
    """Loss, gradients and the update on one replica; returns the losses and finiteness."""
    optimizer = trainer.optimizer
    variables = trainer.model.trainable_variables
    scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    with tf.GradientTape() as tape:
        loss, per_pixel, decouple = trainer.replica_loss(frames, mask, draws)
        scaled = optimizer.scale_loss(loss) if scales_loss else loss
    gradients = tape.gradient(scaled, variables)
    context = tf.distribute.get_replica_context()
    finite = tf.math.is_finite(loss)
    if not scales_loss:  # the LossScaleOptimizer checks (and skips) its gradients itself
        finite = tf.logical_and(finite, all_finite(gradients))
    bad_replicas = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                      1.0 - tf.cast(finite, tf.float32))
    finite = bad_replicas < 0.5
    if trainer.config.nan_policy == "skip_step":
        apply_if_finite = functools.partial(_apply_if_finite, optimizer=optimizer)
        context.merge_call(apply_if_finite, args=(finite, gradients, variables))
    else:
        _apply(optimizer, gradients, variables)
    return loss, per_pixel, decouple, tf.cast(finite, tf.float32)


def _replica_step(trainer, frames, mask, draws):
    context = tf.distribute.get_replica_context()
    local = tf.shape(frames)[0]
    start = context.replica_id_in_sync_group * local
    mask = mask[start:start + local]  # this replica's rows of the global mask
    draws = draws[start * trainer.members:(start + local) * trainer.members]  # its members'
    passes = [frames]
    if trainer.config.reverse_input:
        passes.append(tf.reverse(frames, axis=[1]))
    totals = [0.0, 0.0, 0.0]
    finite = 1.0
    for inputs in passes:
        loss, per_pixel, decouple, ok = _update(trainer, inputs, mask, draws)
        totals = [total + value for total, value in zip(totals, (loss, per_pixel, decouple))]
        finite = finite * ok
    count = float(len(passes))
    return {"loss": totals[0] / count, "frame_loss_per_pixel": totals[1] / count,
            "decouple_loss": totals[2] / count,
            "finite": finite / trainer.strategy.num_replicas_in_sync}


def make_train_step(trainer):
    """The compiled train step of ``trainer``: (iterator, encoder p, decoder p) -> metrics."""
    config = trainer.config
    strategy = trainer.strategy

    def train_step(iterator, encoder_probability, decoder_probability):
        frames = next(iterator)
        mask = draw_mask(trainer.generator, trainer.global_batch, encoder_probability,
                         decoder_probability, config)
        draws = trainer.motion_draws()  # [B*M, 2] (--ensemble_loss), else [0, 2]
        results = strategy.run(functools.partial(_replica_step, trainer),
                               args=(frames, mask, draws))
        results = {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                   for key, value in results.items()}
        trainer.step.assign_add(1)
        return results

    return tf.function(train_step, jit_compile=config.jit_compile or None,
                       reduce_retracing=True)
