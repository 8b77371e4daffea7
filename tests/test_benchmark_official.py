"""Smoke test of tools/benchmark_official.py at tiny size (the real run is a benchmark)."""

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "tools", "benchmark_official.py")


def test_tiny_run_prints_one_row_per_framework_and_precision():
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--model_name=predrnn_v2", "--num_hidden=4,4",
         "--filter_size=3", "--patch_size=4", "--img_width=16", "--img_channel=1",
         "--input_length=2", "--total_length=4", "--batch_size=2", "--steps=1",
         "--warmup_steps=1", "--peak_repeats=1", "--rounds=1", "--torch_threads=1"],
        capture_output=True, text=True, env=environment, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, skipped = {}, {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[1][:1].isdigit():
            rows[cells[0]] = cells
        elif line.startswith("| ") and cells[1].startswith("skipped (emulated"):
            skipped[cells[0]] = cells
    bfloat16 = "TF predrnn_tf / mixed_bfloat16"
    expected = {"TF predrnn_tf / float32", "TF predrnn_tf / float32 --remat",
                "TF predrnn_tf / float32 forecast", "PyTorch official / float32"}
    if _native_bfloat16():
        expected.add(bfloat16)
    else:  # emulated bfloat16: only its conv peaks are measured, labelled as such
        emulated = {bfloat16 + " (emulated: no AVX512_BF16/AMX)",
                    "PyTorch official / bfloat16 autocast (emulated: no AVX512_BF16/AMX)"}
        assert set(skipped) == emulated, result.stdout
        assert all(float(cells[4]) > 0 for cells in skipped.values())
    assert set(rows) >= expected, result.stdout
    assert re.search(r"cpu kind \w+, flags: .*TF convolutions: (oneDNN|Eigen)", result.stdout)
    official = rows["PyTorch official / float32"]
    assert official[2] == "1.00x"
    for name, cells in rows.items():
        seconds = float(cells[1])
        assert seconds > 0 and float(cells[4]) > 0, name
        if name.endswith("forecast"):
            assert cells[2] == "n/a"
            continue
        speedup = float(cells[2].rstrip("x"))
        assert speedup == pytest.approx(float(official[1]) / seconds, rel=0.02, abs=0.01), name
    assert re.search(r"load average \(1/5/15 min\) before [\d.]+/[\d.]+/[\d.]+", result.stdout)
    goals = ["TF float32 update at", "never slower", "--remat costs", "TF float32 forecast at"]
    if _native_bfloat16():
        goals.append("TF mixed_bfloat16 update at")
    for goal in goals:
        assert goal in result.stdout, goal


def _native_bfloat16() -> bool:
    with open("/proc/cpuinfo") as handle:
        text = handle.read()
    return "avx512_bf16" in text or "amx_bf16" in text
