"""A save through SQLAlchemy's sync Session: what the embedded database's lanes use."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from labox_prefect.core import (
    BaseRecord,
    ContentRecord,
    ManifestRecord,
    Registry,
    execute_in_session,
    get_contents,
    load_one,
    save_one_with_contents,
)
from labox_prefect.core.builtin import StorableValue


@pytest.fixture
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlite_url)
    await BaseRecord.create_all(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sync_engine(sqlite_url: str, sqlite_engine: AsyncEngine) -> Iterator[Engine]:
    """The same SQLite file through the plain sqlite3 driver."""
    engine = create_engine(make_url(sqlite_url).set(drivername="sqlite"))
    yield engine
    engine.dispose()


async def test_a_value_saved_through_a_sync_session_loads_back_the_same(
    sync_engine: Engine, sqlite_engine: AsyncEngine, registry: Registry
) -> None:
    value = {"when": datetime.date(2024, 5, 1), "pair": (1, 2), "raw": b"\x00\x01"}
    with sessionmaker(sync_engine)() as session:
        manifest, contents = await save_one_with_contents(
            StorableValue(value), session=session, registry=registry, tags={"k": "v"}
        )
    async with async_sessionmaker(sqlite_engine)() as session:
        loaded = await load_one(manifest.id, StorableValue, session=session, registry=registry)
        stored = await get_contents(session, manifest.id)
    assert loaded.value == value
    assert type(loaded.value["pair"]) is tuple
    assert [c.id for c in contents] == [c.id for c in stored]
    assert manifest.tags == {"k": "v"}


async def test_a_sync_session_commits_the_hooks_rows_with_the_record_or_nothing(
    sync_engine: Engine, sqlite_engine: AsyncEngine, registry: Registry
) -> None:
    async def refuse(manifest_id: uuid.UUID) -> None:
        raise RuntimeError("refused")

    with sessionmaker(sync_engine)() as session, pytest.raises(RuntimeError, match="refused"):
        await save_one_with_contents(
            StorableValue([1]), session=session, registry=registry, before_commit=refuse
        )

    def with_a_row(session: Session) -> object:
        async def add(manifest_id: uuid.UUID) -> None:
            row = {"id": uuid.uuid4(), "class_id": uuid.uuid4(), "unpacker_name": "noted"}
            row |= {"tags": {}, "created_at": datetime.datetime.now(datetime.UTC)}
            await execute_in_session(session, ManifestRecord.__table__.insert(), row)

        return add

    with sessionmaker(sync_engine)() as session:
        await save_one_with_contents(
            StorableValue([2]),
            session=session,
            registry=registry,
            before_commit=with_a_row(session),
        )
    with sessionmaker(sync_engine)() as session:
        names = sorted(session.scalars(select(ManifestRecord.unpacker_name)).all())
        assert len(names) == 2
        assert "noted" in names
        assert session.scalar(select(func.count()).select_from(ContentRecord)) == 1


async def test_a_connection_kept_open_saves_one_value_after_another_and_survives_a_failure(
    sync_engine: Engine, sqlite_engine: AsyncEngine, registry: Registry
) -> None:
    """What a lane does: one sync Connection, a transaction per save, never closed between."""

    async def refuse(manifest_id: uuid.UUID) -> None:
        raise RuntimeError("refused")

    with sync_engine.connect() as connection:
        first, _ = await save_one_with_contents(
            StorableValue({"n": 1}), session=connection, registry=registry, tags={"k": "v"}
        )
        with pytest.raises(RuntimeError, match="refused"):
            await save_one_with_contents(
                StorableValue({"n": 2}), session=connection, registry=registry, before_commit=refuse
            )
        assert not connection.in_transaction()
        third, contents = await save_one_with_contents(
            StorableValue({"n": 3}), session=connection, registry=registry
        )
    async with async_sessionmaker(sqlite_engine)() as session:
        ids = set((await session.scalars(select(ManifestRecord.id))).all())
        loaded = await load_one(third.id, StorableValue, session=session, registry=registry)
        stored = await get_contents(session, third.id)
    assert ids == {first.id, third.id}
    assert loaded.value == {"n": 3}
    assert [c.id for c in contents] == [c.id for c in stored]
    assert first.tags == {"k": "v"}
