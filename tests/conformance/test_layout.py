"""The stages of refact.conformance import one way: numbers -> truth -> cases -> run ->
report -> cli. Every import is read from the source (module level and inside functions),
so a function-local import cannot hide an upward edge."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "conformance"
STAGES = ("numbers", "truth", "cases", "run", "report", "cli")


def _imports(path):
    """The refact.conformance stages a module imports, by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["refact", "conformance"] + list(path.relative_to(ROOT).parent.parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["refact", "conformance"] and len(parts) > 2 and parts[2] in STAGES:
                found.add(parts[2])
    return found


MODULES = sorted(p for stage in STAGES for p in (ROOT / stage).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_stage_imports_no_later_stage(path):
    stage = path.relative_to(ROOT).parts[0]
    later = set(STAGES[STAGES.index(stage) + 1:])
    assert not (_imports(path) & later), f"{path.relative_to(ROOT)} imports {sorted(_imports(path) & later)}"


def test_every_stage_is_a_package_and_nothing_else_sits_beside_them():
    assert all((ROOT / stage / "__init__.py").is_file() for stage in STAGES)
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "pytest_plugin.py"))
    assert loose == []
