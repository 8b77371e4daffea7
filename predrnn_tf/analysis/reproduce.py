"""Runs a table's rows one at a time (resumable) and prints them beside the paper's numbers.

Each row trains through ``python -m predrnn_tf.train`` (which resumes from its work
directory) and is scored through ``python -m predrnn_tf.evaluate`` (the paper's metrics, the
official definitions); the baselines ``persistence`` and ``extrapolation`` go through the same
evaluation. A row is finished when ``OUTPUT_DIR/table{N}/{budget}/{row}/result.json`` exists;
a re-run skips finished rows and resumes an interrupted one from its last checkpoint. A row
whose setting (training flags, data, evaluation) equals a finished row of another table in the
same ``OUTPUT_DIR`` and budget (PredRNN-V2 is in Tables 1, 2 and 4; the baselines in all) is
not trained again: its result is copied, with ``reused_from`` naming the source.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from predrnn_tf import files
from predrnn_tf.analysis.tables import (
    BASELINES,
    BUDGETS,
    DATA_NOTES,
    EVALUATION_SEQUENCES,
    TABLES,
    Table,
    expected_hours,
    row_flags,
)
from predrnn_tf.data import schema
from predrnn_tf.errors import DataError

RESULT_FILENAME = "result.json"
Runner = Callable[[list[str]], None]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to run: the table, the budget, the data, where results go, extra evaluate flags."""

    table: Table
    budget: str
    data_dir: str
    output_dir: str
    evaluate_flags: tuple[str, ...] = ()

    def row_dir(self, name: str) -> str:
        return os.path.join(self.output_dir, f"table{self.table.number}", self.budget, name)


def run_command(command: list[str]) -> None:
    """Runs one step; a failure raises ``CalledProcessError`` (the row stays unfinished)."""
    subprocess.run(command, check=True)


def check_data(plan: Plan) -> None:
    """The table's dataset must exist in ``--data_dir``; DataError says what is expected."""
    name = BUDGETS[plan.table.dataset][plan.budget]["dataset_name"]
    if not plan.data_dir or not os.path.exists(schema.metadata_path(plan.data_dir, name)):
        raise DataError(f"table {plan.table.number} needs --data_dir with "
                        f"{DATA_NOTES[plan.table.dataset]}; {plan.data_dir or '(none)'} has no "
                        f"{name}-metadata.json")


