"""The model registry (predrnn_tf/models/registry.py): get_model(name), the one door by name."""

import pytest

from predrnn_tf.config import MODEL_NAMES, Config
from predrnn_tf.errors import ConfigError
from predrnn_tf.models import get_model, model_names
from predrnn_tf.models.base import RecurrentModel
from predrnn_tf.models.builder import build_model
from predrnn_tf.models.mim import MIM
from predrnn_tf.models.predrnn import PredRNN
from predrnn_tf.models.radar_head import RadarHead

TINY = dict(num_hidden=(4, 4), filter_size=3, patch_size=2, img_width=8, input_length=3,
            total_length=6)


def test_every_configurable_model_name_is_registered():
    assert set(model_names()) == set(MODEL_NAMES)


def test_an_unknown_name_is_one_line_listing_the_known_names():
    with pytest.raises(ConfigError) as error:
        get_model("predrnn_v3")
    message = str(error.value)
    assert "\n" not in message and "'predrnn_v3'" in message
    for name in MODEL_NAMES:
        assert name in message


@pytest.mark.parametrize("name", sorted(MODEL_NAMES))
def test_each_factory_makes_its_model_unbuilt(name):
    model = get_model(name)(Config(model_name=name, **TINY))
    assert isinstance(model, MIM if name == "mim" else PredRNN)
    assert isinstance(model, RecurrentModel) and model.name == name and not model.built


def test_the_radar_flags_put_the_head_around_the_paper_model():
    config = Config(residual_frames=True, zero_mean_change=True, **TINY)
    model = get_model("predrnn_v2")(config)
    assert isinstance(model.output_head, RadarHead) and model.output_head.zero_mean_change
    assert get_model("predrnn_v2")(Config(**TINY)).output_head is None


def test_build_model_goes_through_the_registry_and_builds():
    model = build_model(Config(model_name="convlstm", **TINY))
    assert type(model) is PredRNN and model.built and model.model_name == "convlstm"


def test_forecast_and_get_config_are_written_once():
    assert PredRNN.forecast is MIM.forecast is RecurrentModel.forecast
    assert MIM.get_config is RecurrentModel.get_config
