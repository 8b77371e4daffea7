"""data/scale_out.py: the training flags of wet sampling, validation split and tf.data service."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predrnn_tf.config import Config
from predrnn_tf.data import scale_out, wetness
from predrnn_tf.errors import ConfigError
from predrnn_tf.training import distribution
from predrnn_tf.training.trainer import Trainer
from predrnn_tf.workdir import WorkDir
from tests.test_reader import LENGTH, SIZE, write_dataset

TOY = Config(dataset_name="toy", img_width=SIZE, input_length=1, total_length=LENGTH,
             num_hidden=(2,), filter_size=3, patch_size=2, batch_size=10, shuffle_buffer=16)


def test_the_config_gives_the_reader_its_options():
    assert scale_out.options_from_config(Config()) == scale_out.NO_SCALING
    options = scale_out.options_from_config(Config(
        wet_sampling=True, wet_sampling_floor=0.2, wet_sampling_scale=0.3,
        validation_fraction=0.1, data_service="grpc://dispatcher:5050"))
    assert options.wet_sampling == wetness.WetSampling(floor=0.2, scale=0.3)
    assert (options.validation_fraction, options.data_service) == (0.1, "grpc://dispatcher:5050")
    # the rule's defaults are the Config's (one owner)
    assert wetness.WetSampling() == wetness.WetSampling(Config().wet_sampling_floor,
                                                        Config().wet_sampling_scale)


@pytest.mark.parametrize("field, value", [
    ("wet_sampling_floor", 0.0), ("wet_sampling_floor", 1.5), ("wet_sampling_scale", 0.0),
    ("wet_sampling_scale", 2.0), ("validation_fraction", 1.0), ("validation_fraction", -0.1),
    ("data_service", "http://dispatcher:5050"), ("data_service", "dispatcher"),
    ("data_service", "../x/y")])
def test_a_bad_value_is_refused_naming_its_flag_even_when_sampling_is_off(field, value):
    with pytest.raises(ConfigError, match=f"--{field}") as raised:
        scale_out.options_from_config(Config(**{field: value}))
    assert "\n" not in str(raised.value) and str(value) in str(raised.value)


def test_the_data_card_records_the_rule_and_what_it_keeps(tmp_path):
    metadata = {"image_height": SIZE, "image_width": SIZE, "channels": 1,
                "wet_sampling": {"train": {"histogram": [80, 0, 0, 0, 10, 10, 0]}}}
    rule = wetness.WetSampling(floor=0.1, scale=0.1)
    entry = scale_out.card_entry(scale_out.ScaleOptions(wet_sampling=rule), metadata)
    assert entry["floor"] == 0.1 and entry["scheme"] == wetness.SCHEME
    # re-weighted by the training rule: 80 dry at 0.1, 10 at >= 1 - e^-1, 10 at >= 1 - e^-2
    assert entry["train"]["expected_acceptance_at_least"] == pytest.approx(
        (80 * 0.1 + 10 * 0.6321 + 10 * 0.8647) / 100, abs=1e-3)
    assert scale_out.card_entry(scale_out.NO_SCALING, metadata) is None
    assert scale_out.card_entry(scale_out.ScaleOptions(wet_sampling=rule), {})["train"] is None
    work = WorkDir(str(tmp_path / "run"))
    with open(work.write_data_card(metadata, "toy", wet_sampling=entry)) as handle:
        assert json.load(handle)["wet_sampling"] == entry
    assert work.data_card["wet_sampling"]["floor"] == 0.1


@pytest.mark.parametrize("wet_sampling", [False, True])
def test_the_trainer_reads_with_the_run_s_wet_sampling(tmp_path, wet_sampling):
    write_dataset(str(tmp_path))  # half dry, half wet records
    config = TOY.replace(data_dir=str(tmp_path), wet_sampling=wet_sampling,
                         wet_sampling_floor=0.05)
    trainer = Trainer(config, str(tmp_path / "run"), distribution.make_strategy(config))
    iterator = trainer.make_train_iterator(str(tmp_path))
    share = np.mean([float(np.mean(next(iterator).numpy()[:, 0, 0, 0, 0] > 0))
                     for _ in range(30)])
    assert share > 0.88 if wet_sampling else 0.3 < share < 0.7
