"""The pretrained radar model shipped in the package: present, small, the recipe, and working."""

import json
import os

import numpy as np
import pytest

from predrnn_tf import checkpoints, units
from predrnn_tf.config import load_config
from predrnn_tf.evaluation import baselines
from predrnn_tf.inference import pretrained_models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE_MODEL_FLAGS = ("model_name", "num_hidden", "filter_size", "patch_size", "img_width",
                      "input_length", "total_length", "residual_frames", "advection_prior",
                      "keep_dry_pixels", "zero_mean_change", "frame_loss", "max_iterations")


def _recipe_flags():
    values = {}
    with open(os.path.join(REPO, "configs", "radar_real.flags")) as handle:
        for line in handle:
            if line.startswith("--") and "=" in line:
                name, value = line[2:].strip().split("=", 1)
                values[name] = value
    return values


def _moving_rain(steps=15, size=64, velocity=(1.5, 2.0)):
    """Rain (mm/h) in two cells moving at ``velocity`` pixels per step, as [0, 1] dBR pixels."""
    rows, columns = np.mgrid[:size, :size]
    frames = []
    for step in range(steps):
        y, x = 20 + velocity[0] * step, 14 + velocity[1] * step
        rate = (8.0 * np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / 60.0)
                + 3.0 * np.exp(-((rows - y - 12) ** 2 + (columns - x + 4) ** 2) / 30.0))
        frames.append(units.rain_rate_to_unit_pixels(np.where(rate > 0.1, rate, 0.0)))
    return np.stack(frames)[None, ..., None].astype(np.float32)  # [1, T, H, W, 1]


def test_the_radar_model_is_the_recipe_and_small():
    workdir = pretrained_models.pretrained_workdir("radar_real")
    config = load_config(workdir)
    recipe = _recipe_flags()
    for name in RECIPE_MODEL_FLAGS:
        value = getattr(config, name)
        expected = recipe[name]
        if isinstance(value, bool):
            expected = expected == "true"
        elif isinstance(value, tuple):
            expected = tuple(int(part) for part in expected.split(","))
        else:
            expected = type(value)(expected)
        assert value == expected, name
    assert config.data_dir == ""  # nothing of the machine it was trained on
    size = sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(workdir) for name in names)
    assert size < 5 * 1024 * 1024
    with open(os.path.join(workdir, "data_card.json")) as handle:
        card = json.load(handle)
    assert (card["unit"], card["transform"], card["pixel_km"], card["interval_minutes"]) == (
        "mm/h", "dBR", 2.0, 10.0)
    assert os.path.exists(os.path.join(workdir, "MODEL_CARD.md"))


def test_the_radar_model_forecasts_moving_rain_better_than_persistence():
    model, config = checkpoints.restore(pretrained_models.pretrained_workdir("radar_real"))
    frames = _moving_rain()
    inputs, truth = frames[:, :config.input_length], frames[:, config.input_length:]
    forecast = model.forecast(inputs).numpy()
    assert forecast.shape == truth.shape and np.all(np.isfinite(forecast))
    persistence = baselines.persistence(inputs, truth.shape[1])
    model_error = np.mean((forecast - truth) ** 2)
    assert model_error < 0.5 * np.mean((persistence - truth) ** 2)
    untrained = baselines.make_baseline("advection", truth.shape[1])(inputs)
    assert np.abs(forecast - untrained).max() > 1e-3  # trained weights, not a zero change


def test_unknown_names_and_the_command_line():
    with pytest.raises(ValueError, match="no pretrained model 'kth'; there are: radar_real"):
        pretrained_models.pretrained_workdir("kth")
    assert pretrained_models.main(["pretrained_models", "radar_real"]) == 0
    assert pretrained_models.main(["pretrained_models", "kth"]) == 1
    assert pretrained_models.main(["pretrained_models"]) == 2
