import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.models import advection

SIZE = 48


def _blobs(center_y, center_x):
    rows, columns = np.mgrid[:SIZE, :SIZE]
    def blob(y, x, width):
        return np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / (2 * width ** 2))
    return blob(center_y, center_x, 4.0) + 0.6 * blob(center_y + 8, center_x - 6, 2.5)


def _moving_sequence(velocity, steps=5, start=(16.0, 28.0)):
    frames = [_blobs(start[0] + velocity[0] * t, start[1] + velocity[1] * t)
              for t in range(steps)]
    return np.stack(frames)[None, ..., None].astype(np.float32)  # [1, T, H, W, 1]


@pytest.mark.parametrize("velocity", [(3.0, -2.0), (0.0, 5.0), (-1.5, 0.5)])
def test_motion_of_a_translated_pattern_is_its_velocity(velocity):
    motion = advection.estimate_motion(tf.constant(_moving_sequence(velocity))).numpy()
    assert motion.shape == (1, SIZE, SIZE, 2)
    np.testing.assert_allclose(motion[0, 20, 24], velocity, atol=0.25)


def test_no_structure_no_motion():
    motion = advection.estimate_motion(tf.zeros([2, 4, SIZE, SIZE, 1])).numpy()
    np.testing.assert_allclose(motion, 0.0, atol=1e-6)
    single = advection.estimate_motion(tf.ones([2, 1, SIZE, SIZE, 1])).numpy()
    np.testing.assert_array_equal(single, 0.0)  # one frame: no pair to match


def test_advection_moves_the_frame_and_beats_persistence():
    velocity = (3.0, -2.0)
    sequence = _moving_sequence(velocity, steps=6)
    inputs, truth = sequence[:, :5], sequence[:, 5]
    motion = advection.estimate_motion(tf.constant(inputs))
    advected = advection.advect_frame(tf.constant(inputs[:, -1]), motion).numpy()
    assert np.abs(advected - truth).max() < 0.1 * np.abs(inputs[:, -1] - truth).max()


def test_integer_motion_is_an_exact_shift_and_keeps_dtype():
    frame = tf.constant(np.random.default_rng(0).random((2, 10, 12, 3)), tf.bfloat16)
    motion = tf.constant(np.broadcast_to([1.0, 2.0], (2, 10, 12, 2)), tf.float32)
    advected = advection.advect_frame(frame, motion)
    assert advected.dtype == tf.bfloat16
    np.testing.assert_array_equal(advected.numpy()[:, 1:, 2:], frame.numpy()[:, :-1, :-2])
    np.testing.assert_array_equal(advected.numpy()[:, 0, 2:], frame.numpy()[:, 0, :-2])  # edge


def test_advection_is_differentiable_in_the_frame():
    frame = tf.Variable(np.random.default_rng(1).random((1, 8, 8, 1)).astype(np.float32))
    motion = tf.fill([1, 8, 8, 2], 0.5)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(advection.advect_frame(frame, motion) ** 2)
    gradient = tape.gradient(total, frame)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0.0


def test_extrapolate_frames_advects_each_frame_once_more():
    inputs = _moving_sequence((2.0, 1.0), steps=4)
    forecast = advection.extrapolate_frames(tf.constant(inputs), 3).numpy()
    assert forecast.shape == (1, 3, SIZE, SIZE, 1) and forecast.dtype == np.float32
    motion = advection.estimate_motion(tf.constant(inputs))
    frame = tf.constant(inputs[:, -1])
    for step in range(3):
        frame = advection.advect_frame(frame, motion)
        np.testing.assert_array_equal(forecast[:, step], frame.numpy())
    truth = _moving_sequence((2.0, 1.0), steps=7)[:, 4:]
    persistence = np.repeat(inputs[:, -1:], 3, axis=1)
    assert np.abs(forecast - truth).mean() < 0.5 * np.abs(persistence - truth).mean()
