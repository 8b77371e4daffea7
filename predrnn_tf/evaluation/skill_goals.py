"""Issue 29's skill goals on a whole-composite ``metrics.json``, each with its margin.

Per lead time (``per_frame`` of :mod:`.radar_evaluation`), for a candidate forecaster:

- ``a``: MSE below extrapolation at every lead; margin = the smallest
  ``(extrapolation - candidate) / extrapolation`` (a share: 0.1 = 10 % lower).
- ``b``: CSI at 1 mm/h above extrapolation at every lead >= ``min_lead_minutes``; margin =
  the smallest CSI difference.
- ``c``: CSI at 1 mm/h never below persistence; margin = the smallest CSI difference.
- ``d``: frequency bias at 1 mm/h in [0.7, 1.3] at every lead; margin = the smallest
  distance inside the interval (negative: outside).
- ``e``: CSI at 1 mm/h at least the untrained advection prior's at every lead.
- ``stretch``: CSI at 1 mm/h above S-PROG at every lead >= ``min_lead_minutes``.

A goal holds when its margin is positive (``a``, ``b``, ``stretch``) or not negative
(``c``, ``d``, ``e``).

Issue 30's goals of an ensemble (:func:`ensemble_goal_margins`, ``model_ensemble`` against
pysteps' STEPS with as many members, ``steps``), at every lead:

- ``crps``: CRPS below STEPS'; margin = the smallest ``steps - candidate`` (mm/h).
- ``roc``: ROC area at 1 mm/h above STEPS'; margin = the smallest difference.
- ``rank``: rank histogram at least as flat as STEPS' (reliability index at most STEPS');
  margin = the smallest ``steps - candidate``.
- ``spread``: spread-skill ratio within 0.8-1.2; margin = the smallest distance inside.
- ``median_csi``: the ensemble median's CSI at 1 mm/h above extrapolation's at every lead
  >= ``min_lead_minutes``. Leads where a score is undefined (no event: None/NaN) are skipped;
a goal whose reference forecaster is missing is left out.
"""

from __future__ import annotations

import math
from typing import Any

BIAS_RANGE = (0.7, 1.3)
GOALS = {
    "a": "MSE below extrapolation at every lead",
    "b": "CSI 1 mm/h above extrapolation at every lead >= 30 min",
    "c": "CSI 1 mm/h never below persistence",
    "d": "frequency bias 1 mm/h within 0.7-1.3 at every lead",
    "e": "CSI 1 mm/h at least the untrained advection prior's",
    "stretch": "CSI 1 mm/h above S-PROG at every lead >= 30 min",
}
_STRICT = ("a", "b", "stretch", "crps", "roc", "median_csi")
SPREAD_SKILL_RANGE = (0.8, 1.2)
ENSEMBLE_GOALS = {
    "crps": "CRPS below STEPS' at every lead",
    "roc": "ROC area 1 mm/h above STEPS' at every lead",
    "rank": "reliability index at most STEPS' at every lead",
    "spread": "spread-skill ratio within 0.8-1.2 at every lead",
    "median_csi": "median's CSI 1 mm/h above extrapolation at every lead >= 30 min",
}


