"""The de-identification modules import each other without cycles and without privates."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEID = ROOT / "lib" / "fionagw" / "deid"
MODULES = sorted(p.stem for p in DEID.glob("*.py") if p.stem != "__init__")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def _deid_graph() -> dict[str, set[str]]:
    graph = {}
    for name in MODULES:
        deps = set()
        for module, names in _imports(DEID / f"{name}.py"):
            if module == "fionagw.deid":  # from the package: its submodules
                deps |= {n for n in names if n in MODULES}
            elif module.startswith("fionagw.deid."):
                deps.add(module.split(".")[2])
        graph[name] = deps
    return graph


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_no_cycle_and_the_engine_knows_no_rule_set() -> None:
    graph = _deid_graph()
    for name in graph:
        assert name not in _closure(graph, name), f"{name} imports itself through others"
    assert not {"fiona_rules", "factory", "table_fiona"} & _closure(graph, "engine")
    assert {"engine", "ruleset", "elements"} <= graph["fiona_rules"]


def test_no_private_names_from_other_modules() -> None:
    for path in sorted(DEID.glob("*.py")):
        for module, names in _imports(path):
            if not module.startswith("fionagw"):
                continue
            private = [p for p in module.split(".") + names if p[:1] == "_" and p[:2] != "__"]
            assert not private, f"{path.name} imports {private} from {module}"


@pytest.mark.parametrize("name", ["engine", "fiona_rules", "ruleset", "elements", "factory"])
def test_each_module_imports_alone(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    subprocess.run(
        [sys.executable, "-c", f"import fionagw.deid.{name}"], check=True, env=env, cwd=ROOT
    )
