"""Loads a tool (``tools/NAME.py``) as a module in the test process, for tests of its functions.

Every tool defines its absl flags on the global ``FLAGS`` when it is loaded, and two tools that
share a flag name (``--output_dir``, ``--data_dir``) cannot be loaded side by side: the second
raised ``DuplicateFlagError`` when the test files ran in one process (they passed alone).
:func:`load_tool` keeps one tool loaded at a time: loading another first removes the flags of
the one before, so test files may load their tools in any order.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_loaded: dict[str, tuple[ModuleType, set[str]]] = {}


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as the module ``tool_<name>``, loaded once while it is the current one.

    Args:
      name: the tool's file name without ``.py``, e.g. ``"fidelity"``.

    Returns:
      The loaded module (its flags are defined, not parsed).
    """
    if name in _loaded:
        return _loaded[name][0]
    for other, (_, defined) in list(_loaded.items()):
        for flag in defined & set(flags.FLAGS):
            delattr(flags.FLAGS, flag)
        sys.modules.pop(f"tool_{other}", None)
        del _loaded[other]
    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location(f"tool_{name}",
                                                  os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    _loaded[name] = (module, set(flags.FLAGS) - before)
    return module
