"""Fixtures for core tests: a registry over every built-in component and a session maker.

Also the fault suite's figures: each scenario of tests/core/test_faults.py adds one line
(rounds, records, lost, orphans collected) that the terminal summary prints, so that
``pytest -q`` (which hides prints) still shows them in CI's log.
"""

from __future__ import annotations

import pytest
from _pytest.terminal import TerminalReporter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from labox_prefect.core import Registry
from labox_prefect.core.builtin import MemoryStorage

ALL_MODULES = [
    "labox_prefect.core.builtin",
    "labox_prefect.core.extra.pydantic",
    "labox_prefect.core.extra.pandas",
    "labox_prefect.core.extra.pyarrow",
]

FAULT_FIGURES: list[str] = []
"""One line per fault scenario run in this session, in the order they ran."""


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def registry(storage: MemoryStorage) -> Registry:
    return Registry(modules=ALL_MODULES, default_storage=storage)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions as the seed guide makes them: expire_on_commit=True."""
    return async_sessionmaker(engine, expire_on_commit=True)


@pytest.fixture
def fault_figures() -> list[str]:
    """Where a fault scenario adds its line of figures for the terminal summary."""
    return FAULT_FIGURES


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if FAULT_FIGURES:
        terminalreporter.section("fault suite (issue 8): rounds, records, lost, orphans")
        for line in FAULT_FIGURES:
            terminalreporter.write_line(line)
