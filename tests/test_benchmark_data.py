"""Smoke test of tools/benchmark_data.py, the recipe mode at tiny size (the real run is a
benchmark): one markdown table, the pipeline rows against the training row, CPU and load."""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "tools", "benchmark_data.py")
TINY_RECIPE = """--model_name=predrnn_v2
--img_width=64
--img_channel=1
--patch_size=4
--num_hidden=4,4
--filter_size=3
--input_length=5
--total_length=15
--batch_size=2
--augment=true
"""


def _run(*args):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=environment, cwd=REPO_ROOT, timeout=600)


def _table_rows(stdout):
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[2][:1].isdigit():
            rows[cells[0]] = cells
    return rows


def test_the_recipe_table_compares_the_mixed_pipeline_with_training(tmp_path):
    recipe = tmp_path / "tiny.flags"
    recipe.write_text(TINY_RECIPE)
    result = _run(f"--recipe_flagfile={recipe}", "--sources=a,b,c", "--source_records=12",
                  "--reader_batches=3", "--train_steps=1", "--shuffle_buffer=8")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _table_rows(result.stdout)
    single = rows["one source (a), augment=True, wet_sampling=False"]
    mixture = rows["3-source mixture (a,b,c), augment=True, wet_sampling=False"]
    training = next(cells for name, cells in rows.items() if name.startswith("training update"))
    assert single[1] == mixture[1] == training[1] == "2 x 15x64x64x1"  # cropped 80 -> 64
    for cells in (single, mixture):
        ratio = float(cells[2]) / float(training[2])
        assert abs(float(cells[3].rstrip("x")) - ratio) <= max(1.0, 0.01 * ratio), cells
        assert cells[4].startswith(">= 20x ")
    assert "lscpu flags:" in result.stdout and "bfloat16:" in result.stdout
    assert "Load average (1/5/15 min):" in result.stdout


def test_a_mixture_of_one_source_is_a_one_line_error():
    result = _run("--sources=a", "--reader_batches=1", "--train_steps=0")
    assert result.returncode != 0
    assert "--sources: a mixture needs at least 2 sources" in result.stderr
    assert "Traceback" not in result.stderr
