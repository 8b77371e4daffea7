"""The leave-one-source-out tool scales the recipe's sampling schedule with its budget."""

import pytest
from absl import flags

from tests.tool_loading import REPO, defined_flag_names, load_tool, unload_tools

RECIPE = """# a recipe
--max_iterations=3000
--r_sampling_step_1=500
--r_sampling_step_2=2000
--r_exp_alpha=300
--lr=0.001
"""


def test_schedule_scales_with_the_budget():
    tool = load_tool("leave_one_source_out")
    flags = tool.scaled_schedule_flags(RECIPE, 600, [])
    assert flags == ["--r_sampling_step_1=100", "--r_sampling_step_2=400", "--r_exp_alpha=60"]


def test_explicit_schedule_flag_is_kept_and_recipe_without_budget_is_left_alone():
    tool = load_tool("leave_one_source_out")
    flags = tool.scaled_schedule_flags(RECIPE, 300, ["--r_exp_alpha=7", "--frame_loss=mse"])
    assert flags == ["--r_sampling_step_1=50", "--r_sampling_step_2=200"]
    assert tool.scaled_schedule_flags("--lr=0.1\n", 300, []) == []


def test_a_fold_trained_to_its_last_iteration_is_not_trained_again(tmp_path):
    import tensorflow as tf

    from predrnn_tf import checkpoints

    tool = load_tool("leave_one_source_out")
    workdir = str(tmp_path / "run")
    assert not tool.finished_training(str(tmp_path / "missing"), 200)
    manager = checkpoints.make_manager(tf.train.Checkpoint(step=tf.Variable(1)), workdir)
    manager.save(checkpoint_number=100)
    assert not tool.finished_training(workdir, 200)  # stopped early: resume it
    manager.save(checkpoint_number=200)
    assert tool.finished_training(workdir, 200)
    assert not tool.finished_training(workdir, 600)  # a larger budget trains on


def test_a_bad_noise_grid_is_refused_in_one_line_before_anything_is_written(tmp_path):
    import os
    import subprocess
    import sys

    from tests.tool_loading import REPO

    output = tmp_path / "out"
    finished = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "leave_one_source_out.py"),
         f"--data_root={tmp_path}", f"--output_dir={output}", "--ensemble_noise_grid=0,-1"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    errors = [line for line in finished.stderr.splitlines() if line.startswith("error:")]
    assert finished.returncode != 0 and "Traceback" not in finished.stderr, finished.stderr
    assert errors == [finished.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("error: --ensemble_noise_grid: '-1' is not a noise"), errors
    assert not output.exists()


def test_a_reused_workdir_trained_for_another_noise_is_refused(tmp_path):
    import dataclasses

    from predrnn_tf import files
    from predrnn_tf.config import Config

    tool = load_tool("leave_one_source_out")
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = Config(ensemble_loss="fair_crps", ensemble_noise_std=0.25, advection_prior=True,
                    residual_frames=True)
    files.write_json(str(workdir / "config.json"), dataclasses.asdict(config))
    tool.check_trained_noise(str(workdir), 0.25)
    with pytest.raises(RuntimeError, match="--ensemble_noise_std=0.25, not fair_crps and 0.5"):
        tool.check_trained_noise(str(workdir), 0.5)


def test_defined_flag_names_reads_positional_and_keyword_names(tmp_path):
    path = tmp_path / "tool.py"
    path.write_text('from absl import flags\n'
                    'A = flags.DEFINE_integer("alpha", 1, "a")\n'
                    'flags.DEFINE_enum(name="beta", default="x", enum_values=["x"], help="b")\n'
                    'print("gamma")\n')
    assert defined_flag_names(str(path)) == {"alpha", "beta"}


def test_the_tool_loads_beside_a_command_sharing_a_flag_and_gives_it_back():
    from predrnn_tf.cli import export  # defines --ensemble_size (0), as the LOSO tool does (12)

    unload_tools()  # another test may have loaded the tool already
    assert "ensemble_size" in defined_flag_names(f"{REPO}/tools/leave_one_source_out.py")
    command_flag = flags.FLAGS["ensemble_size"]
    assert command_flag.default == 0 and export._ENSEMBLE_SIZE.name == "ensemble_size"
    load_tool("leave_one_source_out")
    assert flags.FLAGS["ensemble_size"].default == 12
    unload_tools()
    assert flags.FLAGS["ensemble_size"] is command_flag
    assert "ensemble_noise_grid" not in flags.FLAGS
