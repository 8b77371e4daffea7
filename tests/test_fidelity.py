"""tools/fidelity.py builds our trainer's command from the comparison's configuration."""

import dataclasses

from predrnn_tf.config import Config, validate_config
from tests.tool_loading import load_tool


def _command_flags(command: list[str]) -> dict[str, str]:
    """``{name: value}`` of the ``--name=value`` arguments after ``-m predrnn_tf.train``."""
    assert command[1:3] == ["-m", "predrnn_tf.train"], command
    return dict(argument[2:].split("=", 1) for argument in command[3:])


def _config(**changes) -> Config:
    tool = load_tool("fidelity")
    return validate_config(Config(**{**tool.ISSUE_FLAGS, "num_hidden": (16, 16, 16)},
                                  data_dir="/data/mnist", seed=3, max_iterations=150,
                                  **changes))


def test_deterministic_choice_reaches_our_trainer():
    tool = load_tool("fidelity")
    deterministic = _command_flags(tool.ours_command(_config(deterministic=True), "/w"))
    default = _command_flags(tool.ours_command(_config(), "/w"))
    assert deterministic["deterministic"] == "true"
    assert default["deterministic"] == "false"
    assert {**deterministic, "deterministic": "false"} == default


def test_command_carries_the_configuration_it_was_built_from():
    tool = load_tool("fidelity")
    config = _config(deterministic=True, keras_adam=True)
    flags = _command_flags(tool.ours_command(config, "/runs/ours-seed3"))
    fields = {field.name for field in dataclasses.fields(Config)}
    assert set(flags) - fields == {"workdir"}, "a flag our trainer has no field for"
    assert flags["workdir"] == "/runs/ours-seed3"
    for name, value in flags.items():
        if name in ("workdir", "test_interval", "snapshot_interval", "num_test_batches",
                    "display_interval"):
            continue
        expected = getattr(config, name)
        if isinstance(expected, tuple):
            expected = ",".join(map(str, expected))
        elif isinstance(expected, bool):
            expected = str(expected).lower()
        assert value == str(expected), (name, value, expected)