def _defined(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def _worst(pairs: list[tuple[float, float]]) -> tuple[float, float] | None:
    """``(margin, lead minutes)`` of the smallest margin among the defined ones."""
    pairs = [(margin, lead) for margin, lead in pairs if _defined(margin)]
    return min(pairs) if pairs else None


def _difference(content: dict[str, Any], candidate: str, reference: str, metric: str,
                leads: list[int], relative: bool = False,
                lower_is_better: bool = False) -> tuple[float, float] | None:
    forecasters = content["forecasters"]
    if reference not in forecasters:
        return None
    mine = forecasters[candidate]["per_frame"][metric]
    theirs = forecasters[reference]["per_frame"][metric]
    pairs = []
    for index in leads:
        if not (_defined(mine[index]) and _defined(theirs[index])):
            continue
        better_when_lower = relative or lower_is_better
        margin = theirs[index] - mine[index] if better_when_lower else mine[index] - theirs[index]
        if relative:
            margin = margin / theirs[index] if theirs[index] else float("nan")
        pairs.append((margin, content["lead_minutes"][index]))
    return _worst(pairs)


def goal_margins(content: dict[str, Any], candidate: str = "model",
                 min_lead_minutes: float = 30.0) -> dict[str, dict[str, Any]]:
    """``{goal: {"holds", "margin", "worst_lead_minutes"}}`` of ``candidate`` in ``content``.

    Args:
      content: a ``metrics.json`` of the mm/h path (``forecasters``, ``lead_minutes``).
      candidate: the forecaster judged (``model``, ``model_pm``, ...).
      min_lead_minutes: the first lead of goals ``b`` and ``stretch``.
    """
    every = list(range(len(content["lead_minutes"])))
    late = [index for index in every if content["lead_minutes"][index] >= min_lead_minutes]
    found = {
        "a": _difference(content, candidate, "extrapolation", "mse_mmh", every, relative=True),
        "b": _difference(content, candidate, "extrapolation", "csi_1mmh", late),
        "c": _difference(content, candidate, "persistence", "csi_1mmh", every),
        "d": _bias_margin(content["forecasters"][candidate]["per_frame"]["bias_1mmh"],
                          content["lead_minutes"]),
        "e": _difference(content, candidate, "advection", "csi_1mmh", every),
        "stretch": _difference(content, candidate, "sprog", "csi_1mmh", late),
    }
    return _holding(found)


def ensemble_goal_margins(content: dict[str, Any], candidate: str = "model_ensemble",
                          min_lead_minutes: float = 30.0) -> dict[str, dict[str, Any]]:
    """Issue 30's goals of the ensemble ``candidate`` against ``steps``, as :func:`goal_margins`.

    Args:
      content: a ``metrics.json`` of an ensemble evaluation (``--ensemble_size``).
      candidate: the ensemble judged.
      min_lead_minutes: the first lead of goal ``median_csi``.
    """
    every = list(range(len(content["lead_minutes"])))
    late = [index for index in every if content["lead_minutes"][index] >= min_lead_minutes]
    found = {
        "crps": _difference(content, candidate, "steps", "crps_mmh", every,
                            lower_is_better=True),
        "roc": _difference(content, candidate, "steps", "roc_area_1mmh", every),
        "rank": _difference(content, candidate, "steps", "rank_reliability_index", every,
                            lower_is_better=True),
        "spread": _range_margin(content["forecasters"][candidate]["per_frame"]
                                ["spread_skill_ratio"], content["lead_minutes"],
                                SPREAD_SKILL_RANGE),
        "median_csi": _difference(content, candidate, "extrapolation", "csi_1mmh", late),
    }
    return _holding(found)


def _holding(found: dict[str, tuple[float, float] | None]) -> dict[str, dict[str, Any]]:
    return {goal: {"holds": margin > 0 if goal in _STRICT else margin >= 0,
                   "margin": margin, "worst_lead_minutes": lead}
            for goal, pair in found.items() if pair is not None for margin, lead in [pair]}


def _bias_margin(bias: list[Any], lead_minutes: list[float]) -> tuple[float, float] | None:
    return _range_margin(bias, lead_minutes, BIAS_RANGE)


def _range_margin(values: list[Any], lead_minutes: list[float],
                  bounds: tuple[float, float]) -> tuple[float, float] | None:
    low, high = bounds
    return _worst([(min(value - low, high - value), lead)
                   for value, lead in zip(values, lead_minutes, strict=True)
                   if _defined(value)])


def format_goals(margins_by_candidate: dict[str, dict[str, dict[str, Any]]],
                 goals: dict[str, str] | None = None) -> str:
    """A markdown table: one row per goal, one column per candidate (margin @ worst lead).

    ``goals``: ``{goal: text}`` of the rows (default :data:`GOALS`; :data:`ENSEMBLE_GOALS`).
    """
    names = list(margins_by_candidate)
    lines = ["| goal | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for goal, text in (goals or GOALS).items():
        cells = []
        for name in names:
            found = margins_by_candidate[name].get(goal)
            cells.append("n/a" if found is None else
                         f"{'met' if found['holds'] else 'missed'} {found['margin']:+.3f} "
                         f"@ {found['worst_lead_minutes']:g} min")
        lines.append(f"| {goal}: {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
