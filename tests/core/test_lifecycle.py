"""Deleting manifests, verifying stored bytes and collecting garbage, over real storages."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentRecord,
    InvalidArgumentError,
    ManifestNotFoundError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    Storage,
    StorageConfig,
    load_one,
)
from labox_prefect.core.builtin import (
    DatabaseStorage,
    FileStorage,
    FsspecStorage,
    MemoryStorage,
    StorableValue,
)
from labox_prefect.core.digest import digest_bytes
from labox_prefect.core.lifecycle import (
    ContentStatus,
    collect_garbage,
    delete_manifest,
    delete_manifests,
    verify_manifests,
)
from labox_prefect.core.query import get_contents
from labox_prefect.core.saver import save_one
from labox_prefect.core.storage import StoredBlob

Sessions = async_sessionmaker[AsyncSession]

NO_GRACE = timedelta(0)
"""Blobs written a moment ago count as old: what tests of deletion need."""

MODULES = ["labox_prefect.core.builtin"]


@pytest.fixture
def registry(storage: MemoryStorage) -> Registry:
    """Every content goes to the blob storage under test, however small."""
    return Registry(modules=MODULES, inline_max_size=0, default_storage=storage)


async def save(
    sessions: Sessions, registry: Registry, value: object, storage: Storage | None = None
) -> uuid.UUID:
    async with sessions() as session:
        record = await save_one(
            StorableValue(value, storage=storage), session=session, registry=registry
        )
    return record.id


async def key_of(sessions: Sessions, manifest_id: uuid.UUID) -> str:
    async with sessions() as session:
        [content] = await get_contents(session, manifest_id)
    key: str = content.storage_config["key"]
    return key


async def stored_keys(storage: FsspecStorage) -> set[str]:
    return {config["key"] async for config in storage.iter_stored()}


async def count(sessions: Sessions, record: type[ManifestRecord] | type[ContentRecord]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(record)) or 0)


# --- delete ---------------------------------------------------------------------------------


async def test_delete_keeps_data_unless_asked(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    doomed = await save(sessions, registry, {"a": 1})
    survivor = await save(sessions, registry, {"b": 2})
    key = await key_of(sessions, doomed)

    async with sessions() as session:
        report = await delete_manifest(session, doomed)

    assert (report.contents_deleted, report.blobs_deleted, report.blobs_kept) == (1, 0, 0)
    assert (await count(sessions, ManifestRecord), await count(sessions, ContentRecord)) == (1, 1)
    assert key in await stored_keys(storage)  # the blob stays; gc may take it later
    async with sessions() as session:
        with pytest.raises(ManifestNotFoundError):
            await load_one(doomed, session=session, registry=registry)
        loaded = await load_one(survivor, session=session, registry=registry)
    assert loaded.value == {"b": 2}


async def test_delete_data_removes_only_blobs_nobody_else_uses(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    first = await save(sessions, registry, "shared bytes")
    second = await save(sessions, registry, "shared bytes")
    shared_key = await key_of(sessions, first)
    assert await key_of(sessions, second) == shared_key  # content addressing: one blob

    async with sessions() as session:
        report = await delete_manifest(session, first, registry=registry, delete_data=True)
    assert (report.blobs_deleted, report.blobs_kept) == (0, 1)
    assert shared_key in await stored_keys(storage)
    async with sessions() as session:
        assert (await load_one(second, session=session, registry=registry)).value == "shared bytes"

    async with sessions() as session:
        report = await delete_manifest(
            session, second, registry=registry, delete_data=True, grace=NO_GRACE
        )
    assert (report.blobs_deleted, report.blobs_kept) == (1, 0)
    assert shared_key not in await stored_keys(storage)
    assert (await count(sessions, ManifestRecord), await count(sessions, ContentRecord)) == (0, 0)


async def test_delete_data_keeps_a_blob_another_name_of_the_same_folder_uses(
    sessions: Sessions, tmp_path: Path
) -> None:
    old = FileStorage(tmp_path / "blobs", name="team.files@v1")
    new = FileStorage(tmp_path / "blobs", name="team.files@v2")
    registry = Registry(modules=MODULES, inline_max_size=0, storages=[old], default_storage=new)
    before_rename = await save(sessions, registry, "same bytes", storage=old)
    after_rename = await save(sessions, registry, "same bytes", storage=new)

    async with sessions() as session:
        report = await delete_manifest(session, after_rename, registry=registry, delete_data=True)
    assert (report.blobs_deleted, report.blobs_kept) == (0, 1)
    async with sessions() as session:
        loaded = await load_one(before_rename, session=session, registry=registry)
    assert loaded.value == "same bytes"


async def test_delete_refuses_what_it_cannot_finish_and_changes_nothing(
    sessions: Sessions, registry: Registry
) -> None:
    manifest_id = await save(sessions, registry, [1, 2, 3])
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match=r"needs registry.*delete_data=False"):
            await delete_manifest(session, manifest_id, delete_data=True)
        with pytest.raises(ManifestNotFoundError, match="No manifest with id"):
            await delete_manifest(session, uuid.uuid4())
        other_registry = Registry(
            modules=MODULES, inline_max_size=0, default_storage=MemoryStorage(name="x@v1")
        )
        with pytest.raises(NotRegisteredError, match=r"labox\.memory@v1"):
            await delete_manifest(session, manifest_id, registry=other_registry, delete_data=True)
    assert (await count(sessions, ManifestRecord), await count(sessions, ContentRecord)) == (1, 1)


# --- verify ---------------------------------------------------------------------------------


async def test_verify_reports_each_kind_of_damage_without_raising(
    sessions: Sessions, storage: MemoryStorage
) -> None:
    database = DatabaseStorage()
    registry = Registry(
        modules=MODULES, inline_max_size=0, storages=[database], default_storage=storage
    )
    healthy = await save(sessions, registry, {"fine": True})
    in_database = await save(sessions, registry, {"small": 1}, storage=database)
    corrupted = await save(sessions, registry, {"will": "rot"})
    missing = await save(sessions, registry, {"will": "vanish"})
    unknown = await save(sessions, registry, {"storage": "renamed"})
    resized = await save(sessions, registry, {"size": "lies"})
    pointer = await save(sessions, registry, {"pointer": "escapes"})

    storage.fs.pipe_file(f"{storage.root}/{await key_of(sessions, corrupted)}", b'{"will":"r0t"}')
    storage.fs.rm_file(f"{storage.root}/{await key_of(sessions, missing)}")
    async with sessions() as session:
        changes: list[tuple[uuid.UUID, dict[str, Any]]] = [
            (unknown, {"storage_name": "retired.storage@v1"}),
            (resized, {"content_size": 999}),
            (pointer, {"storage_config": {"key": "../../etc/passwd"}}),
        ]
        for manifest_id, values in changes:
            await session.execute(
                update(ContentRecord).where(ContentRecord.manifest_id == manifest_id).values(values)
            )
        await session.commit()

    progress: list[tuple[int, int | None]] = []
    async with sessions() as session:
        report = await verify_manifests(
            session, registry, on_progress=lambda *p: progress.append(p)
        )

    status = {check.manifest_id: check.status for check in report.checks}
    assert status == {
        healthy: ContentStatus.OK,
        in_database: ContentStatus.OK,
        corrupted: ContentStatus.CORRUPTED,
        missing: ContentStatus.MISSING,
        unknown: ContentStatus.UNKNOWN_STORAGE,
        resized: ContentStatus.CORRUPTED,
        pointer: ContentStatus.CORRUPTED,
    }
    details = {check.manifest_id: check.detail or "" for check in report.problems}
    assert "corrupted" in details[corrupted]
    assert "no blob" in details[missing]
    assert "retired.storage@v1" in details[unknown]
    assert "999 recorded" in details[resized]
    assert "refusing the storage config" in details[pointer]
    assert [c.manifest_id for c in report.checks] == sorted(status)  # stable order
    assert not report.ok
    assert len(report.with_status(ContentStatus.CORRUPTED)) == 3
    assert progress[0] == (0, 7)
    assert progress[-1] == (7, 7)
    assert [done for done, _ in progress] == list(range(8))


async def test_verify_selected_manifests_and_names_unknown_ids(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    chosen = await save(sessions, registry, "chosen")
    broken_elsewhere = await save(sessions, registry, "not asked about")
    storage.fs.rm_file(f"{storage.root}/{await key_of(sessions, broken_elsewhere)}")
    nowhere = uuid.uuid4()

    async with sessions() as session:
        report = await verify_manifests(session, registry, manifest_ids=[chosen, nowhere])
        clean = await verify_manifests(session, registry, manifest_ids=[chosen])

    assert [(c.manifest_id, c.status) for c in report.checks] == [(chosen, ContentStatus.OK)]
    assert report.missing_manifests == [nowhere]
    assert not report.ok
    assert clean.ok


async def test_verify_streams_large_files_and_catches_a_flipped_byte(
    sessions: Sessions, tmp_path: Path
) -> None:
    files = FileStorage(tmp_path / "blobs")
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=files)
    payload = bytes(range(256)) * (40 * 1024)  # 10 MiB: several read chunks
    manifest_id = await save(sessions, registry, payload)
    async with sessions() as session:
        assert (await verify_manifests(session, registry)).ok

    path = tmp_path / "blobs" / await key_of(sessions, manifest_id)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    async with sessions() as session:
        [check] = (await verify_manifests(session, registry)).checks
    assert check.status is ContentStatus.CORRUPTED


# --- garbage collection ---------------------------------------------------------------------


async def orphan(storage: FsspecStorage, data: bytes) -> StorageConfig:
    """A blob written but never recorded, as a crashed save or a deleted record leaves."""
    return await storage.write_data(data, digest_bytes(data, "application/octet-stream"), {})


async def test_gc_deletes_only_unreferenced_blobs_in_every_storage(
    sessions: Sessions, storage: MemoryStorage, tmp_path: Path
) -> None:
    files = FileStorage(tmp_path / "blobs")
    registry = Registry(
        modules=MODULES, inline_max_size=0, storages=[files], default_storage=storage
    )
    kept_in_memory = await save(sessions, registry, "kept in memory")
    kept_in_files = await save(sessions, registry, "kept in files", storage=files)
    memory_orphan = await orphan(storage, b"orphan in memory")
    file_orphan = await orphan(files, b"orphan in files")

    async with sessions() as session:
        preview = await collect_garbage(session, registry, dry_run=True, grace=NO_GRACE)
    assert preview.dry_run
    assert preview.unreferenced == 2
    assert preview.deleted == 0
    assert memory_orphan["key"] in await stored_keys(storage)

    progress: list[tuple[int, int | None]] = []
    async with sessions() as session:
        report = await collect_garbage(
            session, registry, grace=NO_GRACE, on_progress=lambda *p: progress.append(p)
        )

    found = {entry.storage_name: entry for entry in report.storages}
    assert found[storage.name].unreferenced == [memory_orphan]
    assert found[files.name].unreferenced == [file_orphan]
    assert (found[storage.name].listed, found[files.name].listed) == (2, 2)
    assert (report.deleted, report.errors) == (2, [])
    assert await stored_keys(storage) == {await key_of(sessions, kept_in_memory)}
    assert await stored_keys(files) == {await key_of(sessions, kept_in_files)}
    assert progress[:4] == [(1, None), (2, None), (3, None), (4, None)]
    assert progress[-1] == (2, 2)
    async with sessions() as session:
        assert (await verify_manifests(session, registry)).ok


async def test_gc_keeps_a_blob_any_record_points_at_under_any_name(
    sessions: Sessions, tmp_path: Path
) -> None:
    # One folder registered under two names, as after renaming a storage from @v1 to @v2.
    old = FileStorage(tmp_path / "blobs", name="team.files@v1")
    new = FileStorage(tmp_path / "blobs", name="team.files@v2")
    registry = Registry(modules=MODULES, inline_max_size=0, storages=[old], default_storage=new)
    old_registry = Registry(modules=MODULES, inline_max_size=0, default_storage=old)
    written_by_old = await save(sessions, old_registry, "from before the rename")

    async with sessions() as session:
        report = await collect_garbage(session, registry)
    assert report.deleted == 0
    async with sessions() as session:
        loaded = await load_one(written_by_old, session=session, registry=registry)
    assert loaded.value == "from before the rename"


class SaveDuringListing(MemoryStorage):
    """A storage where another process commits a save just after gc listed the blobs."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: Sessions | None = None
        self.registry: Registry | None = None
        self.saved: uuid.UUID | None = None

    async def iter_stored_blobs(self) -> AsyncIterator[StoredBlob]:
        async for blob in super().iter_stored_blobs():
            yield blob
        assert self.sessions is not None
        assert self.registry is not None
        self.saved = await save(self.sessions, self.registry, "committed during gc")


