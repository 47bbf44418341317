"""Docs that run: every Python block of README.md and deployments/README.md, as written.

Blocks are read top to bottom. The blocks of one ``## `` section continue each other (one
namespace per section, as a reader pastes them into one session); sections share the
working directory and the Labox store of the test (a temporary folder and LABOX_HOME), so a
later section finds what an earlier one saved. Top-level ``await`` runs on one event loop
per section (compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``). YAML blocks must parse.
A failure names the file and line of the block.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.blocks.core import Block

from labox_prefect.target import BLOCK_TYPE_SLUG, DEFAULT_BLOCK_NAME
from tests.integration.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass
class Snippet:
    language: str
    line: int
    source: str


@dataclass
class Section:
    title: str
    snippets: list[Snippet] = field(default_factory=list)


def sections(path: Path) -> list[Section]:
    """The ``## `` sections of a Markdown file, each with its fenced code blocks in order."""
    text = path.read_text(encoding="utf-8")
    found = [Section("(top)")]
    starts = [(m.start(), m.group(0)) for m in re.finditer(r"^## .*$", text, re.MULTILINE)]
    for match in _FENCE.finditer(text):
        title = next((head for start, head in reversed(starts) if start < match.start()), None)
        if title is not None and title[3:] != found[-1].title:
            found.append(Section(title[3:]))
        line = text.count("\n", 0, match.start()) + 2  # the block's first line
        found[-1].snippets.append(Snippet(match.group(1), line, match.group(2)))
    return [section for section in found if section.snippets]


def run_section(section: Section, path: Path) -> dict[str, Any]:
    """Run a section's Python blocks in one namespace; return it."""
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    with asyncio.Runner() as runner:
        for snippet in section.snippets:
            where = f"{path.relative_to(ROOT)}:{snippet.line}"
            if snippet.language == "yaml":
                assert yaml.safe_load(snippet.source) is not None, where
                continue
            if snippet.language != "python":
                continue
            code = compile(snippet.source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)  # the README's own code, as a reader runs it
            if inspect.iscoroutine(result):
                runner.run(result)
    return namespace


def python_snippets(path: Path) -> list[Snippet]:
    return [s for section in sections(path) for s in section.snippets if s.language == "python"]


Check = Callable[[dict[str, Any]], None]


def _queried(namespace: dict[str, Any]) -> None:
    assert namespace["refs"], "the query example finds the results the task example saved"


README_CHECKS: dict[str, Check] = {"Querying results": _queried}
"""What a section's namespace must hold after it ran (beyond running without an error)."""


@pytest.fixture
def in_docs_folder(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.syspath_prepend(str(ROOT / "flows"))
    environment = dict(os.environ)
    try:
        yield tmp_path
    finally:  # snippets may set variables themselves (os.environ[...] = ...)
        os.environ.clear()
        os.environ.update(environment)


sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@sqlite_only
def test_every_readme_block_runs(in_docs_folder: Path) -> None:
    path = ROOT / "README.md"
    ran = []
    for section in sections(path):
        namespace = run_section(section, path)
        README_CHECKS.get(section.title, lambda _: None)(namespace)
        ran.append(section.title)

    assert set(README_CHECKS) <= set(ran)
    assert len(python_snippets(path)) >= 9


def test_the_readme_says_what_limit_takes_as_find_results_does() -> None:
    """find_results' docstring: ``limit`` 0 or None lists all; the README says both."""
    lines = [
        line
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if "limit" in line and re.search(r"\ball\b", line)
    ]

    assert lines  # the README does say how to list all
    for line in lines:
        assert "0" in line, line
        assert "None" in line, line


@sqlite_only
def test_every_deployment_guide_block_runs(in_docs_folder: Path) -> None:
    path = ROOT / "deployments" / "README.md"
    saved_before = _saved_default()
    try:
        for section in sections(path):
            run_section(section, path)
        assert python_snippets(path)
    finally:  # the guide saves the default block: put back what the session had
        if saved_before is None:
            Block.delete(f"{BLOCK_TYPE_SLUG}/{DEFAULT_BLOCK_NAME}", _sync=True)  # type: ignore[call-arg]
        else:
            saved_before.save(DEFAULT_BLOCK_NAME, overwrite=True)


def _saved_default() -> Any:
    try:
        return Block.load(f"{BLOCK_TYPE_SLUG}/{DEFAULT_BLOCK_NAME}", _sync=True)  # type: ignore[call-arg]
    except ValueError:
        return None
