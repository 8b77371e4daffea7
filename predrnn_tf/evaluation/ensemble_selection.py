"""Choosing the ensemble members' state noise of a model without looking at its test source.

``predrnn-train --ensemble_loss=fair_crps --ensemble_noise_std=S`` trains the network to use
smooth noise of standard deviation S in its recurrent states (:mod:`predrnn_tf.models.ensemble`).
S sets the ensemble's spread, and choosing it by the scores of a leave-one-source-out
fold's held-out source would make that source's scores optimistic. Here the choice is made on
the training sources' *test* composites (later times, never trained on), by a rule declared
before any score was read, and the held-out source is scored with the chosen S only:

- :data:`NOISE_GRID`: S in {0, 0.25, 0.5, 1.0}, one fair-CRPS training per S.
- :func:`choose`: the lowest CRPS of the model's ensemble (mean over leads, then over the
  training sources); candidates within :data:`CRPS_TIE` of the lowest tie, and the tie goes
  to the spread-skill ratio closest to 1 (mean over leads and sources), then to grid order.

The CRPS is a proper score (it cannot be improved by forecasting other than one believes),
so the rule needs no baseline: STEPS is scored on the held-out source only.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from predrnn_tf import files
from predrnn_tf.evaluation import radar_evaluation, run

NOISE_GRID = (0.0, 0.25, 0.5, 1.0)
CRPS_TIE = 0.001  # mm/h: CRPS differences below this count as ties
ENSEMBLE = "model_ensemble"  # the model's ensemble in metrics.json


def score_noise(config: Any, workdir: str, output_dir: str, ensemble_size: int,
                every_kth_sequence: int = 1) -> dict[str, Any]:
    """The ensemble of ``workdir``'s model on ``config.dataset_name``'s test split.

    Args:
      config: the work directory's Config with ``data_dir`` and ``dataset_name`` (one training
        source) set; its ``ensemble_noise_std`` is the model's S.
      workdir: the fold model's work directory (its newest checkpoint).
      output_dir: where ``metrics.json`` goes; if it exists with the same
        ``every_kth_sequence``, it is read, not run again.
      ensemble_size: members of the ensemble.
      every_kth_sequence: score every k-th test sequence.

    Returns:
      The ``metrics.json`` content (``model`` and ``model_ensemble``, no baseline).
    """
    path = os.path.join(output_dir, radar_evaluation.METRICS_FILENAME)
    if os.path.exists(path):
        with open(path) as handle:
            content = json.load(handle)
        if content.get("info", {}).get("every_kth_sequence") == every_kth_sequence:
            return content
    options = run.EvaluateOptions(output_dir=output_dir, ensemble_size=ensemble_size,
                                  every_kth_sequence=every_kth_sequence,
                                  fss_thresholds=(1.0,), fss_scales_km=(16.0,))
    return run.evaluate(config, workdir, options)


def _mean_over_leads(content: dict[str, Any], metric: str) -> float:
    values = [value for value in content["forecasters"][ENSEMBLE]["per_frame"][metric]
              if value is not None and math.isfinite(value)]
    return sum(values) / len(values) if values else float("nan")


def tally(contents: list[dict[str, Any]]) -> tuple[float, float]:
    """``(CRPS, |spread-skill ratio - 1|)`` of the ensemble: means over leads, then sources."""
    crps = [_mean_over_leads(content, "crps_mmh") for content in contents]
    ratio = [_mean_over_leads(content, "spread_skill_ratio") for content in contents]
    return sum(crps) / len(crps), abs(sum(ratio) / len(ratio) - 1.0)


def choose(scores: dict[float, list[dict[str, Any]]]) -> tuple[float, dict[float, tuple]]:
    """The noise the rule picks; ``scores``: ``{S: [metrics.json of each training source]}``.

    The rule: the lowest CRPS; the candidates within :data:`CRPS_TIE` of it tie, and the tie
    goes to the spread-skill ratio closest to 1, then to the first in ``scores``' order.
    Returns S and every S's ``(CRPS, |spread-skill - 1|)``.
    """
    if not scores or not all(scores.values()):
        raise ValueError(f"choose() needs scored sources for every noise, got {scores!r:.200}")
    tallies = {noise: tally(contents) for noise, contents in scores.items()}
    lowest = min(crps for crps, _ in tallies.values())
    tied = [noise for noise, (crps, _) in tallies.items() if crps <= lowest + CRPS_TIE]
    return min(tied, key=lambda noise: tallies[noise][1]), tallies  # min keeps the first


def record_choice(path: str, scores: dict[float, dict[str, dict[str, Any]]]
                  ) -> tuple[float, dict[str, Any]]:
    """Chooses on ``scores`` (``{S: {training source: metrics.json}}``), writes ``path``.

    Returns the chosen S and the record: ``chosen`` (S), ``on`` (the sources), ``rule`` and
    ``crps_and_spread_skill_distance`` (``{S: [CRPS, |spread-skill - 1|]}``).
    """
    chosen, tallies = choose({noise: list(by_source.values())
                              for noise, by_source in scores.items()})
    record = {"chosen": chosen, "on": list(next(iter(scores.values()))),
              "rule": f"lowest mean CRPS; within {CRPS_TIE} mm/h: spread-skill closest to 1",
              "crps_and_spread_skill_distance": {f"{noise:g}": list(pair)
                                                 for noise, pair in tallies.items()}}
    files.write_json(path, record, indent=1)
    return chosen, record


def describe_choice(record: dict[str, Any], held_out: str) -> str:
    """One markdown line: the noise chosen for ``held_out`` and every candidate's tally."""
    tallies = ", ".join(f"S={noise} CRPS {crps:.4f} / |ratio-1| {distance:.2f}"
                        for noise, (crps, distance)
                        in record["crps_and_spread_skill_distance"].items())
    return (f"Ensemble noise chosen on {' + '.join(record['on'])} (not on {held_out}): "
            f"S={record['chosen']:g}. Mean CRPS (mm/h) / spread-skill distance there: "
            f"{tallies}.")


SUMMARY_METRICS = (("crps_mmh", "CRPS (mm/h)"), ("roc_area_1mmh", "ROC area 1 mm/h"),
                   ("rank_reliability_index", "rank reliability index"),
                   ("spread_skill_ratio", "spread-skill ratio"),
                   ("csi_1mmh", "CSI 1 mm/h (ensemble: its median)"))


def format_table(content: dict[str, Any]) -> str:
    """Markdown: per metric of :data:`SUMMARY_METRICS`, every forecaster's mean and leads."""
    leads = content["lead_minutes"]
    lines = ["| metric | forecaster | mean | " + " | ".join(f"{m:g}" for m in leads) + " |",
             "|---|---|---|" + "---|" * len(leads)]
    for metric, label in SUMMARY_METRICS:
        for name, result in content["forecasters"].items():
            values = result["per_frame"].get(metric)
            if values is None or all(value is None for value in values):
                continue  # no spread-skill ratio for a one-member ensemble
            defined = [value for value in values if value is not None]
            cells = [sum(defined) / len(defined), *values]
            lines.append(f"| {label} | {name} | " + " | ".join(
                "nan" if value is None else f"{value:.3f}" for value in cells) + " |")
    return "\n".join(lines) + "\n"
