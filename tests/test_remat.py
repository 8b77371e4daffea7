"""--remat (tf.recompute_grad per time step) gives the same outputs and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.models.builder import build_model

TINY = dict(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=8, img_channel=1,
            input_length=3, total_length=6, batch_size=2)


def _losses_and_gradients(model, frames, mask):
    @tf.function
    def run():
        with tf.GradientTape() as tape:
            predictions, decouple = model(frames, mask, training=True)
            loss = tf.reduce_mean(tf.square(predictions - frames[:, 1:])) + 0.1 * decouple
        return loss, tape.gradient(loss, model.trainable_variables)

    loss, gradients = run()
    return float(loss), [gradient.numpy() for gradient in gradients]


@pytest.mark.parametrize("model_name,layer_norm", [("predrnn_v2", True),
                                                    ("predrnn_m_only", False),
                                                    ("convlstm", False)])
def test_remat_gradients_equal_the_plain_unroll(model_name, layer_norm):
    config = Config(model_name=model_name, layer_norm=layer_norm, **TINY)
    plain = build_model(config)
    remat = build_model(config.replace(remat=True))
    assert remat.remat and not plain.remat and remat.get_config()["remat"] is True
    remat.set_weights(plain.get_weights())
    rng = np.random.default_rng(0)
    frames = tf.constant(rng.random((2, 6, 8, 8, 1), dtype=np.float32))
    mask = tf.constant((rng.random((2, plain.mask_length)) < 0.5).astype(np.float32))
    plain_loss, plain_gradients = _losses_and_gradients(plain, frames, mask)
    remat_loss, remat_gradients = _losses_and_gradients(remat, frames, mask)
    assert remat_loss == pytest.approx(plain_loss, rel=1e-6)
    assert len(remat_gradients) == len(plain_gradients)
    for expected, got in zip(plain_gradients, remat_gradients):
        assert np.any(expected != 0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def _cast_ops(model, frames, mask, training):
    function = tf.function(lambda: model(frames, mask, training=training))
    graph = function.get_concrete_function().graph
    return sum(1 for op in graph.get_operations() if op.type == "Cast")


def test_mixed_precision_forecast_casts_kernels_once_with_the_same_outputs():
    config = Config(precision="mixed_bfloat16", **TINY)
    model = build_model(config)
    rng = np.random.default_rng(1)
    frames = tf.constant(rng.random((2, 6, 8, 8, 1), dtype=np.float32))
    mask = tf.constant((rng.random((2, model.mask_length)) < 0.5).astype(np.float32))
    once, _ = model(frames, mask, training=False)
    per_step, _ = model(frames, mask, training=None)
    np.testing.assert_array_equal(once.numpy(), per_step.numpy())
    steps, layers, convs = 5, 2, 5
    saved = (steps - 1) * layers * convs
    assert _cast_ops(model, frames, mask, None) - _cast_ops(model, frames, mask, False) == saved


def _peak_bytes_of_gradient(model, frames, mask) -> int:
    """TF CPU allocator peak of one traced loss + gradient call, minus the memory in use."""
    @tf.function
    def run():
        with tf.GradientTape() as tape:
            predictions, decouple = model(frames, mask, training=True)
            loss = tf.reduce_mean(tf.square(predictions - frames[:, 1:])) + 0.1 * decouple
        return tape.gradient(loss, model.trainable_variables)

    run()  # trace and optimise the graph first
    tf.config.experimental.reset_memory_stats("CPU:0")
    in_use = tf.config.experimental.get_memory_info("CPU:0")["current"]
    run()
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - in_use


def test_remat_keeps_less_than_half_the_training_memory():
    """Per-step activations are recomputed and the per-step weight gradients summed as the
    backward pass goes (not kept for one AddN), so the peak drops well below the plain one."""
    config = Config(num_hidden=(32, 32), filter_size=3, patch_size=2, img_width=128,
                    img_channel=1, input_length=6, total_length=16, batch_size=1)
    plain = build_model(config)
    remat = build_model(config.replace(remat=True))
    rng = np.random.default_rng(2)
    frames = tf.constant(rng.random((1, 16, 128, 128, 1), dtype=np.float32))
    mask = tf.constant((rng.random((1, plain.mask_length)) < 0.5).astype(np.float32))
    plain(frames, mask)
    remat(frames, mask)
    plain_bytes = _peak_bytes_of_gradient(plain, frames, mask)
    remat_bytes = _peak_bytes_of_gradient(remat, frames, mask)
    assert remat_bytes < plain_bytes / 2, (plain_bytes, remat_bytes)