async def test_gc_lists_blobs_before_reading_references(sessions: Sessions) -> None:
    storage = SaveDuringListing()
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=storage)
    await save(sessions, registry, "already there")
    storage.sessions, storage.registry = sessions, registry

    async with sessions() as session:
        report = await collect_garbage(session, registry, grace=NO_GRACE)

    assert report.unreferenced == 0
    assert storage.saved is not None
    async with sessions() as session:
        loaded = await load_one(storage.saved, session=session, registry=registry)
        assert loaded.value == "committed during gc"
        assert (await verify_manifests(session, registry)).ok


async def test_gc_reports_a_failed_deletion_and_goes_on(
    sessions: Sessions, storage: MemoryStorage
) -> None:
    class Stubborn(MemoryStorage):
        async def delete_data(self, config: StorageConfig, /) -> None:
            if config == first:
                raise PermissionError("read-only blob")
            await super().delete_data(config)

    stubborn = Stubborn(name="stubborn@v1")
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=stubborn)
    first = await orphan(stubborn, b"one")
    second = await orphan(stubborn, b"two")

    async with sessions() as session:  # orphans only: no save ever recorded an owner
        report = await collect_garbage(session, registry, grace=NO_GRACE, claim=True)

    assert report.deleted == 1
    [error] = report.errors
    assert "PermissionError: read-only blob" in error
    assert await stored_keys(stubborn) == {first["key"]}
    assert second["key"] not in await stored_keys(stubborn)


