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

CORE = {"config", "errors", "files", "units", "masks", "checkpoints", "workdir"}
# area -> the areas it may import (besides itself). Core modules are areas of their own.
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "units": {"errors"},
    "config": {"errors", "files"},
    "masks": set(),  # the sampling-mask layout shared by schedules and models
    "layers": {"errors"},
    "models": {"config", "errors", "units", "masks", "layers"},
    "checkpoints": {"config", "errors", "files", "models", "layers"},
    # the one reader of a work directory: config, checkpoints, data card, value mapping
    "workdir": {"config", "errors", "files", "units", "checkpoints", "models", "layers"},
    "data": {"config", "errors", "files", "units"},
    "evaluation": {"config", "errors", "files", "units", "checkpoints", "workdir", "models",
                   "layers", "data"},
    "serving": {"config", "errors", "files", "units", "checkpoints", "workdir", "models",
                "layers"},
    "interop": {"config", "errors", "files", "checkpoints", "workdir", "models", "layers"},
    "training": {"config", "errors", "files", "units", "masks", "checkpoints", "workdir", "models",
                 "layers", "data", "evaluation"},
    "inference": {"config", "errors", "files", "units", "checkpoints", "workdir", "models",
                  "layers", "data", "evaluation", "serving"},
    "analysis": {"config", "errors", "files", "units", "masks", "checkpoints", "workdir", "models",
                 "layers", "data", "evaluation", "training"},
    "cli": {"*"},
    "package": {"*"},  # predrnn_tf/__init__.py and the predrnn_tf.train/evaluate/export aliases
}
# single modules held to less than their area: schedules are pure functions of the config.
MODULE_ALLOWED = {
    "training/schedules.py": {"config", "errors", "masks"},
}
# areas that must not import absl at all (not even absl.logging)
NO_ABSL = {"errors", "files", "units", "config", "layers", "models", "checkpoints"}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 50
# "path:function" -> why it is longer than MAX_FUNCTION_LINES.
LONG_FUNCTIONS: dict[str, str] = {
    "interop/official_predrnn.py:forward": "the official PyTorch unroll, transcribed line for "
                                           "line so it can be compared with the original",
}


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


@pytest.mark.parametrize("relative", sorted(MODULE_ALLOWED))
def test_single_modules_follow_their_own_rule(relative):
    allowed = MODULE_ALLOWED[relative]
    broken = [f"line {line}: {relative} imports {module}"
              for module, line in imported_modules(parse(PACKAGE / relative))
              if target_area(module) not in (None, *allowed)]
    assert not broken, "\n".join(broken)


def module_file(module: str) -> pathlib.Path | None:
    """The package file a dotted name imports: a module, else a package's ``__init__``."""
    parts = module.split(".")
    if parts[0] != "predrnn_tf":
        return None
    for end in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:end])
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
    return None


