"""Random time reversal of training sequences (--augment_time_reversal), in tf.data only."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.config import Config
from predrnn_tf.data import augmentation, reader, schema
from predrnn_tf.training import test_pass, trainer

LENGTH, SIZE = 5, 8


def write_ramp_dataset(folder: str, name: str = "ramp", count: int = 16, size: int = SIZE):
    """Sequences whose frame k is filled with 10 * (k + 1): the time order is readable."""
    ramp = np.arange(1, LENGTH + 1, dtype=np.uint8)[:, None, None, None] * 10
    frames = np.broadcast_to(ramp, (LENGTH, size, size, 1)).copy()
    for split, records in (("train", count), ("test", 4)):
        with schema.ShardedWriter(folder, name, split) as writer:
            for _ in range(records):
                writer.write(frames)
    schema.write_metadata(folder, name, {
        "image_height": size, "image_width": size, "channels": 1, "sequence_length": LENGTH,
        "num_train": count, "num_test": 4})


def time_orders(batches) -> list[str]:
    """"forward" or "backward" per sequence, from the per-frame constant values."""
    orders = []
    for batch in batches:
        values = np.asarray(batch)[:, :, 0, 0, 0] * 255.0  # [B, T]
        for sequence in np.round(values).astype(int):
            forward = np.arange(1, LENGTH + 1) * 10
            if np.array_equal(sequence, forward):
                orders.append("forward")
            elif np.array_equal(sequence, forward[::-1]):
                orders.append("backward")
            else:
                orders.append(f"neither: {sequence}")
    return orders


def test_reverse_time_at_random_plays_half_the_sequences_backwards():
    frames = tf.reshape(tf.range(LENGTH * 2 * 2, dtype=tf.int32), [LENGTH, 2, 2, 1])
    tf.random.set_seed(1)
    backwards = 0
    for _ in range(200):
        out = augmentation.reverse_time_at_random(frames).numpy()
        if np.array_equal(out, frames.numpy()[::-1]):
            backwards += 1
        else:
            np.testing.assert_array_equal(out, frames.numpy())  # else untouched
    assert 70 <= backwards <= 130  # p = 0.5: 100 +- 3.5 standard deviations


def test_frame_transform_composes_reversal_with_the_spatial_augmentation():
    frames = tf.reshape(tf.range(LENGTH * 6 * 6, dtype=tf.int32), [LENGTH, 6, 6, 1])
    assert augmentation.make_frame_transform((6, 6, 1), 6, False) is None
    alone = augmentation.make_frame_transform((6, 6, 1), 6, False, time_reversal=True)
    assert alone is augmentation.reverse_time_at_random
    both = augmentation.make_frame_transform((6, 6, 1), 4, True, time_reversal=True)
    tf.random.set_seed(2)
    seen_orders = set()
    for _ in range(40):
        out = both(frames).numpy()
        assert out.shape == (LENGTH, 4, 4, 1)
        # Frame k holds values from [36k, 36k + 36): the time order survives rotation/crop.
        seen_orders.add(tuple(out[:, 0, 0, 0] // 36))
    assert seen_orders == {(0, 1, 2, 3, 4), (4, 3, 2, 1, 0)}


def test_training_stream_reverses_half_and_the_test_streams_never(tmp_path):
    folder = str(tmp_path)
    write_ramp_dataset(folder)
    tf.random.set_seed(3)
    train = reader.make_dataset(folder, "ramp", "train", 8, LENGTH, seed=3, frame_size=SIZE,
                                augment_time_reversal=True)
    orders = time_orders(train.take(25))
    assert set(orders) == {"forward", "backward"}
    assert 0.35 < orders.count("backward") / len(orders) < 0.65
    plain = reader.make_dataset(folder, "ramp", "train", 8, LENGTH, seed=3, frame_size=SIZE)
    assert set(time_orders(plain.take(5))) == {"forward"}
    config = Config(num_hidden=(4,), model_name="convlstm", filter_size=3, patch_size=2,
                    img_width=SIZE, input_length=2, total_length=LENGTH, batch_size=2,
                    dataset_name="ramp", augment=True, augment_time_reversal=True)
    test_orders = time_orders(test_pass.make_test_dataset(config, folder))
    assert test_orders == ["forward"] * 4


@pytest.mark.parametrize("reversal", [False, True])
def test_the_trainer_wires_the_flag_into_its_training_stream(tmp_path, reversal):
    write_ramp_dataset(str(tmp_path), size=16)
    config = Config(num_hidden=(4,), model_name="convlstm", filter_size=3, patch_size=2,
                    img_width=16, input_length=2, total_length=LENGTH, batch_size=8,
                    dataset_name="ramp", augment_time_reversal=reversal, seed=4)
    augmenting_trainer = trainer.Trainer(config, str(tmp_path / "run"),
                                         tf.distribute.get_strategy())
    iterator = augmenting_trainer.make_train_iterator(str(tmp_path))
    orders = time_orders(next(iterator) for _ in range(6))
    assert ("backward" in orders) == reversal
    assert "forward" in orders