# --- grace period, temporary files, retention -----------------------------------------------


async def test_gc_keeps_a_blob_whose_record_is_not_committed_yet(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    """The issue's race: a blob written just before its record commits is not garbage."""
    await save(sessions, registry, "recorded")
    in_flight = await orphan(storage, b"written, record about to commit")

    async with sessions() as session:
        report = await collect_garbage(session, registry)  # the default grace: one hour

    assert (report.unreferenced, report.young, report.deleted) == (0, 1, 0)
    assert in_flight["key"] in await stored_keys(storage)


async def test_gc_grace_is_checked_again_just_before_the_delete(
    sessions: Sessions, tmp_path: Path
) -> None:
    files = FileStorage(tmp_path / "blobs")
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=files)
    await save(sessions, registry, "recorded")
    config = await orphan(files, b"reused by a save while gc runs")
    blob = tmp_path / "blobs" / config["key"]
    old = time.time() - 7200
    os.utime(blob, (old, old))

    class Resaved(FileStorage):
        async def iter_stored_blobs(self) -> AsyncIterator[StoredBlob]:
            async for stored in super().iter_stored_blobs():
                yield stored
            os.utime(blob)  # a save rewrote the blob after the listing: it is young again

    resaved = Resaved(tmp_path / "blobs")
    async with sessions() as session:
        report = await collect_garbage(
            session, Registry(modules=MODULES, inline_max_size=0, default_storage=resaved)
        )
    assert (report.deleted, report.young) == (0, 1)
    assert blob.exists()


