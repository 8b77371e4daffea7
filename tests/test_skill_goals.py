"""Issue 29's goals a-e: margins at the worst lead, undefined leads skipped."""

import pytest

from predrnn_tf.evaluation import skill_goals


def forecaster(mse, csi, bias):
    return {"per_frame": {"mse_mmh": mse, "csi_1mmh": csi, "bias_1mmh": bias}}


CONTENT = {
    "lead_minutes": [10.0, 20.0, 30.0, 40.0],
    "forecasters": {
        "model": forecaster([1.0, 2.0, 3.0, 4.0], [0.7, 0.5, 0.40, None], [1.0, 0.9, 0.6, 1.4]),
        "extrapolation": forecaster([2.0, 2.5, 4.0, 5.0], [0.8, 0.5, 0.35, 0.3],
                                    [1, 1, 1, 1]),
        "persistence": forecaster([3.0, 4.0, 5.0, 6.0], [0.6, 0.5, 0.3, 0.2], [1, 1, 1, 1]),
        "advection": forecaster([2.0, 2.5, 4.0, 5.0], [0.7, 0.52, 0.4, 0.3], [1, 1, 1, 1]),
    },
}


def test_margins_and_worst_leads():
    goals = skill_goals.goal_margins(CONTENT)
    assert goals["a"]["margin"] == pytest.approx(0.2) and goals["a"]["worst_lead_minutes"] == 20
    assert goals["a"]["holds"]
    assert goals["b"]["margin"] == pytest.approx(0.05) and goals["b"]["holds"]  # leads >= 30
    assert goals["c"]["margin"] == pytest.approx(0.0) and goals["c"]["holds"]  # equal at 20
    assert goals["d"]["margin"] == pytest.approx(-0.1) and not goals["d"]["holds"]
    assert goals["d"]["worst_lead_minutes"] in (30.0, 40.0)
    assert goals["e"]["margin"] == pytest.approx(-0.02) and not goals["e"]["holds"]
    assert "stretch" not in goals  # no sprog scored


def test_table_names_every_goal():
    table = skill_goals.format_goals({"model": skill_goals.goal_margins(CONTENT)})
    assert "| d: frequency bias" in table and "missed -0.100" in table and "n/a" in table


def ensemble_content():
    def scores(crps, roc, rank, ratio, csi):
        return {"per_frame": {"crps_mmh": crps, "roc_area_1mmh": roc,
                              "rank_reliability_index": rank, "spread_skill_ratio": ratio,
                              "csi_1mmh": csi}}

    return {"lead_minutes": [10.0, 20.0, 30.0, 40.0], "forecasters": {
        "model_ensemble": scores([0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.7, 0.6],
                                 [0.1, 0.2, 0.2, None], [0.7, 0.9, 1.0, 1.1],
                                 [0.1, 0.5, 0.4, 0.3]),
        "steps": scores([0.2, 0.25, 0.3, 0.5], [0.8, 0.8, 0.6, 0.5], [0.1, 0.3, 0.3, 0.3],
                        [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]),
        "extrapolation": scores([0.3] * 4, [None] * 4, [None] * 4, [None] * 4,
                                [0.9, 0.9, 0.35, 0.2]),
    }}


def test_ensemble_goals_against_steps_with_margins():
    goals = skill_goals.ensemble_goal_margins(ensemble_content())
    assert goals["crps"]["margin"] == pytest.approx(0.0) and not goals["crps"]["holds"]
    assert goals["crps"]["worst_lead_minutes"] == 30  # equal there: not below
    assert goals["roc"]["margin"] == pytest.approx(0.0) and not goals["roc"]["holds"]
    assert goals["rank"]["margin"] == pytest.approx(0.0) and goals["rank"]["holds"]  # as flat
    assert goals["spread"]["margin"] == pytest.approx(-0.1) and not goals["spread"]["holds"]
    assert goals["spread"]["worst_lead_minutes"] == 10
    assert goals["median_csi"]["margin"] == pytest.approx(0.05)  # leads >= 30 only
    assert goals["median_csi"]["holds"]
    table = skill_goals.format_goals({"model_ensemble": goals}, skill_goals.ENSEMBLE_GOALS)
    assert "| spread: spread-skill ratio within 0.8-1.2" in table and "missed -0.100" in table
