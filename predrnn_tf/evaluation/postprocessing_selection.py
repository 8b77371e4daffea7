"""Choosing the probability matching of a model without looking at its test source.

A leave-one-source-out fold holds one source S out; its model was trained on the others.
Choosing the post-processing (:mod:`predrnn_tf.models.probability_matching`: the method,
the blend weight and the strength) by its scores on S would make S's margins optimistic.
Here the choice is made on the training sources' *test* composites (later times, never
trained on), by a rule declared beforehand, and S is scored with the chosen setting only:

- :data:`GRID`: ``none``; ``last_input``; ``extrapolation`` with the model's blend weight in
  {0.5, 0.7, 1.0} x strength in {0.5, 0.85, 1.0}.
- :func:`choose`: the most of issue 29's goals a-e met (:mod:`.skill_goals`) over the
  training sources; ties: the largest worst margin; then the grid's order.

:func:`score_grid` scores every setting of the grid on one source's test split in one pass
(the model's forecast and pysteps' motion computed once per sequence), beside persistence,
extrapolation and the advection prior (the references of goals a-e).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from predrnn_tf import files
from predrnn_tf.evaluation import baselines, evaluator, radar_evaluation, run, skill_goals
from predrnn_tf.models import probability_matching

GOALS = ("a", "b", "c", "d", "e")
REFERENCES = ("persistence", "extrapolation", "advection")  # the baselines goals a-e need


@dataclasses.dataclass(frozen=True)
class Setting:
    """One post-processing: a method of :data:`probability_matching.METHODS` and its blend."""

    method: str
    model_weight: float = probability_matching.MODEL_WEIGHT
    strength: float = probability_matching.MATCH_STRENGTH

    @property
    def name(self) -> str:
        """The forecaster's name in ``metrics.json`` (``model``: no post-processing)."""
        if self.method == "none":
            return "model"
        if self.method == "last_input":
            return "model_pm_last_input"
        return f"model_pm_w{self.model_weight:g}_s{self.strength:g}"


GRID = (Setting("none"), Setting("last_input"),
        *(Setting("extrapolation", weight, strength)
          for weight in (0.5, 0.7, 1.0) for strength in (0.5, 0.85, 1.0)))


def candidate_forecasters(model: run.LastForecast, metadata: dict[str, Any],
                          output_length: int, extrapolation: baselines.RainRateNowcast,
                          grid: tuple[Setting, ...] = GRID) -> dict[str, Any]:
    """``{setting name: forecaster}``: the model post-processed by every setting of ``grid``."""
    forecasters: dict[str, Any] = {}
    for setting in grid:
        if setting.method == "none":
            forecasters[setting.name] = model
        else:
            forecasters[setting.name] = run.ProbabilityMatched(
                model, metadata, setting.method, output_length, extrapolation=extrapolation,
                blend=(setting.model_weight, setting.strength))
    return forecasters


def score_grid(config: Any, workdir: str, output_dir: str, every_kth_sequence: int = 1,
               grid: tuple[Setting, ...] = GRID) -> dict[str, Any]:
    """Every setting of ``grid`` on ``config.dataset_name``'s test split; its metrics.json.

    Args:
      config: the work directory's Config with ``data_dir`` and ``dataset_name`` (one
        source) set.
      workdir: the model's training work directory (its newest checkpoint).
      output_dir: where ``metrics.json`` goes; if it exists, it is read, not run again.
      every_kth_sequence: score every k-th test sequence.
      grid: the settings.
    """
    path = os.path.join(output_dir, radar_evaluation.METRICS_FILENAME)
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    model, checkpoint = run.restore_model(config, workdir, None)
    output_length = config.output_length
    dataset, metadata, _ = run.open_test_set(config, workdir, config.input_length + output_length,
                                             check_against_model=True, crop_to_model=True)
    references = {name: baselines.make_baseline(name, output_length, metadata)
                  for name in REFERENCES}
    forecasters = candidate_forecasters(
        run.LastForecast(evaluator.as_forecaster(model, output_length)), metadata,
        output_length, references["extrapolation"], grid)
    forecasters.update(references)
    return radar_evaluation.evaluate_forecasters(
        forecasters, radar_evaluation.every_kth(dataset, every_kth_sequence, config.batch_size),
        metadata,
        output_dir, config.input_length, output_length,
        info={"workdir": workdir, "checkpoint": checkpoint, "selection_grid": [
            dataclasses.asdict(setting) for setting in grid]},
        thresholds=(1.0,), fss_thresholds=(1.0,), fss_scales_km=(16.0,))


def tally(contents: list[dict[str, Any]], name: str) -> tuple[int, float]:
    """``(goals a-e met, worst margin)`` of candidate ``name`` over the ``contents``."""
    met, worst = 0, float("inf")
    for content in contents:
        margins = skill_goals.goal_margins(content, name)
        for goal in GOALS:
            if goal in margins:
                met += bool(margins[goal]["holds"])
                worst = min(worst, margins[goal]["margin"])
    return met, worst


def choose(contents: list[dict[str, Any]], grid: tuple[Setting, ...] = GRID
           ) -> tuple[Setting, dict[str, tuple[int, float]]]:
    """The setting the rule picks on ``contents`` (metrics.json of the training sources).

    The rule: the most goals a-e met over all ``contents``; ties: the largest worst margin;
    then the first in ``grid``. Returns the setting and every setting's ``(met, worst)``.
    """
    if not contents:
        raise ValueError("choose() needs at least one scored source")
    tallies = {setting.name: tally(contents, setting.name) for setting in grid}
    best = max(grid, key=lambda setting: tallies[setting.name])  # max keeps the first of ties
    return best, tallies


def record_choice(path: str, contents: dict[str, dict[str, Any]],
                  grid: tuple[Setting, ...] = GRID) -> tuple[Setting, dict[str, Any]]:
    """Chooses on ``contents`` (``{training source: metrics.json}``), writes ``path`` (JSON).

    Returns the chosen setting and the record: ``chosen`` (its fields), ``name``, ``on`` (the
    sources) and ``met_and_worst_margin`` (``{setting name: [met, worst margin]}``).
    """
    chosen, tallies = choose(list(contents.values()), grid)
    record = {"chosen": dataclasses.asdict(chosen), "name": chosen.name, "on": list(contents),
              "met_and_worst_margin": {name: list(pair) for name, pair in tallies.items()}}
    files.write_json(path, record, indent=1)
    return chosen, record


def describe_choice(record: dict[str, Any], held_out: str) -> str:
    """One markdown line: the setting chosen for ``held_out`` and every setting's tally."""
    chosen = record["chosen"]
    setting = "none (the model alone)" if chosen["method"] == "none" else (
        f"{chosen['method']}, blend weight {chosen['model_weight']:g}, strength "
        f"{chosen['strength']:g} (model_pm below)")
    tallies = ", ".join(f"{name} {met}/{worst:+.3f}"
                        for name, (met, worst) in record["met_and_worst_margin"].items())
    return (f"Post-processing chosen on {' + '.join(record['on'])} (not on {held_out}): "
            f"{setting}. Goals a-e met / worst margin there: {tallies}.")
