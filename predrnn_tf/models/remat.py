"""Per-step recomputation (``--remat``) of the unroll, with the weight gradients summed as it goes.

:func:`remat_step` wraps one time step of the whole stack in ``tf.recompute_grad``;
:func:`gradient_chain` links the steps' weight tensors so that the backward pass adds each
weight's gradient step by step instead of keeping every step's gradient until the end.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _data_one(values) -> tf.Tensor:
    """Exactly 1.0, computed from ``values`` so that no graph optimiser can fold it."""
    first = tf.cast(tf.reduce_max(tf.reshape(values, [-1])[:1]), tf.bool)
    return tf.where(tf.equal(first, first), tf.ones([], values.dtype), values.dtype.max)


@tf.custom_gradient
def gradient_chain(weight):
    """Identity; its gradient (times an unfoldable exact 1.0) ends one chain link.

    The remat unroll hands each step its own link of a chain of the weights, so the tape
    sums a weight's gradient step by step (one add of two per link) instead of keeping all
    ``T - 1`` per-step weight gradients for one ``AddN`` at the end (about 1.7 GB for the
    paper model). The multiply stops grappler from merging the adds back into that AddN.
    """
    def gradient(upstream):
        return upstream * _data_one(upstream)

    return tf.identity(weight), gradient


def remat_step(flat_step, variables):
    """``(recomputed step, weight tensors)``: ``flat_step(net, *state)`` under
    ``tf.recompute_grad`` with every weight passed in as a tensor (read once here, mapped
    onto its variable by a ``keras.StatelessScope``), so the step's weight gradients are
    ordinary input gradients that :func:`gradient_chain` can sum as the backward pass goes.
    """
    variables = list(variables)
    if not variables:
        return tf.recompute_grad(flat_step), []
    with keras.src.backend.AutocastScope(None):  # the stored dtype; layers cast per step
        weights = [tf.convert_to_tensor(variable.value) for variable in variables]

    def step(net, *tensors):
        state, step_weights = tensors[:-len(variables)], tensors[-len(variables):]
        with keras.StatelessScope(state_mapping=list(zip(variables, step_weights))):
            return flat_step(net, *state)

    return tf.recompute_grad(step), weights
