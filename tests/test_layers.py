"""The house rules of DESIGN.md, checked on the source: arrows point down only.

- labox_prefect.core never imports Prefect, nor anything of labox_prefect outside the core;
- the integration, flows and deployments import no private name of the core (no `_name`,
  no `_module`), only what the core publishes;
- the integration's modules import each other without a cycle;
- ``import labox_prefect.core`` loads neither Prefect nor the integration (checked at run
  time, in a fresh interpreter).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "labox_prefect" / "core"


def _imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


@pytest.mark.parametrize("path", _python_files(CORE), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_neither_prefect_nor_the_integration(path: Path) -> None:
    for module, _ in _imports(path):
        top = module.split(".")[0]
        assert top != "prefect", f"{path.name} imports {module}"
        if top == "labox_prefect":
            assert module.startswith("labox_prefect.core"), f"{path.name} imports {module}"


OUTSIDE_CORE = [
    p
    for p in _python_files(ROOT / "labox_prefect", ROOT / "flows", ROOT / "deployments")
    if CORE not in p.parents
]


@pytest.mark.parametrize("path", OUTSIDE_CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_integration_uses_public_core_names_only(path: Path) -> None:
    for module, names in _imports(path):
        if not module.startswith("labox_prefect.core"):
            continue
        parts = module.split(".")
        assert not any(part.startswith("_") for part in parts), f"{path.name}: {module}"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{path.name} imports private {private} from {module}"


INTEGRATION = [p for p in _python_files(ROOT / "labox_prefect") if CORE not in p.parents]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _integration_graph() -> dict[str, set[str]]:
    """Integration module -> the integration modules it imports (anywhere in its body).

    ``from labox_prefect import persistence`` counts as importing labox_prefect.persistence;
    the package face (labox_prefect/__init__.py) loads its names lazily and is left out.
    """
    names = {_module_name(path) for path in INTEGRATION}
    graph: dict[str, set[str]] = {}
    for path in INTEGRATION:
        module = _module_name(path)
        if module == "labox_prefect":
            continue
        edges: set[str] = set()
        for imported, fromlist in _imports(path):
            candidates = [imported, *(f"{imported}.{name}" for name in fromlist)]
            edges.update(c for c in candidates if c in names and c != "labox_prefect")
        graph[module] = edges - {module}
    return graph


def test_the_integration_has_no_import_cycle() -> None:
    graph = _integration_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    assert "labox_prefect.persistence" in graph
    for module in sorted(graph):
        visit(module, [])


def _classes_defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}


def test_the_integration_defines_no_second_class_of_a_core_error() -> None:
    """One class per error: the integration re-exports a core error, it never redefines it."""
    core_errors = _classes_defined(CORE / "errors.py")
    assert "InvalidArgumentError" in core_errors
    for path in INTEGRATION:
        twins = sorted(_classes_defined(path) & core_errors)
        assert twins == [], f"{path.relative_to(ROOT)} redefines {twins}"


def test_importing_the_core_imports_neither_prefect_nor_the_integration() -> None:
    """Checked at run time, in a fresh interpreter: the package face must stay lazy."""
    script = "import json, sys\nimport labox_prefect.core\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m == "prefect" or m.startswith("prefect.")]
    core = "labox_prefect.core"
    integration = [m for m in loaded if m.startswith("labox_prefect.") and not m.startswith(core)]
    assert integration == []