async def test_retention_by_age_count_and_tags_removes_only_unused_blobs(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    async def tagged(value: object, task: str) -> uuid.UUID:
        async with sessions() as session:
            record = await save_one(
                StorableValue(value), session=session, registry=registry, tags={"task": task}
            )
        return record.id

    train = [await tagged(f"train {i}", "train") for i in range(4)]
    shared = await tagged("train 0", "score")  # the same bytes as train[0]: one blob
    keys = {manifest_id: await key_of(sessions, manifest_id) for manifest_id in [*train, shared]}

    async with sessions() as session:
        preview = await delete_manifests(
            session, registry, keep_last=1, group_by="task", dry_run=True, grace=NO_GRACE
        )
    assert [m.id for m in preview.manifests] == train[2::-1]  # newest first
    assert sorted(c["key"] for _, c in preview.blobs.would_delete) == sorted(
        keys[m] for m in train[1:3]
    )
    assert await count(sessions, ManifestRecord) == 5

    progress: list[tuple[int, int | None]] = []
    async with sessions() as session:
        report = await delete_manifests(
            session,
            registry,
            keep_last=1,
            group_by="task",
            tags={"task": "train"},
            grace=NO_GRACE,
            on_progress=lambda *p: progress.append(p),
        )
    assert {m.id for m in report.manifests} == set(train[:3])
    assert (report.contents_deleted, report.blobs.deleted, report.blobs.kept) == (3, 2, 1)
    assert progress[-1] == (3, 3)
    assert await stored_keys(storage) == {keys[train[3]], keys[shared]}
    async with sessions() as session:
        assert (await load_one(shared, session=session, registry=registry)).value == "train 0"
        assert (await verify_manifests(session, registry)).ok
        later = datetime.now(UTC) + timedelta(seconds=1)
        gone = await delete_manifests(session, registry, older_than=later, grace=NO_GRACE)
    assert {m.id for m in gone.manifests} == {train[3], shared}
    assert await stored_keys(storage) == set()


async def test_retention_needs_a_rule(sessions: Sessions, registry: Registry) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match="needs a rule: pass older_than="):
            await delete_manifests(session, registry)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"older_than": datetime(2024, 1, 1)}, r"no timezone.*replace\(tzinfo=UTC\)"),
        ({"older_than": timedelta(days=30)}, r"not timedelta.*datetime.now\(UTC\) - timedelta"),
        ({"keep_last": -1}, "keep_last must be an int >= 0"),
        ({"keep_last": "3"}, "keep_last must be an int >= 0"),
    ],
)
async def test_retention_refuses_bad_arguments_naming_the_fix(
    sessions: Sessions, registry: Registry, arguments: dict[str, Any], message: str
) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match=message) as caught:
            await delete_manifests(session, registry, **arguments)
    assert isinstance(caught.value, ValueError)


