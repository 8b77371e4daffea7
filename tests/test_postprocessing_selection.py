"""The post-processing chosen on the training sources by the declared rule (no held-out look)."""

import json

import numpy as np
import pytest

from predrnn_tf.evaluation import postprocessing_selection
from predrnn_tf.evaluation.postprocessing_selection import Setting

LEADS = [10.0, 20.0, 30.0]


def content(candidates):
    """A metrics.json with persistence, extrapolation and advection, and ``candidates``."""
    def entry(mse, csi, bias):
        return {"per_frame": {"mse_mmh": mse, "csi_1mmh": csi, "bias_1mmh": bias}}

    forecasters = {"persistence": entry([2.0] * 3, [0.2] * 3, [1.0] * 3),
                   "extrapolation": entry([1.0] * 3, [0.4] * 3, [0.9] * 3),
                   "advection": entry([1.0] * 3, [0.35] * 3, [0.8] * 3)}
    forecasters.update({name: entry(*values) for name, values in candidates.items()})
    return {"lead_minutes": LEADS, "forecasters": forecasters}


def test_grid_is_the_declared_one_with_unique_names():
    names = [setting.name for setting in postprocessing_selection.GRID]
    assert len(names) == 11 == len(set(names))
    assert names[:2] == ["model", "model_pm_last_input"]
    assert "model_pm_w0.5_s0.85" in names and "model_pm_w1_s1" in names


def test_the_rule_counts_goals_then_the_worst_margin_then_the_grid_order():
    grid = (Setting("none"), Setting("last_input"), Setting("extrapolation", 0.5, 0.85),
            Setting("extrapolation", 0.7, 0.85))
    good = ([0.9] * 3, [0.45] * 3, [1.0] * 3)  # a-e all met
    closer = ([0.99] * 3, [0.41] * 3, [1.0] * 3)  # a-e met by smaller margins
    bad = ([1.5] * 3, [0.1] * 3, [0.3] * 3)  # none met
    first = content({"model": bad, "model_pm_last_input": closer,
                     "model_pm_w0.5_s0.85": good, "model_pm_w0.7_s0.85": good})
    second = content({"model": bad, "model_pm_last_input": closer,
                      "model_pm_w0.5_s0.85": closer, "model_pm_w0.7_s0.85": good})
    chosen, tallies = postprocessing_selection.choose([first, second], grid)
    assert chosen == grid[3]  # 10 met each; w0.7's worst margin is larger
    assert tallies["model"][0] == 0 and tallies["model_pm_w0.7_s0.85"][0] == 10
    assert tallies["model_pm_w0.7_s0.85"][1] == pytest.approx(0.05)  # b: CSI 0.45 - 0.4
    chosen, _ = postprocessing_selection.choose([first, first], grid)
    assert chosen == grid[2]  # a tie in both: the first in the grid
    with pytest.raises(ValueError, match="at least one"):
        postprocessing_selection.choose([], grid)


def test_candidates_share_the_model_forecast_and_carry_their_blend():
    class Model:
        calls = 0

        def __call__(self, inputs):
            Model.calls += 1
            return np.full((1, 2, 4, 4, 1), 0.3, np.float32)

    from predrnn_tf.evaluation import run

    model = run.LastForecast(Model())
    forecasters = postprocessing_selection.candidate_forecasters(model, {}, 2, extrapolation=None)
    assert forecasters["model"] is model and len(forecasters) == 11
    assert forecasters["model_pm_w0.7_s1"].blend == (0.7, 1.0)
    assert forecasters["model_pm_last_input"].method == "last_input"
    inputs = np.zeros((1, 3, 4, 4, 1), np.float32)
    for name in ("model", "model"):
        forecasters[name](inputs)
    assert Model.calls == 1


def test_the_choice_is_written_and_described_with_every_tally(tmp_path):
    grid = (Setting("none"), Setting("extrapolation", 0.7, 0.85))
    good = ([0.9] * 3, [0.45] * 3, [1.0] * 3)
    bad = ([1.5] * 3, [0.1] * 3, [0.3] * 3)
    path = str(tmp_path / "choice.json")
    chosen, record = postprocessing_selection.record_choice(
        path, {"fmi": content({"model": bad, "model_pm_w0.7_s0.85": good})}, grid)
    assert chosen == grid[1]
    with open(path) as handle:
        assert json.load(handle) == record
    assert record["on"] == ["fmi"] and record["met_and_worst_margin"]["model"][0] == 0
    line = postprocessing_selection.describe_choice(record, "knmi")
    assert line.startswith("Post-processing chosen on fmi (not on knmi): extrapolation, "
                           "blend weight 0.7, strength 0.85")
    assert "model 0/" in line and "model_pm_w0.7_s0.85 5/+0.050" in line
    record["chosen"] = {"method": "none", "model_weight": 0.5, "strength": 0.85}
    assert "none (the model alone)" in postprocessing_selection.describe_choice(record, "knmi")
