"""Taking care of stored data: delete a manifest, verify stored bytes, collect garbage.

Storages are content-addressed, so one blob can back contents of many manifests: a blob is
only ever deleted once no content record points at it any more. Record deletions commit
before any blob goes, so a failure half-way leaves unreferenced blobs (which
``collect_garbage`` removes later), never records that point at nothing.

Known window: a save writes its blobs first and commits its records afterwards. A blob that
was already written when garbage collection listed its storage, but whose record commits
only after collection read the references, is deleted as garbage. Collect garbage while no
save is in flight when that matters; ``verify_manifests`` finds any content it affected.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.core.database import ContentRecord, ManifestRecord
from labox_prefect.core.digest import verify_stream
from labox_prefect.core.errors import (
    ContentCorruptedError,
    NotRegisteredError,
    StorageKeyError,
)
from labox_prefect.core.loader import ManifestNotFoundError
from labox_prefect.core.registry import Registry
from labox_prefect.core.storage import Storage, StorageConfig

T = TypeVar("T")
R = TypeVar("R")

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``on_progress(done, total)``; ``total`` is None while it is not known yet."""

DEFAULT_CONCURRENCY = 8
"""Blobs read or deleted at once: enough to hide object-store latency, little memory."""

_IDS_PER_STATEMENT = 5_000
"""Ids per ``IN (...)`` list, well below every database's bound-parameter limit."""


# --- delete ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeleteReport:
    """What ``delete_manifest`` removed."""

    manifest_id: uuid.UUID
    contents_deleted: int
    blobs_deleted: int
    """Blobs removed from their storage (only with ``delete_data=True``)."""
    blobs_kept: int
    """Blobs left in place because other content records still point at them."""


async def delete_manifest(
    session: AsyncSession,
    manifest_id: uuid.UUID,
    *,
    registry: Registry | None = None,
    delete_data: bool = False,
) -> DeleteReport:
    """Delete a manifest and its content records, and commit.

    With ``delete_data=True`` (which needs ``registry``), also delete each blob that no
    other content record points at, once the deletion of the records is committed. Every
    storage involved is resolved first, so an unregistered storage fails the call with
    nothing changed. The session's transaction is committed (with whatever else it holds).
    """
    if delete_data and registry is None:
        raise ValueError(
            "delete_manifest(..., delete_data=True) needs registry=... to reach the storages "
            "that hold the blobs."
        )
    exists = await session.scalar(select(ManifestRecord.id).where(ManifestRecord.id == manifest_id))
    if exists is None:
        raise ManifestNotFoundError(
            f"No manifest with id {manifest_id} exists in this database; it may have been "
            f"deleted already."
        )
    contents = (
        await session.execute(
            select(
                ContentRecord.content_hash, ContentRecord.storage_name, ContentRecord.storage_config
            ).where(ContentRecord.manifest_id == manifest_id)
        )
    ).all()
    blobs: dict[tuple[str, str], tuple[Storage, str, StorageConfig]] = {}
    if delete_data and registry is not None:
        for content_hash, storage_name, config in contents:
            storage = registry.get_storage(storage_name)
            blobs[(storage_name, _canonical(config))] = (storage, content_hash, config)

    # Contents first: SQLite enforces no ON DELETE CASCADE unless foreign keys are enabled.
    await session.execute(delete(ContentRecord).where(ContentRecord.manifest_id == manifest_id))
    await session.execute(delete(ManifestRecord).where(ManifestRecord.id == manifest_id))
    await session.commit()

    deleted = kept = 0
    for (storage_name, canonical), (storage, content_hash, config) in blobs.items():
        if await _still_referenced(session, content_hash, canonical):
            kept += 1
            continue
        try:
            await storage.delete_data(config)
        except Exception as error:
            error.add_note(
                f"The records of manifest {manifest_id} are deleted; the blob left behind in "
                f"{storage_name!r} is removed by the next collect_garbage."
            )
            raise
        deleted += 1
    return DeleteReport(manifest_id, len(contents), deleted, kept)


async def _still_referenced(session: AsyncSession, content_hash: str, canonical: str) -> bool:
    """Whether another content record points at the same blob, found through its hash.

    As in ``collect_garbage``, any record with the same config counts, whatever storage
    name it gives: two names over one location must not delete each other's blobs.
    """
    configs = await session.scalars(
        select(ContentRecord.storage_config).where(ContentRecord.content_hash == content_hash)
    )
    return any(_canonical(config) == canonical for config in configs)


# --- verify ---------------------------------------------------------------------------------


