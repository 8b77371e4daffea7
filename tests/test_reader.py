"""data/reader.py: wet-sequence sampling, the validation split, tf.data service, object storage."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf.data import reader, scale_out, schema, wetness
from predrnn_tf.errors import ConfigError, DataError

SIZE, LENGTH = 8, 3


def write_dataset(folder: str, records: int = 40, per_shard: int = 10) -> None:
    """Half the train records dry (pixels 0, wet fraction 0), half wet (pixels 200, 0.5)."""
    for split in schema.SPLITS:
        with schema.ShardedWriter(folder, "toy", split, per_shard) as writer:
            for index in range(records):
                wet = index % 2 == 1
                frames = np.full((LENGTH, SIZE, SIZE, 1), 200 if wet else 0, np.uint8)
                writer.write(frames, f"{split}-{index}", 0.5 if wet else 0.0)
    schema.write_metadata(folder, "toy", {
        "image_height": SIZE, "image_width": SIZE, "channels": 1, "sequence_length": LENGTH,
        "num_train": records, "num_test": records})


def wet_share(dataset: tf.data.Dataset, batches: int) -> float:
    values = [float(tf.reduce_mean(tf.cast(batch[:, 0, 0, 0, 0] > 0, tf.float32)))
              for batch in dataset.take(batches)]
    return float(np.mean(values))


def test_wet_sampling_trains_on_rain(tmp_path):
    write_dataset(str(tmp_path))
    plain = reader.make_dataset(str(tmp_path), "toy", "train", 10, LENGTH, seed=1)
    wet = reader.make_dataset(str(tmp_path), "toy", "train", 10, LENGTH, seed=1,
                              scale=scale_out.ScaleOptions(wetness.WetSampling(0.05, 0.1)))
    assert 0.35 < wet_share(plain, 40) < 0.65
    # dry kept with 0.05, wet with 1 - exp(-5): about 95% of the drawn records are wet
    assert wet_share(wet, 40) > 0.88


def test_wet_sampling_is_seeded(tmp_path):
    write_dataset(str(tmp_path))
    rule = wetness.WetSampling(floor=0.3)

    def first_ids(seed):
        dataset = reader.make_dataset(str(tmp_path), "toy", "train", 5, LENGTH, seed=seed,
                                      deterministic=True, shuffle=False,
                                      scale=scale_out.ScaleOptions(wet_sampling=rule))
        return [batch.numpy().tobytes() for batch in dataset.take(4)]

    assert first_ids(3) == first_ids(3)


def test_records_without_a_wet_fraction_are_always_kept():
    serialized = schema.serialize_sequence(np.zeros((1, 2, 2, 1), np.uint8), "x")
    fraction = schema.parse_wet_fraction(tf.constant(serialized))
    assert float(fraction) == schema.UNKNOWN_WET_FRACTION
    assert float(wetness.weight_tf(fraction, wetness.WetSampling())) == 1.0


def test_weights_follow_the_stated_rule():
    rule = wetness.WetSampling(floor=0.05, scale=0.1)
    fractions = np.array([0.0, 0.1, 0.3, -1.0])
    expected = [0.05, 1 - np.exp(-1.0), 1 - np.exp(-3.0), 1.0]
    np.testing.assert_allclose(wetness.weight(fractions, rule), expected)
    np.testing.assert_allclose(wetness.weight_tf(tf.constant(fractions, tf.float32), rule),
                               expected, rtol=1e-6)


def test_validation_split_holds_out_the_last_train_shards(tmp_path):
    write_dataset(str(tmp_path))
    train = scale_out.split_shards(str(tmp_path), "toy", "train", 0.25)
    validation = scale_out.split_shards(str(tmp_path), "toy", scale_out.VALIDATION, 0.25)
    everything = schema.shard_paths(str(tmp_path), "toy", "train")
    assert train + validation == everything and len(validation) == 1
    dataset = reader.make_dataset(str(tmp_path), "toy", scale_out.VALIDATION, 10, LENGTH,
                                  shuffle=False, repeat=False,
                                  scale=scale_out.ScaleOptions(validation_fraction=0.25))
    assert sum(int(batch.shape[0]) for batch in dataset) == 10
    with pytest.raises(DataError, match="leaves no train shard"):
        scale_out.split_shards(str(tmp_path), "toy", "train", 0.9)


def test_shards_on_object_storage_through_gfile():
    folder = "ram://predrnn_reader_test/data"
    tf.io.gfile.makedirs(folder)
    write_dataset_to(folder)
    assert len(schema.shard_paths(folder, "toy", "train")) == 4
    dataset = reader.make_dataset(folder, "toy", "train", 10, LENGTH, repeat=False)
    assert sum(int(batch.shape[0]) for batch in dataset) == 40


def write_dataset_to(folder: str) -> None:
    """The toy dataset written through tf.io.gfile (the converters write local files)."""
    for split in schema.SPLITS:
        for shard in range(4):
            path = f"{folder}/{schema.shard_filename('toy', split, shard, 4)}"
            with tf.io.TFRecordWriter(path) as writer:
                for index in range(10):
                    frames = np.full((LENGTH, SIZE, SIZE, 1), index, np.uint8)
                    writer.write(schema.serialize_sequence(frames, str(index), 0.0))
    with tf.io.gfile.GFile(schema.metadata_path(folder, "toy"), "w") as handle:
        handle.write('{"image_height": 8, "image_width": 8, "channels": 1, '
                     '"sequence_length": 3, "num_train": 40, "num_test": 40}')
    assert schema.read_metadata(folder, "toy")["num_train"] == 40


def test_tf_data_service_serves_the_pipeline(tmp_path):
    write_dataset(str(tmp_path))
    dispatcher = tf.data.experimental.service.DispatchServer(
        tf.data.experimental.service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    worker = tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(dispatcher_address=address,
                                                  worker_address="127.0.0.1:%port%"))
    service = scale_out.ScaleOptions(data_service=dispatcher.target, data_service_job="train")
    dataset = reader.make_dataset(str(tmp_path), "toy", "train", 4, LENGTH, scale=service)
    batch = next(iter(dataset))
    assert batch.shape == (4, LENGTH, SIZE, SIZE, 1)
    assert worker is not None
    with pytest.raises(ConfigError, match="grpc://"):
        scale_out.use_data_service(dataset, "http://x:1")


@pytest.mark.parametrize("per_shard, workers", [(10, 2), (10, 3), (40, 2), (20, 3)])
def test_each_worker_reads_its_own_records(tmp_path, per_shard, workers):
    """The sharding the multi-worker strategy asks for (one InputContext per worker): by file
    with at least as many shards as workers, else by record; together every record once."""
    with schema.ShardedWriter(str(tmp_path), "ids", "train", per_shard) as writer:
        for index in range(40):
            writer.write(np.full((LENGTH, SIZE, SIZE, 1), index, np.uint8), str(index))
    schema.write_metadata(str(tmp_path), "ids", {
        "image_height": SIZE, "image_width": SIZE, "channels": 1, "sequence_length": LENGTH,
        "num_train": 40, "num_test": 0})
    seen = []
    for worker in range(workers):
        context = tf.distribute.InputContext(num_input_pipelines=workers,
                                             input_pipeline_id=worker,
                                             num_replicas_in_sync=workers)
        dataset = reader.make_dataset(str(tmp_path), "ids", "train", 1, LENGTH, shuffle=True,
                                      repeat=False, seed=7, input_context=context)
        seen.append({round(float(batch[0, 0, 0, 0, 0]) * 255) for batch in dataset})
    assert all(seen)  # every worker gets records
    assert sum(len(ids) for ids in seen) == 40 and set().union(*seen) == set(range(40))
