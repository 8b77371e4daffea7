import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.models.patches import patch_frames, unpatch_frames


@pytest.mark.parametrize("patch_size,channels", [(1, 1), (2, 3), (4, 1)])
def test_round_trip_is_exact(patch_size, channels):
    frames = np.random.default_rng(0).random((2, 3, 8, 12, channels)).astype(np.float32)
    patches = patch_frames(tf.constant(frames), patch_size)
    assert tuple(patches.shape) == (2, 3, 8 // patch_size, 12 // patch_size,
                                    patch_size * patch_size * channels)
    np.testing.assert_array_equal(unpatch_frames(patches, patch_size).numpy(), frames)


def test_channel_index_layout():
    p, channels = 4, 2
    frames = np.random.default_rng(1).random((1, 1, 8, 8, channels)).astype(np.float32)
    patches = patch_frames(tf.constant(frames), p).numpy()
    for hp, wp, pi, pj, c in [(0, 0, 0, 0, 0), (1, 0, 3, 2, 1), (0, 1, 1, 3, 0), (1, 1, 2, 1, 1)]:
        assert patches[0, 0, hp, wp, (pi * p + pj) * channels + c] == \
            frames[0, 0, hp * p + pi, wp * p + pj, c]


def test_dynamic_spatial_size_in_graph():
    fn = tf.function(lambda x: unpatch_frames(patch_frames(x, 2), 2),
                     input_signature=[tf.TensorSpec([None, 3, None, None, 1], tf.float32)])
    frames = np.random.default_rng(2).random((1, 3, 6, 10, 1)).astype(np.float32)
    np.testing.assert_array_equal(fn(frames).numpy(), frames)
