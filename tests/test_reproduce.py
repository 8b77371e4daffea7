"""The table driver: rows one at a time, resumable, the paper's numbers beside ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from predrnn_tf.analysis import reproduce, tables
from predrnn_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_dataset(data_dir, name="mnist"):
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, f"{name}-metadata.json"), "w") as handle:
        json.dump({"name": name}, handle)


class FakeRunner:
    """Records commands; an evaluate command writes a metrics.json with a made-up MSE."""

    def __init__(self, fail_on=None):
        self.commands = []
        self.fail_on = fail_on

    def __call__(self, command):
        self.commands.append(command)
        if self.fail_on and any(self.fail_on in part for part in command):
            raise subprocess.CalledProcessError(1, command)
        if "predrnn_tf.evaluate" in command:
            output = next(part.split("=", 1)[1] for part in command
                          if part.startswith("--output_dir="))
            os.makedirs(output, exist_ok=True)
            with open(os.path.join(output, "metrics.json"), "w") as handle:
                json.dump({"metrics": {"mse": 10.0 * len(self.commands), "ssim": 0.5},
                           "num_sequences": 4}, handle)


def test_rows_run_one_at_a_time_and_resume(tmp_path):
    data_dir = str(tmp_path / "data")
    fake_dataset(data_dir)
    plan = reproduce.Plan(tables.TABLES[3], "small", data_dir, str(tmp_path / "out"))
    runner = FakeRunner(fail_on="--baseline=extrapolation")
    results = reproduce.run_table(plan, runner=runner)
    kinds = [("train" if "predrnn_tf.train" in c else "evaluate") for c in runner.commands]
    assert kinds == ["train", "evaluate", "train", "evaluate", "evaluate", "evaluate"]
    assert "--model_name=mim" in runner.commands[0] and "--decouple_beta=0.0" in \
        runner.commands[0] and "--decouple_beta=0.1" in runner.commands[2]
    assert "--max_iterations=1000" in runner.commands[0]
    assert "--num_sequences=500" in runner.commands[1]
    assert "missing" in results["extrapolation"]
    again = FakeRunner()
    results_again = reproduce.run_table(plan, runner=again)
    # Finished rows are kept; only the failed baseline is tried again.
    assert len(again.commands) == 1 and "--baseline=extrapolation" in again.commands[0]
    assert results_again["mim"] == results["mim"]


def test_a_row_finished_in_another_table_is_reused_not_trained_again(tmp_path):
    data_dir = str(tmp_path / "data")
    fake_dataset(data_dir)
    output_dir = str(tmp_path / "out")
    reproduce.run_table(reproduce.Plan(tables.TABLES[1], "small", data_dir, output_dir),
                        runner=FakeRunner())
    runner = FakeRunner()
    results = reproduce.run_table(
        reproduce.Plan(tables.TABLES[2], "small", data_dir, output_dir), runner=runner)
    # Only the two ablations train: "full" is Table 1's PredRNN-V2, the baselines are shared.
    trained = [c for c in runner.commands if "predrnn_tf.train" in c]
    assert len(trained) == 2 and len(runner.commands) == 4
    assert results["full"]["reused_from"].endswith(
        os.path.join("table1", "small", "predrnn_v2", "result.json"))
    first = json.load(open(results["full"]["reused_from"]))
    assert results["full"]["metrics"] == first["metrics"] and results["full"]["name"] == "full"
    assert "reused_from" in results["persistence"]
    # Other data: nothing is reused.
    other_data = str(tmp_path / "other")
    fake_dataset(other_data)
    runner = FakeRunner()
    reproduce.run_table(reproduce.Plan(tables.TABLES[4], "small", other_data, output_dir),
                        runner=runner)
    assert sum("predrnn_tf.train" in c for c in runner.commands) == 2


def test_markdown_puts_the_papers_numbers_beside_ours(tmp_path):
    plan = reproduce.Plan(tables.TABLES[3], "small", "", str(tmp_path))
    results = {"mim": {"metrics": {"mse": 61.234, "ssim": 0.81234, "lpips": None}},
               "persistence": {"metrics": {"mse": 200.0, "ssim": 0.6}}}
    text = reproduce.format_table(plan, results)
    assert "Budget `small`: 1000 iterations" in text and "80,000 iterations" in text
    assert "| MIM | 61.2 / 52.0 | 0.812 / n/a (not found) | n/a / n/a (not found) |" in text
    assert "| MIM + decoupling loss | not run / 47.9 |" in text
    assert "| persistence | 200.0 / - |" in text and "| extrapolation | not run / - |" in text
    assert "Expected training time" in text


@pytest.mark.parametrize("number, expected", [(5, "KTH actions"), (6, "dBZ value_mapping"),
                                              (1, "Moving MNIST")])
def test_a_missing_dataset_says_what_is_expected(tmp_path, number, expected):
    plan = reproduce.Plan(tables.TABLES[number], "small", str(tmp_path), str(tmp_path / "o"))
    with pytest.raises(DataError, match=expected):
        reproduce.run_table(plan, runner=FakeRunner())


def test_unknown_rows_and_budgets_are_refused(tmp_path):
    fake_dataset(str(tmp_path))
    plan = reproduce.Plan(tables.TABLES[2], "small", str(tmp_path), str(tmp_path / "o"))
    with pytest.raises(ValueError, match="unknown \\['nope'\\]"):
        reproduce.run_table(plan, ["nope"], runner=FakeRunner())
    with pytest.raises(ValueError, match="--budget must be one of"):
        tables.row_flags(tables.TABLES[2], tables.TABLES[2].rows[0], "huge")


def test_scheduled_sampling_rows_end_their_schedule_like_rss():
    flags = tables.row_flags(tables.TABLES[4], tables.TABLES[4].rows[0], "small")
    assert flags["reverse_scheduled_sampling"] is False
    assert flags["sampling_stop_iter"] == 750 and flags["sampling_changing_rate"] == 1 / 750


def test_smoke_budget_end_to_end(tmp_path):
    """The real commands on a tiny Moving MNIST: a row and the persistence baseline."""
    data_dir = str(tmp_path / "data")
    made = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "make_moving_mnist.py"),
         f"--output_dir={data_dir}", "--num_train=16", "--num_test=8", "--image_size=32",
         "--total_length=6", "--sequences_per_shard=8"],
        capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "reproduce.py"), "--table=1",
         "--budget=smoke", f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'out'}",
         "--rows=predrnn_v2,persistence"], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| PredRNN-V2 |" in completed.stdout and "/ 48.4 |" in completed.stdout
    assert "| ConvLSTM | not run / n/a (not found)" in completed.stdout
    result = json.loads((tmp_path / "out/table1/smoke/predrnn_v2/result.json").read_text())
    assert result["metrics"]["mse"] > 0 and result["flags"]["max_iterations"] == 2
    assert (tmp_path / "out/table1/smoke/table.md").exists()
