"""Database failures a user meets become LaboxErrors; transient ones are retried first."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, insert, make_url, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from labox_prefect.core import (
    BaseRecord,
    ContentRecord,
    DatabaseUnavailableError,
    ManifestRecord,
    Registry,
    find_manifests,
    load_one,
    save_one,
    save_one_with_contents,
)
from labox_prefect.core.builtin import MemoryStorage, StorableValue
from tests.conftest import _execute, remember_backend_pids


async def test_a_terminated_connection_is_retried_on_a_new_one(postgres_url: str) -> None:
    """The issue's example: the README's core example after the server dropped its backend.

    The engine is made as the README makes it (no pool pre-ping), so the pooled connection
    is dead when the next save takes it.
    """
    engine = create_async_engine(postgres_url)
    await BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    try:
        async with sessions() as session:
            await save_one(StorableValue("before"), session=session, registry=registry)
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        _execute(postgres_url, f"SELECT pg_terminate_backend({int(pid)})")

        async with sessions() as session:  # the pool hands out the terminated connection
            record = await save_one(StorableValue("after"), session=session, registry=registry)
        async with sessions() as session:
            assert (await load_one(record, session=session, registry=registry)).value == "after"
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        _execute(postgres_url, f"SELECT pg_terminate_backend({int(pid)})")

        async with sessions() as session:  # queries and loads retry the same way
            assert record.id in {m.id for m in await find_manifests(session)}
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        _execute(postgres_url, f"SELECT pg_terminate_backend({int(pid)})")
        async with sessions() as session:
            assert (await load_one(record, session=session, registry=registry)).value == "after"
    finally:
        await engine.dispose()


async def test_a_single_save_whose_commit_failed_transiently_runs_its_hook_again(
    postgres_url: str,
) -> None:
    """``save_one_with_contents`` retries as a batch does: its rows and its hook's again,
    in a new transaction on a new connection, and the record is committed once."""
    _execute(postgres_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    engine = create_async_engine(postgres_url)
    left = 1

    remember_backend_pids(engine)

    await BaseRecord.create_all(engine)

    @event.listens_for(engine.sync_engine, "commit")
    def terminate_before_commit(connection: Any) -> None:
        nonlocal left
        if left:
            left -= 1
            pid = int(connection.info["pid"])
            _execute(postgres_url, f"SELECT pg_terminate_backend({pid}, 5000)")

    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    hooked: list[uuid.UUID] = []
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    try:
        async with sessions() as session:

            async def note(manifest_id: uuid.UUID) -> None:
                hooked.append(manifest_id)
                await session.execute(
                    insert(ManifestRecord).values(
                        id=uuid.uuid5(manifest_id, "note"), class_id=manifest_id, unpacker_name="n"
                    )
                )

            manifest, contents = await save_one_with_contents(
                StorableValue({"a": 1}), session=session, registry=registry, before_commit=note
            )
        async with sessions() as session:
            manifests = await session.scalar(select(func.count()).select_from(ManifestRecord))
            stored = await session.scalar(select(func.count()).select_from(ContentRecord))
            loaded = await load_one(manifest, session=session, registry=registry)
    finally:
        await engine.dispose()
    assert left == 0, "the commit was never failed"
    assert hooked == [manifest.id, manifest.id]
    assert (manifests, stored, len(contents)) == (2, 1, 1)  # the record and the hook's row
    assert loaded.value == {"a": 1}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_database_is_named_with_the_fix() -> None:
    url = f"postgresql+asyncpg://ana:s3cr3t@127.0.0.1:{_closed_port()}/results"
    engine = create_async_engine(url)
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    try:
        async with async_sessionmaker(engine)() as session:
            with pytest.raises(DatabaseUnavailableError) as caught:
                await save_one(StorableValue(1), session=session, registry=registry)
    finally:
        await engine.dispose()
    message = str(caught.value)
    assert "postgresql://127.0.0.1:" in message
    assert "check that the server runs" in message
    assert "s3cr3t" not in message


async def test_a_database_at_its_connection_limit_says_so_after_retries(
    postgres_url: str,
) -> None:
    """The issue's example: a connection limit read as "check that the database is reachable"."""
    database = make_url(postgres_url).database
    holder = create_async_engine(postgres_url)
    engine = create_async_engine(postgres_url)
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    _execute(postgres_url, f'ALTER DATABASE "{database}" CONNECTION LIMIT 1')
    try:
        async with holder.connect() as held:
            await held.execute(text("SELECT 1"))  # the one connection the database allows
            async with async_sessionmaker(engine)() as session:
                with pytest.raises(DatabaseUnavailableError, match="connection limit") as caught:
                    await save_one(StorableValue(1), session=session, registry=registry)
    finally:
        await holder.dispose()
        await engine.dispose()
        _execute(postgres_url, f'ALTER DATABASE "{database}" CONNECTION LIMIT -1')
    assert "max_connections" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