async def test_checks_refuse_a_concurrency_below_one(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match="concurrency must be an int >= 1"):
            await verify_manifests(session, registry, concurrency=0)
        with pytest.raises(InvalidArgumentError, match="concurrency must be an int >= 1"):
            await collect_garbage(session, registry, concurrency=0)


async def test_keep_last_groups_by_every_given_tag(sessions: Sessions, registry: Registry) -> None:
    async def saved(value: object, flow: str, task: str) -> uuid.UUID:
        async with sessions() as session:
            record = await save_one(
                StorableValue(value),
                session=session,
                registry=registry,
                tags={"flow": flow, "task": task},
            )
        return record.id

    older_a = await saved("a 0", "a", "load")
    await saved("a 1", "a", "load")
    only_b = await saved("b 0", "b", "load")  # same task name, another flow: its own group
    async with sessions() as session:
        by_task = await delete_manifests(
            session, registry, keep_last=1, group_by="task", dry_run=True, grace=NO_GRACE
        )
        by_flow_and_task = await delete_manifests(
            session,
            registry,
            keep_last=1,
            group_by=("flow", "task"),
            dry_run=True,
            grace=NO_GRACE,
        )
    assert only_b not in {m.id for m in by_flow_and_task.manifests}
    assert [m.id for m in by_flow_and_task.manifests] == [older_a]
    assert len(by_task.manifests) == 2  # one task name across flows: one group


async def test_retention_of_contents_kept_in_their_records_has_nothing_to_refuse(
    sessions: Sessions,
) -> None:
    inline = Registry(modules=MODULES, default_storage=MemoryStorage())  # small JSON: in rows
    async with sessions() as session:
        await save_one(StorableValue({"n": 1}), session=session, registry=inline, tags={"t": "x"})
    async with sessions() as session:
        report = await delete_manifests(session, inline, tags={"t": "x"}, grace=NO_GRACE)
    assert (report.contents_deleted, report.blobs.deleted) == (1, 0)
    assert report.blobs.notes == []  # no "cannot record which databases use it" warning