def _flag(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    return f"--{name}={value}"


def train_command(plan: Plan, flags: dict[str, Any], workdir: str) -> list[str]:
    return [sys.executable, "-m", "predrnn_tf.train", f"--workdir={workdir}",
            f"--data_dir={plan.data_dir}"] + [_flag(name, value) for name, value in flags.items()]


def evaluate_command(plan: Plan, flags: dict[str, Any], output_dir: str, *,
                     workdir: str | None = None, baseline: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "predrnn_tf.evaluate", f"--output_dir={output_dir}"]
    if workdir:
        command.append(f"--workdir={workdir}")
    else:
        command += [f"--baseline={baseline}", f"--data_dir={plan.data_dir}",
                    f"--dataset_name={flags['dataset_name']}",
                    f"--input_length={flags['input_length']}"]
    output_length = plan.table.output_length or flags["total_length"] - flags["input_length"]
    command.append(f"--output_length={output_length}")
    if EVALUATION_SEQUENCES[plan.budget]:
        command.append(f"--num_sequences={EVALUATION_SEQUENCES[plan.budget]}")
    return command + list(plan.evaluate_flags)


def _read_metrics(output_dir: str) -> dict[str, Any]:
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        result = json.load(handle)
    return {"metrics": result["metrics"], "skipped": result.get("skipped", {}),
            "num_sequences": result.get("num_sequences")}


def run_row(plan: Plan, name: str, runner: Runner = run_command) -> dict[str, Any]:
    """Trains (or resumes) and scores one row, or one baseline; returns its result."""
    row_dir = plan.row_dir(name)
    path = os.path.join(row_dir, RESULT_FILENAME)
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    if name in BASELINES:
        flags = BUDGETS[plan.table.dataset][plan.budget]
    else:
        row = next(row for row in plan.table.rows if row.name == name)
        flags = row_flags(plan.table, row, plan.budget)
    setting = row_setting(plan, name, flags)
    twin_path = find_finished_twin(plan, setting)
    if twin_path:
        with open(twin_path) as handle:
            result = {**json.load(handle), "name": name, "reused_from": twin_path}
        os.makedirs(row_dir, exist_ok=True)
    else:
        result = {"name": name, "budget": plan.budget, "flags": flags, "setting": setting,
                  **_train_and_score(plan, name, flags, row_dir, runner)}
    files.write_json(path, result)
    return result


def _train_and_score(plan: Plan, name: str, flags: dict[str, Any], row_dir: str,
                     runner: Runner) -> dict[str, Any]:
    """Trains the row (a baseline needs no training) and returns its evaluation's metrics."""
    evaluation_dir = os.path.join(row_dir, "evaluation")
    if name in BASELINES:
        runner(evaluate_command(plan, flags, evaluation_dir, baseline=name))
    else:
        workdir = os.path.join(row_dir, "workdir")
        runner(train_command(plan, flags, workdir))
        runner(evaluate_command(plan, flags, evaluation_dir, workdir=workdir))
    return _read_metrics(evaluation_dir)


def row_setting(plan: Plan, name: str, flags: dict[str, Any]) -> dict[str, Any]:
    """Everything a row's numbers depend on (two rows with equal settings score the same)."""
    setting = {"flags": flags, "baseline": name if name in BASELINES else None,
               "data_dir": os.path.abspath(plan.data_dir),
               "output_length": plan.table.output_length,
               "num_sequences": EVALUATION_SEQUENCES[plan.budget],
               "evaluate_flags": list(plan.evaluate_flags)}
    return json.loads(json.dumps(setting))  # as read back from a result.json


def find_finished_twin(plan: Plan, setting: dict[str, Any]) -> str | None:
    """A finished row of another table (same output directory and budget) with ``setting``."""
    pattern = os.path.join(plan.output_dir, "table*", plan.budget, "*", RESULT_FILENAME)
    own = os.path.join(plan.output_dir, f"table{plan.table.number}")
    for path in sorted(glob.glob(pattern)):
        if path.startswith(own + os.sep):
            continue
        with open(path) as handle:
            result = json.load(handle)
        if result.get("setting") == setting and "reused_from" not in result:
            return path
    return None


def run_table(plan: Plan, names: list[str] | None = None, runner: Runner = run_command,
              on_row: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Runs the rows (all, or ``names``) one at a time; returns every finished result.

    A baseline that cannot run (e.g. extrapolation without pysteps) is recorded as missing
    and does not stop the table.
    """
    check_data(plan)
    wanted = names or [row.name for row in plan.table.rows] + list(BASELINES)
    known = [row.name for row in plan.table.rows] + list(BASELINES)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ValueError(f"--rows: unknown {unknown} for table {plan.table.number}; "
                         f"expected some of {known}")
    results = {}
    for name in wanted:
        if on_row:
            on_row(name)
        try:
            results[name] = run_row(plan, name, runner)
        except subprocess.CalledProcessError:
            if name not in BASELINES:
                raise
            results[name] = {"name": name, "missing": "its evaluation failed (for "
                             "extrapolation: is pysteps installed?)"}
    return results


def _cell(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"


def format_table(plan: Plan, results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one line per row, our metric beside the paper's, with the budget stated."""
    table = plan.table
    base = BUDGETS[table.dataset][plan.budget]
    header = " | ".join(f"{metric} (ours / paper)" for metric in table.metrics)
    lines = [f"Table {table.number}: {table.title}. Budget `{plan.budget}`: "
             f"{base['max_iterations']} iterations, num_hidden {base['num_hidden']}, "
             f"filter {base['filter_size']}, lr {base['lr']:g}, batch {base['batch_size']}"
             + (f"; scored on {EVALUATION_SEQUENCES[plan.budget]} test sequences"
                if EVALUATION_SEQUENCES[plan.budget] else "; the whole test set")
             + ". Paper: 80,000 iterations (4 x 128).", "",
             f"| model | {header} |", "|---|" + "---|" * len(table.metrics)]
    labels = {row.name: row.label for row in table.rows}
    papers = {row.name: row.paper for row in table.rows}
    for name in [row.name for row in table.rows] + list(BASELINES):
        result = results.get(name)
        cells = []
        for metric in table.metrics:
            ours = "not run"
            if result and "missing" in result:
                ours = "n/a (" + result["missing"] + ")"
            elif result:
                ours = _cell(result["metrics"].get(metric))
            paper = papers.get(name, {}).get(metric) if name in papers else None
            paper_text = "-" if name in BASELINES else (
                _cell(paper) if paper is not None else "n/a (not found)")
            cells.append(f"{ours} / {paper_text}")
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
    hours = expected_hours(table, plan.budget)
    if hours is not None:
        lines += ["", f"Expected training time of the budget on 2 CPU cores: about "
                      f"{hours:.1f} h (plus evaluation)."]
    return "\n".join(lines)


def table_of(number: int) -> Table:
    if number not in TABLES:
        raise ValueError(f"--table must be one of {sorted(TABLES)}, got {number}")
    return TABLES[number]
