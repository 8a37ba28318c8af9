"""The web package as setup.cfg installs it: every package listed, every template and static
file in the package data, no sys.path tricks, no import cycles inside fionaweb."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

from support.site import ROOT

WEB = ROOT / "php-free-web"
LIB = ROOT / "lib"


def _options() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["options"]


def _lines(value: str) -> list[str]:
    return [v.strip() for v in value.splitlines() if v.strip()]


def _packages_on_disk() -> set[str]:
    found = {".".join(p.parent.relative_to(LIB).parts) for p in LIB.rglob("__init__.py")}
    found |= {
        ".".join(("fionaweb", *p.parent.relative_to(WEB).parts)) for p in WEB.rglob("__init__.py")
    }
    return found


def test_every_package_is_listed_in_setup_cfg() -> None:
    options = _options()
    assert _lines(options["package_dir"]) == ["= lib", "fionaweb = php-free-web"]
    assert set(_lines(options["packages"])) == _packages_on_disk()


def test_templates_and_static_files_are_package_data() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = _lines(cfg["options.package_data"]["fionaweb"])
    covered = {p for pattern in patterns for p in WEB.glob(pattern) if p.is_file()}
    assets = {
        p
        for p in WEB.rglob("*")
        if p.is_file() and {"templates", "static"} & set(p.relative_to(WEB).parts)
    }
    assert assets and assets == covered
    assert "waitress" not in _options()["install_requires"]  # gunicorn serves


def test_no_sys_path_insertion_or_unresolved_imports() -> None:
    for path in [*WEB.rglob("*.py"), *(LIB / "fionagw" / "web").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "sys.path" not in text, path
        assert "import-not-found" not in text, path


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(WEB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["fionaweb", *parts])


def _imports(path: Path, module: str) -> set[str]:
    """The fionaweb modules ``module`` imports (``from .x import y`` may name a module y)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("fionaweb"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("fionaweb")}
    return out


def test_fionaweb_has_no_import_cycles() -> None:
    modules = {_module_name(p): p for p in WEB.rglob("*.py")}
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, m, n]))
            if n not in state:
                visit(n, [*trail, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert "fionaweb.core.context" in graph  # the accessors have their own module
    assert "fionaweb" not in {
        i for deps in graph.values() for i in deps
    }  # nobody imports the factory
