"""A work directory records what its model's pixels mean: WORKDIR/data_card.json."""

import json
import os

import pytest

from predrnn_tf import units
from predrnn_tf.config import Config
from predrnn_tf.data import schema, synthetic_radar, units_record
from predrnn_tf.errors import DataError

RAIN = {"name": "fmi", "image_height": 80, "image_width": 80, "channels": 1,
        "value_mapping": units.rain_rate_mapping(),
        "grid": {"pixel_km": 2.0, "interval_minutes": 10, "source_timestep_minutes": 5}}


def test_the_card_names_unit_transform_grid_spacing_and_interval():
    card = units_record.make_card(RAIN, "fmi")
    assert (card["unit"], card["transform"], card["pixel_km"], card["interval_minutes"]) == \
        ("mm/h", "dBR", 2.0, 10)
    assert card["value_mapping"] == units.rain_rate_mapping()
    assert card["sources"] == {"fmi": 1.0}
    assert units_record.describe(card) == "mm/h (dBR), 2 km/pixel, 10 min/frame"
    plain = units_record.make_card({"value_mapping": None}, "mnist")
    assert plain["unit"] is None and plain["pixel_km"] is None
    assert units_record.describe(plain).startswith("[0, 1] pixels")


def test_the_mixture_weights_come_from_the_dataset_name_not_the_metadata():
    # make_moving_mnist writes a provenance text under "sources"
    mnist = {"name": "mnist", "sources": "MNIST IDX t10k-images-idx3-ubyte.gz split 8000"}
    assert units_record.make_card(mnist, "mnist")["sources"] == {"mnist": 1.0}
    assert units_record.make_card(RAIN, "fmi,knmi:2")["sources"] == {"fmi": 1.0, "knmi": 2.0}


def test_the_card_is_written_atomically_and_read_back(tmp_path):
    path = units_record.write_card(str(tmp_path), RAIN, "fmi")
    assert os.listdir(tmp_path) == [units_record.CARD_FILENAME]  # no temporary file left
    assert json.load(open(path)) == units_record.read_card(str(tmp_path))
    assert units_record.read_value_mapping(str(tmp_path)) == units.rain_rate_mapping()
    assert units_record.read_card(str(tmp_path / "absent")) is None
    (tmp_path / units_record.CARD_FILENAME).write_text("[1, 2")
    with pytest.raises(DataError, match="data_card.json is not valid JSON"):
        units_record.read_card(str(tmp_path))


def test_missing_dataset_units_come_from_the_workdir(tmp_path):
    units_record.write_card(str(tmp_path), RAIN, "fmi")
    filled = units_record.metadata_with_card(None, str(tmp_path))
    assert filled["value_mapping"] == units.rain_rate_mapping()
    assert filled["grid"]["pixel_km"] == 2.0 and filled["units_from"] == "workdir"
    own = units_record.metadata_with_card(dict(RAIN, grid={"pixel_km": 1.0}), str(tmp_path))
    assert own["grid"] == {"pixel_km": 1.0} and own["units_from"] == "dataset"
    assert units_record.metadata_with_card({}, str(tmp_path / "old"))["units_from"] is None


def test_data_of_other_units_is_refused():
    card = units_record.make_card(RAIN, "fmi")
    units_record.check_agrees(card, dict(RAIN, grid=None), "knmi", "run")  # unknown grid: ok
    units_record.check_agrees(None, {"value_mapping": None}, "mnist", "run")  # no card: ok
    with pytest.raises(DataError, match="unit=dBZ but the model in run was trained on unit=mm/h"):
        units_record.check_agrees(card, {"value_mapping": units.hko7_mapping()}, "hko", "run")
    with pytest.raises(DataError, match="pixel_km=1.0"):
        units_record.check_agrees(card, dict(RAIN, grid={"pixel_km": 1.0}), "fmi1", "run")


TINY = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
              total_length=6, batch_size=4, max_iterations=1, reverse_input=False,
              display_interval=100, test_interval=100, snapshot_interval=1, log_every=1,
              num_test_batches=1, shuffle_buffer=8)


def _renamed_copy(data_dir, target, name, value_mapping):
    """The synthetic dataset under another name with another value_mapping."""
    os.makedirs(target)
    for split in schema.SPLITS:
        paths = schema.shard_paths(data_dir, synthetic_radar.NAME, split)
        for index, path in enumerate(paths):
            with open(path, "rb") as source, open(os.path.join(
                    target, schema.shard_filename(name, split, index, len(paths))), "wb") as out:
                out.write(source.read())
    metadata = schema.read_metadata(data_dir, synthetic_radar.NAME)
    schema.write_metadata(target, name, dict(metadata, value_mapping=value_mapping))
    return target


def test_training_records_the_units_and_refuses_to_resume_on_others(tmp_path):
    from predrnn_tf.training import loop as train_lib

    data_dir = str(tmp_path / "data")
    synthetic_radar.ensure_synthetic_dataset(data_dir, 16, 6, num_train=8, num_test=4)
    workdir = str(tmp_path / "run")
    train_lib.train_and_evaluate(TINY.replace(data_dir=data_dir), workdir)
    card = units_record.read_card(workdir)
    assert card["unit"] == "dBZ" and card["transform"] is None and card["synthetic"]
    assert card["dataset_name"] == synthetic_radar.NAME
    other = _renamed_copy(data_dir, str(tmp_path / "other"), "rain", units.rain_rate_mapping())
    with pytest.raises(DataError, match="stores unit=mm/h but the model in"):
        train_lib.train_and_evaluate(TINY.replace(data_dir=other, dataset_name="rain",
                                                  max_iterations=2), workdir)
    assert units_record.read_card(workdir)["unit"] == "dBZ"  # the record is untouched