def imported_files(tree: ast.AST) -> set[pathlib.Path]:
    """The package files an AST imports: ``from a import b`` is module ``a.b`` if it is one."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(module_file(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                is_module = REPO.joinpath(*name.split(".")).with_suffix(".py").is_file() or \
                    REPO.joinpath(*name.split("."), "__init__.py").is_file()
                found.add(module_file(name if is_module else node.module))
    return {path for path in found if path}


def import_graph() -> dict[pathlib.Path, set[pathlib.Path]]:
    """File -> the package files it imports (function-local imports included)."""
    return {path: imported_files(parse(path)) - {path} for path in package_files()}


def find_circle(graph: dict[pathlib.Path, set[pathlib.Path]]) -> list[pathlib.Path]:
    """One import circle of ``graph`` (a list of files, the first repeated last), or []."""
    state: dict[pathlib.Path, int] = {}  # 1 = on the current path, 2 = done
    path: list[pathlib.Path] = []

    def visit(node: pathlib.Path) -> list[pathlib.Path]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return []


def test_no_import_circles():
    circle = find_circle(import_graph())
    assert not circle, "import circle: " + " -> ".join(
        str(path.relative_to(REPO)) for path in circle)


def test_the_circle_finder_can_fail():
    first, second, third = (pathlib.Path(name) for name in ("a.py", "b.py", "c.py"))
    assert find_circle({first: {second}, second: {third}, third: {first}}) == [
        first, second, third, first]
    assert find_circle({first: {second}, second: {third}}) == []


def renamed_imports(tree: ast.AST) -> list[str]:
    """``import predrnn_tf.x as y`` / ``from predrnn_tf.x import z as y`` with y != the name."""
    renamed = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("predrnn_tf"):
            renamed += [f"line {node.lineno}: {alias.name} as {alias.asname}"
                        for alias in node.names if alias.asname and alias.asname != alias.name]
        elif isinstance(node, ast.Import):
            renamed += [f"line {node.lineno}: {alias.name} as {alias.asname}"
                        for alias in node.names if alias.name.startswith("predrnn_tf")
                        and alias.asname and alias.asname != alias.name.split(".")[-1]]
    return renamed


PYTHON_FILES = package_files() + sorted((REPO / "tools").glob("*.py")) + sorted(
    (REPO / "tests").glob("*.py"))


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_modules_keep_their_own_names(path):
    """No alias keeps an old name alive: a module is imported under its own name."""
    renamed = renamed_imports(parse(path))
    assert not renamed, "\n".join(renamed)


def test_renamed_imports_are_found():
    tree = ast.parse("from predrnn_tf.training import loop as train_lib\n"
                     "from predrnn_tf.training import loop\nimport numpy as np\n")
    assert renamed_imports(tree) == ["line 1: loop as train_lib"]


def module_names() -> set[str]:
    """What a test file may be named after: package modules, packages, tools, commands."""
    names = set()
    for path in package_files():
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if parts:
            names.update({parts[-1], "_".join(parts)})
    return names | {path.stem for path in (REPO / "tools").glob("*.py")}


# Tests of the whole system rather than of one module, with the reason.
SYSTEM_TESTS = {
    "package_layout": "this file: the layout rules",
    "install": "the pip install and its console commands",
    "hostile_api": "hostile calls of the public Python API",
    "hostile_flags": "hostile flags on every command",
    "bad_inputs": "bad files and values on every command",
    "radar_recipe": "the radar recipe end to end (configs/radar_real.flags)",
}


def test_test_files_are_named_after_a_module():
    names = module_names() | set(SYSTEM_TESTS)
    unnamed = [path.name for path in sorted((REPO / "tests").glob("test_*.py"))
               if path.stem.removeprefix("test_") not in names]
    assert not unnamed, f"test files named after no module: {unnamed}"


def test_tools_never_import_each_other():
    tools = {path.stem for path in (REPO / "tools").glob("*.py")}
    found = []
    for path in sorted((REPO / "tools").glob("*.py")):
        for module, line in imported_modules(parse(path)):
            if module.split(".")[0] in tools:
                found.append(f"{path.name} line {line}: imports {module}")
    assert not found, "\n".join(found)


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


def listed_in_all(package: pathlib.Path) -> set[str]:
    """The names a package's ``__init__.py`` lists in ``__all__`` (empty without one)."""
    for node in parse(package / "__init__.py").body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return {element.value for element in node.value.elts}
    return set()


def is_public(module: str, root: pathlib.Path = REPO) -> bool:
    """Whether a tool may import ``module``: ``predrnn_tf``, a first-level area or core module
    (``predrnn_tf.data``, ``predrnn_tf.units``), a name one of those defines, or a module or
    name its package's ``__init__.py`` lists in ``__all__``."""
    parts = module.split(".")
    if parts[0] != "predrnn_tf" or len(parts) <= 2:
        return True
    parent = root.joinpath(*parts[:-1])
    if (parent / "__init__.py").is_file():
        return parts[-1] in listed_in_all(parent)
    return is_public(".".join(parts[:-1]), root)  # a name inside a module: as public as it


@pytest.mark.parametrize("path", sorted((REPO / "tools").glob("*.py")), ids=lambda p: p.name)
def test_tools_use_the_public_api(path):
    """Tools import areas, core modules and what an area's ``__init__`` lists in ``__all__``."""
    hidden = sorted({f"line {line}: {module}" for module, line in imported_modules(parse(path))
                     if not is_public(module)})
    assert not hidden, "not listed in the area's __all__:\n" + "\n".join(hidden)


def test_the_public_api_rule_can_fail(tmp_path):
    area = tmp_path / "predrnn_tf" / "area"
    area.mkdir(parents=True)
    (area / "__init__.py").write_text('"""An area."""\n__all__ = ["shown"]\n')
    (area / "shown.py").write_text("")
    (area / "hidden.py").write_text("")
    assert is_public("predrnn_tf.area", tmp_path)
    assert is_public("predrnn_tf.area.shown.Name", tmp_path)
    assert not is_public("predrnn_tf.area.hidden", tmp_path)
    assert not is_public("predrnn_tf.area.hidden.Name", tmp_path)


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
