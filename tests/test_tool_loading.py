"""Tests of tests/tool_loading.py: tools load beside command modules that share flag names."""

from absl import flags

from tests.tool_loading import REPO, defined_flag_names, load_tool, unload_tools


def test_defined_flag_names_reads_positional_and_keyword_names(tmp_path):
    path = tmp_path / "tool.py"
    path.write_text('from absl import flags\n'
                    'A = flags.DEFINE_integer("alpha", 1, "a")\n'
                    'flags.DEFINE_enum(name="beta", default="x", enum_values=["x"], help="b")\n'
                    'print("gamma")\n')
    assert defined_flag_names(str(path)) == {"alpha", "beta"}


def test_a_tool_loads_beside_a_command_sharing_a_flag_and_gives_it_back():
    from predrnn_tf.cli import export  # defines --ensemble_size (0), as the LOSO tool does (12)

    assert "ensemble_size" in defined_flag_names(f"{REPO}/tools/leave_one_source_out.py")
    command_flag = flags.FLAGS["ensemble_size"]
    assert command_flag.default == 0 and export._ENSEMBLE_SIZE.name == "ensemble_size"
    load_tool("leave_one_source_out")
    assert flags.FLAGS["ensemble_size"].default == 12
    unload_tools()
    assert flags.FLAGS["ensemble_size"] is command_flag
    assert "ensemble_noise_grid" not in flags.FLAGS
