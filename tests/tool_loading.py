"""Loads a tool (``tools/NAME.py``) as a module in the test process, for tests of its functions.

Every tool defines its absl flags on the global ``FLAGS`` when it is loaded, and a tool may
share a flag name with another tool (``--output_dir``, ``--data_dir``) or with a command module
the test process has imported (``predrnn_tf.cli.export``, imported by ``test_export``, defines
``--ensemble_size`` and ``--precision``): loading it then raised ``DuplicateFlagError`` when the
test files ran in one process (they passed alone). :func:`load_tool` keeps one tool loaded at a
time: loading another first removes the flags of the one before, and a flag of a non-tool module
that the tool's flag of the same name replaces is put back when the tool is unloaded, so test
files may load their tools in any order beside any command module.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from types import ModuleType

from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_loaded: dict[str, tuple[ModuleType, set[str]]] = {}
# Flags of other modules that the loaded tool's flags of the same name stand in for.
_shadowed: dict[str, flags.Flag] = {}


def defined_flag_names(path: str) -> set[str]:
    """Names of the flags a Python file defines with ``flags.DEFINE_*("name", ...)``.

    Args:
      path: the file.

    Returns:
      The literal names of its ``DEFINE_*`` calls (positional or ``name=``).
    """
    with open(path) as source:
        tree = ast.parse(source.read())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if not function.startswith("DEFINE"):
            continue
        arguments = list(node.args[:1]) + [keyword.value for keyword in node.keywords
                                           if keyword.arg == "name"]
        names.update(argument.value for argument in arguments
                     if isinstance(argument, ast.Constant) and isinstance(argument.value, str))
    return names


def unload_tools() -> None:
    """Removes the loaded tool's flags and module, and puts back the flags they stood in for."""
    for other, (_, defined) in list(_loaded.items()):
        for flag in defined & set(flags.FLAGS):
            delattr(flags.FLAGS, flag)
        sys.modules.pop(f"tool_{other}", None)
        del _loaded[other]
    for name, flag in _shadowed.items():
        flags.FLAGS[name] = flag
    _shadowed.clear()


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as the module ``tool_<name>``, loaded once while it is the current one.

    Args:
      name: the tool's file name without ``.py``, e.g. ``"fidelity"``.

    Returns:
      The loaded module (its flags are defined, not parsed).
    """
    if name in _loaded:
        return _loaded[name][0]
    unload_tools()
    path = os.path.join(REPO, "tools", f"{name}.py")
    for flag in defined_flag_names(path) & set(flags.FLAGS):
        _shadowed[flag] = flags.FLAGS[flag]
        delattr(flags.FLAGS, flag)
    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location(f"tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    _loaded[name] = (module, set(flags.FLAGS) - before)
    return module
