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