class ContentStatus(StrEnum):
    """The outcome of checking one content's stored bytes."""

    OK = "ok"
    CORRUPTED = "corrupted"
    """The bytes differ from the recorded hash or size, or the record's pointer is invalid."""
    MISSING = "missing"
    UNKNOWN_STORAGE = "unknown_storage"
    """The record names a storage that the registry does not know."""
    UNREADABLE = "unreadable"
    """Reading failed for another reason (network, permissions): nothing was concluded."""


@dataclass(frozen=True, slots=True)
class ContentCheck:
    """One content's verdict; ``detail`` says why when it is not OK."""

    manifest_id: uuid.UUID
    content_key: str
    storage_name: str
    status: ContentStatus
    detail: str | None = None


@dataclass(slots=True)
class VerifyReport:
    """Every content checked, in (manifest id, content key) order."""

    checks: list[ContentCheck] = field(default_factory=list)
    missing_manifests: list[uuid.UUID] = field(default_factory=list)
    """Requested manifest ids that no record has."""

    def with_status(self, status: ContentStatus) -> list[ContentCheck]:
        return [check for check in self.checks if check.status is status]

    @property
    def problems(self) -> list[ContentCheck]:
        return [check for check in self.checks if check.status is not ContentStatus.OK]

    @property
    def ok(self) -> bool:
        """True when every content checked out and every requested manifest exists."""
        return not self.problems and not self.missing_manifests


