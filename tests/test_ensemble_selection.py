"""The ensemble noise is chosen on the training sources by the declared rule."""

import json

import pytest

from predrnn_tf.evaluation import ensemble_selection


def content(crps, ratio, csi=(0.5, 0.5)):
    ensemble = {"crps_mmh": list(crps), "spread_skill_ratio": list(ratio),
                "csi_1mmh": list(csi), "roc_area_1mmh": [0.9, None],
                "rank_reliability_index": [0.1, 0.2]}
    one_member = {"crps_mmh": [0.4, 0.5], "spread_skill_ratio": [None, None],
                  "csi_1mmh": [0.4, 0.3]}
    return {"lead_minutes": [10.0, 20.0],
            "forecasters": {"model_ensemble": {"per_frame": ensemble},
                            "extrapolation": {"per_frame": one_member}}}


def test_grid_is_the_declared_one():
    assert ensemble_selection.NOISE_GRID == (0.0, 0.25, 0.5, 1.0)


def test_lowest_crps_wins_outside_the_tie_band():
    scores = {0.0: [content([0.20, 0.30], [0.5, 0.5])],
              0.5: [content([0.20, 0.28], [2.0, 2.0])]}  # CRPS 0.24 < 0.25 - 0.001
    chosen, tallies = ensemble_selection.choose(scores)
    assert chosen == 0.5
    assert tallies[0.0] == pytest.approx((0.25, 0.5)) and tallies[0.5] == pytest.approx((0.24, 1.0))


def test_ties_go_to_spread_skill_closest_to_one_then_grid_order():
    scores = {0.0: [content([0.2500, 0.2500], [0.5, 0.5])],
              0.25: [content([0.2505, 0.2505], [1.25, 1.25])],  # tied: |1.25 - 1| = 0.25
              0.5: [content([0.2504, 0.2506], [0.75, 0.75], csi=(0.1, 0.1))],  # 0.25 too
              1.0: [content([0.2600, 0.2600], [1.0, 1.0])]}  # calibrated but 0.01 worse
    chosen, _ = ensemble_selection.choose(scores)
    assert chosen == 0.25


def test_sources_are_averaged_and_undefined_leads_skipped():
    scores = {0.0: [content([0.1, None], [1.0, None]), content([0.3, 0.3], [0.5, 0.5])],
              1.0: [content([0.2, 0.2], [1.0, 1.0]), content([0.2, 0.2], [1.0, 1.0])]}
    _, tallies = ensemble_selection.choose(scores)
    assert tallies[0.0] == pytest.approx((0.2, 0.25))
    with pytest.raises(ValueError, match="scored sources"):
        ensemble_selection.choose({0.5: []})


def test_the_choice_is_written_described_and_tabled(tmp_path):
    path = tmp_path / "ensemble_choice.json"
    scores = {0.0: {"fmi": content([0.3, 0.3], [0.5, 0.5]), "knmi": content([0.3, 0.3], [1, 1])},
              0.5: {"fmi": content([0.2, 0.2], [1, 1]), "knmi": content([0.2, 0.2], [1, 1])}}
    chosen, record = ensemble_selection.record_choice(str(path), scores)
    assert chosen == 0.5 and json.loads(path.read_text()) == record
    assert record["on"] == ["fmi", "knmi"]
    line = ensemble_selection.describe_choice(record, "bom_c10")
    assert "on fmi + knmi (not on bom_c10): S=0.5" in line and "S=0 CRPS 0.3000" in line
    table = ensemble_selection.format_table(scores[0.5]["fmi"])
    assert "| CRPS (mm/h) | model_ensemble | 0.200 | 0.200 | 0.200 |" in table
    assert "| ROC area 1 mm/h | model_ensemble | 0.900 | 0.900 | nan |" in table
    assert "spread-skill ratio | extrapolation" not in table  # a one-member ensemble has none


def test_a_stored_score_is_reused_only_with_the_same_sequences(tmp_path, monkeypatch):
    from predrnn_tf.evaluation import run

    calls = []
    monkeypatch.setattr(run, "evaluate", lambda config, workdir, options: calls.append(
        options.every_kth_sequence) or {"info": {"every_kth_sequence": 9}})
    stored = {"info": {"every_kth_sequence": 2}, "forecasters": {}}
    (tmp_path / "metrics.json").write_text(json.dumps(stored))
    assert ensemble_selection.score_noise(None, "w", str(tmp_path), 12, 2) == stored
    assert calls == []
    ensemble_selection.score_noise(None, "w", str(tmp_path), 12, 4)
    assert calls == [4]
