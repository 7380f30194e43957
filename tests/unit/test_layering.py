"""Which code may import which: the service layer never reaches into the worker package."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_app_imports_only_the_authoring_package_except_at_the_worker_entry_point():
    """app/ loads pipelines through tasks.pipelines; only `taskdeck worker` reaches the worker."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] == "tasks" and not m.startswith("tasks.pipelines")
        )
        for path in (ROOT / "app").rglob("*.py")
        if path != ROOT / "app" / "cli.py"
    }
    assert {file: mods for file, mods in offenders.items() if mods} == {}


def test_the_authoring_package_imports_nothing_from_app():
    """So app/ -> tasks.pipelines is no import cycle, and a child process loads pipelines lean."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "app"
        )
        for path in (ROOT / "tasks" / "pipelines").rglob("*.py")
    }
    assert {file: mods for file, mods in offenders.items() if mods} == {}


def test_no_test_module_imports_another():
    tests = ROOT / "tests"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.rsplit(".", 1)[-1].startswith("test_")
        )
        for path in tests.rglob("test_*.py")
    }
    assert {file: mods for file, mods in offenders.items() if mods} == {}
