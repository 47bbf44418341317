"""A storage knows which databases write to it; gc deletes only what it can prove unused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from labox_prefect.core import (
    BaseRecord,
    Registry,
    StorageOwnershipError,
    collect_garbage,
    load_one,
    save_one,
)
from labox_prefect.core.builtin import FileStorage, MemoryStorage, StorableValue
from labox_prefect.core.ownership import database_label, session_database

Sessions = async_sessionmaker[AsyncSession]
MODULES = ["labox_prefect.core.builtin"]


def test_a_database_label_carries_no_credentials(tmp_path: Path) -> None:
    url = make_url("postgresql+asyncpg://ana:s3cr3t@db.example:5432/results?sslmode=require")
    assert database_label(url) == "postgresql://db.example:5432/results"
    relative = make_url("sqlite+aiosqlite:///mine.db")
    assert database_label(relative) == f"sqlite:///{Path('mine.db').absolute().as_posix()}"


async def test_a_save_records_its_database_as_owner_without_credentials(
    sessions: Sessions, storage: MemoryStorage, database_url: str
) -> None:
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=storage)
    async with sessions() as session:
        await save_one(StorableValue("owned"), session=session, registry=registry)
        label = session_database(session)
    assert await storage.list_owners() == [label]
    [marker] = [p for p in storage.fs.find(storage.root) if "/.owners/" in p]
    assert json.loads(storage.fs.cat_file(marker)) == {"database": label}
    url = make_url(database_url)
    assert "@" not in label
    assert url.username is None or f"{url.username}:" not in label


async def open_database(path: Path) -> tuple[Sessions, object]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    await BaseRecord.create_all(engine)
    return async_sessionmaker(engine, expire_on_commit=False), engine


async def test_gc_refuses_a_storage_shared_with_a_database_it_cannot_see(tmp_path: Path) -> None:
    shared = FileStorage(tmp_path / "shared")
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=shared)
    theirs, their_engine = await open_database(tmp_path / "theirs.db")
    ours, our_engine = await open_database(tmp_path / "ours.db")
    try:
        async with theirs() as session:
            record = await save_one(StorableValue("theirs"), session=session, registry=registry)
        async with ours() as session:
            await save_one(StorableValue("ours"), session=session, registry=registry)
            with pytest.raises(StorageOwnershipError, match=r"theirs\.db.*Nothing was deleted"):
                await collect_garbage(session, registry, grace=timedelta(0))
            with pytest.raises(StorageOwnershipError):  # a dry run says the same
                await collect_garbage(session, registry, grace=timedelta(0), dry_run=True)
        async with theirs() as session:
            loaded = await load_one(record, session=session, registry=registry)
            with pytest.raises(StorageOwnershipError, match=r"ours\.db"):  # "ours" is unseen here
                await collect_garbage(session, registry, grace=timedelta(0))
    finally:
        await their_engine.dispose()  # type: ignore[attr-defined]
        await our_engine.dispose()  # type: ignore[attr-defined]
    assert loaded.value == "theirs"
    assert len([c async for c in shared.iter_stored()]) == 2


async def test_gc_refuses_blobs_no_database_claimed_until_told(
    sessions: Sessions, storage: MemoryStorage
) -> None:
    from labox_prefect.core.digest import digest_bytes

    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=storage)
    await storage.write_data(b"legacy", digest_bytes(b"legacy", "text/plain"), {})
    async with sessions() as session:
        with pytest.raises(StorageOwnershipError, match="predate owner markers"):
            await collect_garbage(session, registry, grace=timedelta(0))
        report = await collect_garbage(session, registry, grace=timedelta(0), claim=True)
    assert report.deleted == 1


async def test_a_database_that_no_longer_exists_can_be_forgotten(tmp_path: Path) -> None:
    shared = FileStorage(tmp_path / "shared")
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=shared)
    gone, gone_engine = await open_database(tmp_path / "gone.db")
    ours, our_engine = await open_database(tmp_path / "ours.db")
    try:
        async with gone() as session:
            await save_one(
                StorableValue("from a dropped database"), session=session, registry=registry
            )
            gone_label = session_database(session)
        (tmp_path / "gone.db").unlink()
        async with ours() as session:
            kept = await save_one(StorableValue("ours"), session=session, registry=registry)
            with pytest.raises(StorageOwnershipError, match=r"gone\.db.*--forget-owner"):
                await collect_garbage(session, registry, grace=timedelta(0))
            preview = await collect_garbage(
                session, registry, grace=timedelta(0), forget_owners=[gone_label], dry_run=True
            )
            assert await shared.list_owners() == sorted([gone_label, session_database(session)])
            report = await collect_garbage(
                session, registry, grace=timedelta(0), forget_owners=[gone_label]
            )
            assert await shared.list_owners() == [session_database(session)]
            loaded = await load_one(kept, session=session, registry=registry)
    finally:
        await gone_engine.dispose()  # type: ignore[attr-defined]
        await our_engine.dispose()  # type: ignore[attr-defined]
    assert (preview.unreferenced, report.deleted) == (1, 1)
    assert loaded.value == "ours"
