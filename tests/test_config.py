import json

import pytest

from predrnn_tf.config import (
    CONFIG_FILENAME,
    Config,
    ConfigError,
    changed_model_fields,
    load_config,
    parse_num_hidden,
    save_config,
    validate_config,
)


def test_json_round_trip(tmp_path):
    config = Config(num_hidden=(64, 32), model_name="convlstm", lr=3e-4)
    save_config(config, str(tmp_path))
    assert load_config(str(tmp_path)) == config


@pytest.mark.parametrize("changes,flag", [
    ({"input_length": 20, "total_length": 20}, "--input_length"),
    ({"img_width": 66, "patch_size": 4}, "--img_width=66"),
    ({"num_hidden": (64, 32)}, "--num_hidden"),
    ({"model_name": "unet"}, "--model_name"),
    ({"precision": "float8"}, "--precision"),
    ({"r_sampling_step_1": 10, "r_sampling_step_2": 5}, "--r_sampling_step_2"),
    ({"distribution_strategy": "tpu"}, "--distribution_strategy"),
    ({"nan_policy": "ignore"}, "--nan_policy"),
    ({"r_sampling_strategy": 3}, "--r_sampling_strategy"),
    ({"filter_size": 4}, "--filter_size"),
    ({"log_every": 0}, "--log_every"),
    ({"shuffle_buffer": 0}, "--shuffle_buffer"),
    ({"ensemble_noise_std": -0.5}, "--ensemble_noise_std must be in .0, 10. and needs "
                                   "--ensemble_loss=fair_crps, got -0.5"),
    ({"ensemble_noise_std": 11.0, "ensemble_loss": "fair_crps", "advection_prior": True,
      "residual_frames": True},
     "--ensemble_noise_std must be in .0, 10.*got 11.0 with --ensemble_loss=fair_crps"),
    ({"ensemble_noise_std": 0.5}, "needs --ensemble_loss=fair_crps, got 0.5 with "
                                  "--ensemble_loss=none"),
])
def test_validation_names_the_flag(changes, flag):
    with pytest.raises(ConfigError, match=flag):
        validate_config(Config(**changes))


def test_parse_num_hidden():
    assert parse_num_hidden("128, 64") == (128, 64)
    with pytest.raises(ConfigError, match="--num_hidden"):
        parse_num_hidden("a,b")


def test_changed_model_fields():
    assert changed_model_fields(Config(), Config(lr=1.0, max_iterations=3)) == []
    assert changed_model_fields(Config(), Config(num_hidden=(64,) * 4)) == ["num_hidden"]
    # Same weight shapes, another model: a resumed checkpoint would compute something else.
    assert changed_model_fields(Config(), Config(residual_frames=True)) == ["residual_frames"]
    assert changed_model_fields(Config(), Config(memory_top_down=False)) == ["memory_top_down"]


def test_old_config_with_stride_still_loads(tmp_path):
    """config.json files written before the stride field was removed keep loading."""
    values = Config(lr=3e-4).to_dict()
    assert "stride" not in values
    values["stride"] = 1
    (tmp_path / CONFIG_FILENAME).write_text(json.dumps(values))
    assert load_config(str(tmp_path)) == Config(lr=3e-4)
    assert Config.from_dict({"stride": 1, "filter_size": 3}) == Config(filter_size=3)


def test_save_config_leaves_no_temporary_file(tmp_path):
    path = save_config(Config(), str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILENAME]
    assert json.loads(open(path).read())["model_name"] == "predrnn_v2"
