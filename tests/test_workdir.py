"""The one door to a work directory: config.json, checkpoints, data_card.json, value mapping."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from predrnn_tf import checkpoints, units
from predrnn_tf.config import CONFIG_FILENAME, Config
from predrnn_tf.data import schema, sources, synthetic_radar
from predrnn_tf.errors import CheckpointError, ConfigError, DataError
from predrnn_tf.inference import pretrained_models
from predrnn_tf.models.builder import build_model
from predrnn_tf.workdir import (
    CARD_FILENAME,
    WorkDir,
    describe,
    make_card,
    open_workdir,
    restore,
    step_of,
)

RAIN = {"name": "fmi", "image_height": 80, "image_width": 80, "channels": 1,
        "value_mapping": units.rain_rate_mapping(),
        "grid": {"pixel_km": 2.0, "interval_minutes": 10, "source_timestep_minutes": 5}}
SMALL = Config(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=16, input_length=3,
               total_length=6)


def saved_model_workdir(path, config=SMALL, step=5, number=None):
    """A work directory with config.json and one checkpoint of a fresh model at ``step``."""
    model = build_model(config)
    step_variable = tf.Variable(step, dtype=tf.int64, trainable=False, name="step")
    checkpoints.make_manager(tf.train.Checkpoint(model=model, step=step_variable), path).save(
        checkpoint_number=number)
    WorkDir(path).save_config(config)
    return model


# --- config.json ---------------------------------------------------------------------------
def test_config_round_trip_keeps_an_inside_data_dir_relative(tmp_path):
    work = WorkDir(str(tmp_path / "run"))
    assert not work.has_config()
    config = SMALL.replace(data_dir=str(tmp_path / "run" / "data"), lr=3e-4)
    path = work.save_config(config)
    assert path == work.config_path and os.listdir(work.path) == [CONFIG_FILENAME]
    assert json.loads(open(path).read())["data_dir"] == "data"
    assert work.has_config() and work.config == config
    outside = SMALL.replace(data_dir=str(tmp_path / "elsewhere"))
    work.save_config(outside)
    assert json.loads(open(path).read())["data_dir"] == str(tmp_path / "elsewhere")


def test_not_a_work_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"--workdir={tmp_path} has no config.json"):
        open_workdir(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a training workdir"):
        WorkDir(str(tmp_path / "file")).config  # noqa: B018
    (tmp_path / CONFIG_FILENAME).write_text("{not json")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        open_workdir(str(tmp_path))


# --- checkpoints ---------------------------------------------------------------------------
def test_checkpoint_defaults_to_the_newest_and_checks_a_given_one(tmp_path):
    work = WorkDir(str(tmp_path))
    with pytest.raises(CheckpointError, match=f"--workdir={tmp_path} has no checkpoint"):
        work.checkpoint()
    assert work.resumable_checkpoint() is None and work.latest_checkpoint() is None
    saved_model_workdir(work.path, step=5, number=9)
    newest = work.checkpoint()
    assert newest.endswith("ckpt-9") and work.resumable_checkpoint() == newest
    assert work.checkpoint(newest) == newest
    with pytest.raises(CheckpointError, match="--checkpoint=.*ckpt-3 does not exist"):
        work.checkpoint(os.path.join(work.checkpoint_dir, "ckpt-3"))


def test_the_step_is_the_stored_one_else_the_name_suffix(tmp_path):
    saved_model_workdir(str(tmp_path), step=5, number=9)
    assert step_of(str(tmp_path / "checkpoints" / "ckpt-9")) == 5  # the variable, not the name
    bare = tf.train.Checkpoint(model=build_model(SMALL))
    assert step_of(bare.write(str(tmp_path / "bare" / "weights-12"))) == 12
    with pytest.raises(CheckpointError, match="holds no training step"):
        step_of(bare.write(str(tmp_path / "bare" / "weights")))


def test_restore_model_loads_the_weights_and_applies_changes(tmp_path):
    model = saved_model_workdir(str(tmp_path))
    frames = np.random.default_rng(0).random((1, 3, 16, 16, 1)).astype(np.float32)
    restored, config = WorkDir(str(tmp_path)).restore_model(precision="float32")
    assert config == SMALL
    np.testing.assert_array_equal(restored.forecast(frames).numpy(),
                                  model.forecast(frames).numpy())
    _, changed = WorkDir(str(tmp_path)).restore_model(remat=True)
    assert changed == SMALL.replace(remat=True)
    again, _ = restore(str(tmp_path))
    np.testing.assert_array_equal(again.forecast(frames).numpy(), model.forecast(frames).numpy())


@pytest.mark.parametrize("config_layers", [(4, 4), (4, 4, 4, 4)])
def test_a_config_with_other_layers_than_its_checkpoint_is_refused(tmp_path, config_layers):
    saved_model_workdir(str(tmp_path), config=SMALL.replace(num_hidden=(4, 4, 4)))
    edited = json.loads((tmp_path / CONFIG_FILENAME).read_text())
    edited["num_hidden"] = list(config_layers)
    (tmp_path / CONFIG_FILENAME).write_text(json.dumps(edited))
    which = "does not use.*cell_2/" if len(config_layers) < 3 else "lacks.*cell_3/"
    with pytest.raises(CheckpointError, match=f"--workdir={tmp_path} .*does not match "
                                              f"checkpoint .*{which}"):
        WorkDir(str(tmp_path)).restore_model()


# --- data_card.json ------------------------------------------------------------------------
def test_the_card_names_unit_transform_grid_spacing_and_interval():
    card = make_card(RAIN, "fmi")
    assert (card["unit"], card["transform"], card["pixel_km"], card["interval_minutes"]) == \
        ("mm/h", "dBR", 2.0, 10)
    assert card["value_mapping"] == units.rain_rate_mapping()
    assert card["sources"] == {"fmi": 1.0}
    assert describe(card) == "mm/h (dBR), 2 km/pixel, 10 min/frame"
    plain = make_card({"value_mapping": None}, "mnist")
    assert plain["unit"] is None and plain["pixel_km"] is None
    assert describe(plain).startswith("[0, 1] pixels")


def test_the_mixture_weights_are_the_ones_given_not_the_metadata_text():
    # make_moving_mnist writes a provenance text under "sources"
    mnist = {"name": "mnist", "sources": "MNIST IDX t10k-images-idx3-ubyte.gz split 8000"}
    assert make_card(mnist, "mnist")["sources"] == {"mnist": 1.0}
    assert make_card(RAIN, "fmi,knmi:2", {"fmi": 1, "knmi": 2})["sources"] == \
        {"fmi": 1.0, "knmi": 2.0}


def test_the_card_is_written_atomically_and_read_back(tmp_path):
    work = WorkDir(str(tmp_path))
    path = work.write_data_card(RAIN, "fmi")
    assert path == work.card_path and os.listdir(tmp_path) == [CARD_FILENAME]  # no temp left
    assert json.load(open(path)) == work.data_card
    assert work.value_mapping() == units.rain_rate_mapping()
    assert WorkDir(str(tmp_path / "absent")).data_card is None
    (tmp_path / CARD_FILENAME).write_text("[1, 2")
    with pytest.raises(DataError, match="data_card.json is not valid JSON"):
        work.data_card  # noqa: B018


def test_missing_dataset_units_come_from_the_card(tmp_path):
    work = WorkDir(str(tmp_path))
    work.write_data_card(RAIN, "fmi")
    filled = work.metadata(None)
    assert filled["value_mapping"] == units.rain_rate_mapping()
    assert filled["grid"]["pixel_km"] == 2.0 and filled["units_from"] == "workdir"
    assert filled["image_width"] == 80
    own = work.metadata(dict(RAIN, grid={"pixel_km": 1.0}))
    assert own["grid"] == {"pixel_km": 1.0} and own["units_from"] == "dataset"
    old = WorkDir(str(tmp_path / "old"))  # no card, no dataset: plain pixels
    assert old.metadata({}) is None and old.value_mapping({"value_mapping": None}) is None
    assert old.value_mapping(RAIN) == units.rain_rate_mapping()


def test_data_of_other_units_is_refused(tmp_path):
    work = WorkDir(str(tmp_path / "run"))
    work.check_data_agrees({"value_mapping": None}, "mnist")  # no card: ok
    work.write_data_card(RAIN, "fmi")
    work.check_data_agrees(dict(RAIN, grid=None), "knmi")  # unknown grid: ok
    with pytest.raises(DataError, match=f"unit=dBZ but the model in {work.path} was trained "
                                        f"on unit=mm/h"):
        work.check_data_agrees({"value_mapping": units.hko7_mapping()}, "hko")
    with pytest.raises(DataError, match="pixel_km=1.0"):
        work.check_data_agrees(dict(RAIN, grid={"pixel_km": 1.0}), "fmi1")


# --- the dataset's side (data/sources.py) and the shipped work directory --------------------
def test_synthetic_radar_is_hko7_even_when_its_folder_is_gone(tmp_path):
    config = SMALL.replace(dataset_name=synthetic_radar.NAME)
    gone = sources.dataset_metadata(config, str(tmp_path))
    assert gone["value_mapping"] == units.hko7_mapping()
    assert WorkDir(str(tmp_path)).value_mapping(gone) == units.hko7_mapping()
    assert sources.dataset_metadata(SMALL.replace(dataset_name="mnist"), str(tmp_path)) is None
    synthetic_radar.ensure_synthetic_dataset(str(tmp_path / "data"), 16, 6, num_train=2,
                                             num_test=2)
    found = sources.dataset_metadata(config, str(tmp_path))
    assert found == schema.read_metadata(str(tmp_path / "data"), synthetic_radar.NAME)


def test_the_shipped_pretrained_work_directory_reads_through_the_door():
    work = open_workdir(pretrained_models.pretrained_workdir("radar_real"))
    config = work.config
    assert step_of(work.checkpoint()) == 600 and work.checkpoint().endswith("ckpt-600")
    metadata = work.metadata(sources.dataset_metadata(config, work.path))
    assert metadata["units_from"] == "workdir"  # its training data is not shipped
    assert units.mapping_of(metadata) == units.mapping_of(work.data_card)
    assert units.is_rain_rate_mapping(metadata) and metadata["grid"]["pixel_km"] == 2.0


def test_training_records_the_units_and_refuses_to_resume_on_others(tmp_path):
    from predrnn_tf.training import loop

    tiny = SMALL.replace(batch_size=4, max_iterations=1, reverse_input=False,
                         display_interval=100, test_interval=100, snapshot_interval=1,
                         log_every=1, num_test_batches=1, shuffle_buffer=8)
    data_dir = str(tmp_path / "data")
    synthetic_radar.ensure_synthetic_dataset(data_dir, 16, 6, num_train=8, num_test=4)
    work = WorkDir(str(tmp_path / "run"))
    loop.train_and_evaluate(tiny.replace(data_dir=data_dir), work.path)
    card = work.data_card
    assert card["unit"] == "dBZ" and card["transform"] is None and card["synthetic"]
    assert card["dataset_name"] == synthetic_radar.NAME
    assert work.config == tiny.replace(data_dir=data_dir)
    other = _renamed_copy(data_dir, str(tmp_path / "other"), "rain", units.rain_rate_mapping())
    with pytest.raises(DataError, match="stores unit=mm/h but the model in"):
        loop.train_and_evaluate(tiny.replace(data_dir=other, dataset_name="rain",
                                                  max_iterations=2), work.path)
    assert work.data_card["unit"] == "dBZ"  # the record is untouched


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
