"""The leave-one-source-out tool scales the recipe's sampling schedule with its budget."""

import functools
import importlib.util
import os

_TOOL = os.path.join(os.path.dirname(__file__), "..", "tools", "leave_one_source_out.py")


@functools.cache
def _load_tool():
    """The tool's module, loaded once (its absl flags can be defined only once)."""
    spec = importlib.util.spec_from_file_location("leave_one_source_out", _TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECIPE = """# a recipe
--max_iterations=3000
--r_sampling_step_1=500
--r_sampling_step_2=2000
--r_exp_alpha=300
--lr=0.001
"""


def test_schedule_scales_with_the_budget():
    tool = _load_tool()
    flags = tool.scaled_schedule_flags(RECIPE, 600, [])
    assert flags == ["--r_sampling_step_1=100", "--r_sampling_step_2=400", "--r_exp_alpha=60"]


def test_explicit_schedule_flag_is_kept_and_recipe_without_budget_is_left_alone():
    tool = _load_tool()
    flags = tool.scaled_schedule_flags(RECIPE, 300, ["--r_exp_alpha=7", "--frame_loss=mse"])
    assert flags == ["--r_sampling_step_1=50", "--r_sampling_step_2=200"]
    assert tool.scaled_schedule_flags("--lr=0.1\n", 300, []) == []