async def verify_manifests(
    session: AsyncSession,
    registry: Registry,
    *,
    manifest_ids: Iterable[uuid.UUID] | None = None,
    on_progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> VerifyReport:
    """Read every content of the given manifests (all when None) and check hash and size.

    Bytes are streamed through their storage, so memory stays bounded whatever the size.
    A bad blob becomes a line of the report; only a failure to query the database raises.
    """
    _check_concurrency(concurrency)
    report = VerifyReport()
    columns = (
        ContentRecord.manifest_id,
        ContentRecord.content_key,
        ContentRecord.storage_name,
        ContentRecord.storage_config,
        ContentRecord.content_hash,
        ContentRecord.content_hash_algorithm,
        ContentRecord.content_size,
    )
    order = (ContentRecord.manifest_id, ContentRecord.content_key)
    rows: list[Any] = []
    if manifest_ids is None:
        rows = list((await session.execute(select(*columns).order_by(*order))).all())
    else:
        wanted = sorted(set(manifest_ids))
        found: set[uuid.UUID] = set()
        for chunk in _chunks(wanted):
            found.update(
                await session.scalars(select(ManifestRecord.id).where(ManifestRecord.id.in_(chunk)))
            )
            statement = select(*columns).where(ContentRecord.manifest_id.in_(chunk))
            rows.extend((await session.execute(statement.order_by(*order))).all())
        report.missing_manifests = [
            manifest_id for manifest_id in wanted if manifest_id not in found
        ]

    total = len(rows)
    if on_progress is not None:
        on_progress(0, total)
    report.checks = await _map_bounded(
        rows, lambda row: _check_content(row, registry), concurrency, total, on_progress
    )
    return report


async def _check_content(row: Any, registry: Registry) -> ContentCheck:
    def verdict(status: ContentStatus, detail: str | None = None) -> ContentCheck:
        return ContentCheck(row.manifest_id, row.content_key, row.storage_name, status, detail)

    where = f"manifest {row.manifest_id}, content {row.content_key!r}"
    try:
        storage = registry.get_storage(row.storage_name)
    except NotRegisteredError as error:
        return verdict(ContentStatus.UNKNOWN_STORAGE, str(error))
    size = 0
    try:
        stream = verify_stream(
            storage.read_data_stream(row.storage_config),
            row.content_hash,
            row.content_hash_algorithm,
            where,
        )
        async with aclosing(stream):
            async for chunk in stream:
                size += len(chunk)
    except FileNotFoundError as error:  # ContentMissingError, or a storage's own
        return verdict(ContentStatus.MISSING, str(error))
    except (ContentCorruptedError, StorageKeyError) as error:
        return verdict(ContentStatus.CORRUPTED, str(error))
    except Exception as error:
        return verdict(ContentStatus.UNREADABLE, f"{type(error).__name__}: {error}")
    if size != row.content_size:
        return verdict(
            ContentStatus.CORRUPTED,
            f"{where}: {size} bytes stored, {row.content_size} recorded (the record was altered).",
        )
    return verdict(ContentStatus.OK)


# --- garbage collection ---------------------------------------------------------------------


@dataclass(slots=True)
class StorageGarbage:
    """What garbage collection found in one storage."""

    storage_name: str
    listed: int = 0
    """Blobs the storage holds (as listed before references were read)."""
    unreferenced: list[StorageConfig] = field(default_factory=list)
    """Blobs no content record points at: deleted, or to be deleted in a dry run."""
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    """One line per blob whose deletion failed (it stays, and is tried again next time)."""


@dataclass(slots=True)
class GarbageReport:
    """Garbage per registered storage. Sizes are not reported: storages do not list them."""

    dry_run: bool
    storages: list[StorageGarbage] = field(default_factory=list)

    @property
    def unreferenced(self) -> int:
        return sum(len(storage.unreferenced) for storage in self.storages)

    @property
    def deleted(self) -> int:
        return sum(storage.deleted for storage in self.storages)

    @property
    def errors(self) -> list[str]:
        return [error for storage in self.storages for error in storage.errors]


async def collect_garbage(
    session: AsyncSession,
    registry: Registry,
    *,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> GarbageReport:
    """Delete the blobs of registered storages that no content record points at.

    Every storage is listed before any reference is read, so blobs of a save that commits
    during collection are not taken for garbage (see the module docstring for the one
    window that remains). A blob is kept if *any* content record holds the same config,
    whatever storage name it gives: two registered names over one location (say a storage
    renamed from ``@v1`` to ``@v2``) then never delete each other's blobs.

    ``on_progress(done, None)`` counts blobs while listing, then ``on_progress(done,
    total)`` counts deletions. With ``dry_run=True`` nothing is deleted.
    """
    _check_concurrency(concurrency)
    report = GarbageReport(dry_run=dry_run)
    candidates: list[tuple[Storage, StorageGarbage, dict[str, StorageConfig]]] = []
    listed_so_far = 0
    for name, storage in sorted(registry.storages.items()):
        found = StorageGarbage(name)
        listed: dict[str, StorageConfig] = {}
        async for config in storage.iter_stored():
            listed[_canonical(config)] = config
            listed_so_far += 1
            if on_progress is not None:
                on_progress(listed_so_far, None)
        found.listed = len(listed)
        report.storages.append(found)
        candidates.append((storage, found, listed))

    if any(listed for _, _, listed in candidates):
        referenced = await session.stream_scalars(
            select(ContentRecord.storage_config).execution_options(yield_per=2_000)
        )
        async for config in referenced:
            canonical = _canonical(config)
            for _, _, listed in candidates:
                listed.pop(canonical, None)

    for _, found, listed in candidates:
        found.unreferenced = list(listed.values())
    if not dry_run:
        await _delete_all(candidates, on_progress, concurrency)
    return report


async def _delete_all(
    candidates: Sequence[tuple[Storage, StorageGarbage, dict[str, StorageConfig]]],
    on_progress: ProgressCallback | None,
    concurrency: int,
) -> None:
    blobs = [
        (storage, found, config)
        for storage, found, _ in candidates
        for config in found.unreferenced
    ]

    async def remove(blob: tuple[Storage, StorageGarbage, StorageConfig]) -> None:
        storage, found, config = blob
        try:
            await storage.delete_data(config)
        except Exception as error:
            found.errors.append(f"{found.storage_name}: {config}: {type(error).__name__}: {error}")
        else:
            found.deleted += 1

    await _map_bounded(blobs, remove, concurrency, len(blobs), on_progress)


# --- helpers --------------------------------------------------------------------------------


async def _map_bounded(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    concurrency: int,
    total: int,
    on_progress: ProgressCallback | None,
) -> list[R]:
    """``work`` over ``items`` by a few workers, results in item order.

    A fixed pool of workers (not one task per item) keeps memory flat for millions of items.
    """
    results: dict[int, R] = {}
    indexes = iter(range(len(items)))
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in indexes:
            results[index] = await work(items[index])
            done += 1
            if on_progress is not None:
                on_progress(done, total)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    return [results[index] for index in range(len(items))]


def _canonical(config: Any) -> str:
    """One spelling per config, for comparing configs read back from JSON columns."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _chunks(ids: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        yield ids[start : start + _IDS_PER_STATEMENT]


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}.")


__all__ = [
    "ContentCheck",
    "ContentStatus",
    "DeleteReport",
    "GarbageReport",
    "ProgressCallback",
    "StorageGarbage",
    "VerifyReport",
    "collect_garbage",
    "delete_manifest",
    "verify_manifests",
]
