"""The package's layout rules, read from the source (no import of the package needed).

Each folder of ``predrnn_tf/`` may import only the areas listed in ``ALLOWED`` (the map in
BUILD.md, "Package map"); only ``cli/`` reads absl flags; tools import the installed package
without touching ``sys.path`` and without private names; files stay under ``MAX_FILE_LINES``
and functions under ``MAX_FUNCTION_LINES`` unless ``LONG_FUNCTIONS`` gives the reason.
"""

from __future__ import annotations

import ast
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = REPO / "predrnn_tf"

CORE = {"config", "errors", "files", "units", "checkpoints"}
# area -> the areas it may import (besides itself). Core modules are areas of their own.
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "units": {"errors"},
    "config": {"errors", "files"},
    "layers": {"errors"},
    "models": {"config", "errors", "units", "layers"},
    "checkpoints": {"config", "errors", "files", "models", "layers"},
    "data": {"config", "errors", "files", "units"},
    "evaluation": {"config", "errors", "files", "units", "checkpoints", "models", "layers"},
    "serving": {"config", "errors", "files", "units", "checkpoints", "models", "layers"},
    "interop": {"config", "errors", "files", "checkpoints", "models", "layers"},
    "training": {"config", "errors", "files", "units", "checkpoints", "models", "layers",
                 "data", "evaluation"},
    "inference": {"config", "errors", "files", "units", "checkpoints", "models", "layers",
                  "data", "evaluation", "serving"},
    "analysis": {"config", "errors", "files", "units", "checkpoints", "models", "layers",
                 "data", "evaluation", "training"},
    "cli": {"*"},
    "package": {"*"},  # predrnn_tf/__init__.py and the predrnn_tf.train/evaluate/export aliases
}
# areas that must not import absl at all (not even absl.logging)
NO_ABSL = {"errors", "files", "units", "config", "layers", "models", "checkpoints"}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 50
# "path:function" -> why it is longer than MAX_FUNCTION_LINES.
LONG_FUNCTIONS: dict[str, str] = {}


def package_files() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def area_of(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    if len(parts) > 1:
        return parts[0]
    stem = path.stem
    return stem if stem in CORE else "package"


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Every module named by an import statement (also inside functions), with its line."""
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append((node.module, node.lineno))
            modules += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return modules


def target_area(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "predrnn_tf" or len(parts) == 1:
        return None
    return parts[1]


def parse(path: pathlib.Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def test_the_rules_cover_every_folder():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(ALLOWED), f"folders without import rules: {folders - set(ALLOWED)}"
    for folder in folders:
        docstring = ast.get_docstring(parse(PACKAGE / folder / "__init__.py"))
        assert docstring and "import" in docstring, (
            f"predrnn_tf/{folder}/__init__.py must say what the folder owns and may import")


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_follow_the_package_map(path):
    area = area_of(path)
    allowed = ALLOWED[area]
    broken = []
    for module, line in imported_modules(parse(path)):
        target = target_area(module)
        known = target in ALLOWED or target in CORE
        if target and known and target != area and "*" not in allowed and target not in allowed:
            broken.append(f"line {line}: {area} imports {module}")
        if module.startswith("absl") and area in NO_ABSL:
            broken.append(f"line {line}: {area} imports {module}")
        if module in ("absl.flags", "absl.app") and area not in ("cli", "package"):
            broken.append(f"line {line}: only cli/ reads flags, but {area} imports {module}")
    assert not broken, "\n".join(broken)


def test_nothing_below_the_entry_points_reads_flags():
    readers = [str(p.relative_to(REPO)) for p in package_files()
               if area_of(p) not in ("cli", "package") and "FLAGS" in p.read_text()]
    assert not readers, f"FLAGS read outside cli/: {readers}"


@pytest.mark.parametrize("path", sorted((REPO / "tools").glob("*.py")), ids=lambda p: p.name)
def test_tools_use_the_installed_package(path):
    tree = parse(path)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            problems.append(f"line {node.lineno}: touches sys.path")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("predrnn_tf"):
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            if private or any(part.startswith("_") for part in node.module.split(".")):
                problems.append(f"line {node.lineno}: imports private {node.module} {private}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_files_and_functions_stay_small(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.name} has {lines} lines (at most {MAX_FILE_LINES})"
    long = []
    for node in ast.walk(parse(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            key = f"{path.relative_to(PACKAGE).as_posix()}:{node.name}"
            if length > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                long.append(f"{key} has {length} lines")
    assert not long, "\n".join(long)


def test_errors_form_one_tree():
    from predrnn_tf import errors

    classes = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, Exception)]
    assert all(issubclass(cls, errors.PredRNNError) for cls in classes)
    assert not issubclass(errors.NonFiniteLossError, errors.ConfigError)
    defined_elsewhere = []
    for path in package_files():
        if path.name == "errors.py":
            continue
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                defined_elsewhere.append(f"{path.relative_to(REPO)}:{node.name}")
    assert not defined_elsewhere, f"error classes outside errors.py: {defined_elsewhere}"


def test_atomic_writes_have_one_owner():
    """Only files.py renames a temporary file into place."""
    owners = []
    for path in package_files():
        text = path.read_text()
        if path.name != "files.py" and ("os.replace(" in text or "os.rename(" in text):
            owners.append(str(path.relative_to(REPO)))
    assert not owners, f"write through predrnn_tf.files instead: {owners}"


def test_layout_rules_fail_on_a_broken_import(tmp_path):
    """The checker itself can fail: a models/ file importing data/ is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from predrnn_tf.data import reader\nimport absl.flags\n")
    found = [target_area(module) for module, _ in imported_modules(parse(bad))]
    assert "data" in found and "data" not in ALLOWED["models"]
    assert os.path.basename(str(bad)) == "bad.py"
