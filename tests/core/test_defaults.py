"""A registry made without a storage: blobs beside a SQLite file, never a shared folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from labox_prefect.core import BaseRecord, Registry, StorageNotConfiguredError, load_one, save_one
from labox_prefect.core.builtin import StorableValue
from tests.core.conftest import ALL_MODULES


async def test_blobs_go_beside_the_sqlite_file_not_under_labox_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("LABOX_HOME", str(home))
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}")
    await BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    frame = pd.DataFrame({"a": range(1000)})
    try:
        async with sessions() as session:
            record = await save_one(
                StorableValue(frame), session=session, registry=Registry(modules=ALL_MODULES)
            )
        async with sessions() as session:  # a new registry finds the same folder
            loaded = await load_one(record, session=session, registry=Registry(modules=ALL_MODULES))
    finally:
        await engine.dispose()
    pd.testing.assert_frame_equal(loaded.value, frame)
    sidecar = tmp_path / "mine.db-blobs"
    assert [p.name for p in sidecar.iterdir() if not p.name.startswith(".")]  # one hash folder
    assert not home.exists()


async def test_without_a_file_database_a_blob_needs_a_storage(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    await BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    registry = Registry(modules=ALL_MODULES)
    try:
        async with sessions() as session:
            small = await save_one(
                StorableValue({"fits": "in its record"}), session=session, registry=registry
            )
            with pytest.raises(StorageNotConfiguredError, match=r"Registry\(default_storage="):
                await save_one(
                    StorableValue(pd.DataFrame({"a": [1]})), session=session, registry=registry
                )
        async with sessions() as session:
            loaded = await load_one(small, session=session, registry=registry)
    finally:
        await engine.dispose()
    assert loaded.value == {"fits": "in its record"}


async def test_a_relative_sqlite_path_finds_its_blobs_beside_the_file_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same relative URL names another file after a chdir, and so another folder."""
    registry = Registry(modules=ALL_MODULES)
    for place in ("one", "two"):
        (tmp_path / place).mkdir()
        monkeypatch.chdir(tmp_path / place)
        engine = create_engine("sqlite:///results.db")
        BaseRecord.metadata.create_all(engine)
        try:
            with engine.connect() as connection:
                await save_one(
                    StorableValue(bytes(range(256)) * 400), session=connection, registry=registry
                )
        finally:
            engine.dispose()
    for place in ("one", "two"):
        sidecar = tmp_path / place / "results.db-blobs"
        assert [p.name for p in sidecar.iterdir() if not p.name.startswith(".")], place
