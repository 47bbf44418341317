"""The house rules of DESIGN.md, checked on the source: arrows point down only.

- labox_prefect.core never imports Prefect, nor anything of labox_prefect outside the core;
- the integration, flows and deployments import no private name of the core (no `_name`,
  no `_module`), only what the core publishes.
"""

from __future__ import annotations

import ast
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
