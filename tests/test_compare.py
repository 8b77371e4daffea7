"""Tests for tools/compare.py."""

import json
import os
import subprocess
import sys

import cv2
import pytest

from tests.tool_loading import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tools", "compare.py")


@pytest.fixture(scope="module")
def compare():
    return load_tool("compare")


def _write_run(folder, name, mse, csi=None, output_length=3):
    os.makedirs(folder, exist_ok=True)
    metrics = {"mse": sum(mse) / len(mse), "ssim": 0.5}
    per_frame = {"mse": mse, "ssim": [0.5] * len(mse)}
    if csi is not None:
        metrics["csi_30"], per_frame["csi_30"] = csi, [csi] * len(mse)
    run = {"name": name, "dataset": "tiny", "num_sequences": 4, "output_length": output_length,
           "metrics": metrics, "per_frame": per_frame,
           "skipped": {"lpips": "no weights"}}
    path = os.path.join(folder, "metrics.json")
    with open(path, "w") as handle:
        json.dump(run, handle)
    return path


def test_markdown_table_lists_runs_and_metrics(compare, tmp_path):
    paths = [_write_run(str(tmp_path / "a"), "predrnn_v2", [1.0, 2.0, 3.0], csi=0.75),
             _write_run(str(tmp_path / "b"), "persistence", [2.0, 4.0, 6.0])]
    runs = [compare.load_run(path) for path in paths]
    labels = compare.run_labels(paths, runs)
    names = compare.choose_metrics(runs, "")
    assert names == ["mse", "ssim", "csi_30"]
    lines = compare.markdown_table(labels, runs, names + ["lpips"]).splitlines()
    assert lines[0] == "| run | sequences | frames | mse | ssim | csi_30 | lpips |"
    assert lines[2] == "| predrnn_v2 | 4 | 3 | 2 | 0.5 | 0.75 | skipped |"
    assert lines[3] == "| persistence | 4 | 3 | 4 | 0.5 | n/a | skipped |"


def test_duplicate_names_get_folder_and_differences_are_noted(compare, tmp_path):
    paths = [_write_run(str(tmp_path / "run1"), "predrnn_v2", [1.0, 2.0]),
             _write_run(str(tmp_path / "run2"), "predrnn_v2", [1.0, 2.0, 3.0], output_length=3)]
    runs = [compare.load_run(path) for path in paths]
    labels = compare.run_labels(paths, runs)
    assert labels == ["predrnn_v2 (run1)", "predrnn_v2 (run2)"]
    runs[0]["output_length"] = 2
    assert any("output_length" in note for note in compare.consistency_notes(labels, runs))


def test_command_line_writes_plot_and_rejects_bad_files(tmp_path):
    paths = [_write_run(str(tmp_path / "a"), "model", [1.0, 2.0, 3.0]),
             _write_run(str(tmp_path / "b"), "persistence", [2.0, 4.0, 6.0])]
    output = str(tmp_path / "plots" / "comparison.png")
    completed = subprocess.run([sys.executable, SCRIPT, *paths, f"--output={output}"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "| model | 4 | 3 | 2 | 0.5 |" in completed.stdout
    image = cv2.imread(output)
    assert image is not None and image.shape[1] >= 800  # two charts side by side
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    completed = subprocess.run([sys.executable, SCRIPT, str(bad)], capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 2
    assert "is not a metrics.json" in completed.stderr and "Traceback" not in completed.stderr
