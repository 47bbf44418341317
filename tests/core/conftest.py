"""Fixtures for core tests: a registry over every built-in component and a session maker.

The fault suite's figures (``fault_figures``) live in tests/conftest.py: the integration's
fault scenarios add their lines too.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from labox_prefect.core import Registry
from labox_prefect.core.builtin import MemoryStorage

ALL_MODULES = [
    "labox_prefect.core.builtin",
    "labox_prefect.core.extra.pydantic",
    "labox_prefect.core.extra.pandas",
    "labox_prefect.core.extra.pyarrow",
]


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
