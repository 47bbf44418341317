"""Taking care of stored data: delete records, verify stored bytes, collect garbage.

Storages are content-addressed, so one blob can back contents of many manifests, and a
storage can be shared by several databases. A blob is deleted only when:

- no content record of this database points at it (any storage name counts: two names
  over one location never delete each other's blobs);
- the storage's recorded owners are exactly this database (see ``ownership``): a blob
  unreferenced here may be used by a database this process cannot see;
- it is older than the grace period (``DEFAULT_GRACE``, one hour), checked again just
  before the delete: a save writes (or, for content already stored, rewrites) its blobs
  before its records commit, which refreshes their age, so a save in flight keeps its
  blobs young until its records exist.

Record deletions commit before any blob goes, so a failure half-way leaves unreferenced
blobs (which ``collect_garbage`` removes later), never records that point at nothing.
The window that remains is the few milliseconds between the last age check of a blob and
its delete, for a save that reuses that very blob at that moment; ``verify_manifests``
finds any content it affected, and saving the object again repairs it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.core.database import ContentRecord, ManifestRecord, utcnow
from labox_prefect.core.defaults import registry_for_session
from labox_prefect.core.digest import verify_stream
from labox_prefect.core.errors import (
    ContentCorruptedError,
    DamagedRecordError,
    InvalidArgumentError,
    ManifestNotFoundError,
    NotRegisteredError,
    StorageKeyError,
    StorageOwnershipError,
)
from labox_prefect.core.loader import check_unpacker_family
from labox_prefect.core.ownership import require_sole_owner, session_database
from labox_prefect.core.query import find_manifests
from labox_prefect.core.registry import Registry
from labox_prefect.core.storage import Storage, StorageConfig, StoredBlob
from labox_prefect.core.tags import Tags, check_tags

T = TypeVar("T")
R = TypeVar("R")

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``on_progress(done, total)``; ``total`` is None while it is not known yet."""

DEFAULT_CONCURRENCY = 8
"""Blobs read or deleted at once: enough to hide object-store latency, little memory."""

DEFAULT_GRACE = timedelta(hours=1)
"""Blobs and temporary files younger than this are never deleted (a save may be using them)."""

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
    """Blobs left in place: still referenced, younger than the grace period, or in a storage
    other databases also use (``collect_garbage`` says which)."""


async def delete_manifest(
    session: AsyncSession,
    manifest_id: uuid.UUID,
    *,
    registry: Registry | None = None,
    delete_data: bool = False,
    grace: timedelta = DEFAULT_GRACE,
) -> DeleteReport:
    """Delete a manifest and its content records, and commit.

    With ``delete_data=True`` (which needs ``registry``), also delete each blob nobody else
    uses (see the module docstring), once the deletion of the records is committed. Every
    storage involved is resolved first, so an unregistered storage fails the call with
    nothing changed. The session's transaction is committed (with whatever else it holds).
    InvalidArgumentError (a ValueError) for ``delete_data=True`` without a registry.
    """
    if delete_data and registry is None:
        raise InvalidArgumentError(
            "delete_manifest(..., delete_data=True) needs registry=... to reach the storages "
            "that hold the blobs; pass the registry, or delete_data=False to delete only the "
            "records."
        )
    exists = await session.scalar(select(ManifestRecord.id).where(ManifestRecord.id == manifest_id))
    if exists is None:
        raise ManifestNotFoundError(
            f"No manifest with id {manifest_id} exists in this database; it may have been "
            f"deleted already."
        )
    blobs, contents = await _delete_records(session, [manifest_id], registry, delete_data)
    outcome = BlobOutcome()
    if registry is not None and blobs:
        await _delete_unused_blobs(session, blobs, grace, outcome, dry_run=False)
    return DeleteReport(manifest_id, contents, outcome.deleted, outcome.kept)


_Blobs = dict[tuple[str, str], tuple[Storage, str, StorageConfig]]
"""(storage name, canonical config) -> (storage, content hash, config)."""


async def _delete_records(
    session: AsyncSession,
    manifest_ids: Sequence[uuid.UUID],
    registry: Registry | None,
    with_blobs: bool,
) -> tuple[_Blobs, int]:
    """Delete manifests and contents and commit; return the blobs they used, and how many
    content records went. Every storage is resolved before anything is deleted."""
    blobs, contents = await _blobs_of(session, registry if with_blobs else None, manifest_ids)
    for chunk in _chunks(list(manifest_ids)):
        # Contents first: SQLite enforces no ON DELETE CASCADE unless foreign keys are enabled.
        await session.execute(delete(ContentRecord).where(ContentRecord.manifest_id.in_(chunk)))
        await session.execute(delete(ManifestRecord).where(ManifestRecord.id.in_(chunk)))
    await session.commit()
    return blobs, contents


@dataclass(slots=True)
class BlobOutcome:
    """What happened to the blobs of deleted records."""

    deleted: int = 0
    kept: int = 0
    would_delete: list[tuple[str, StorageConfig]] = field(default_factory=list)
    """(storage name, config) of each blob deleted, or to be deleted in a dry run."""
    notes: list[str] = field(default_factory=list)
    """Why blobs were kept when it is not "still referenced" (ownership, failures)."""


async def _delete_unused_blobs(
    session: AsyncSession,
    blobs: _Blobs,
    grace: timedelta,
    outcome: BlobOutcome,
    *,
    dry_run: bool,
    ignoring: frozenset[uuid.UUID] = frozenset(),
) -> None:
    """Delete (or list, in a dry run) each blob no manifest but ``ignoring`` uses."""
    database = session_database(session)
    cutoff = utcnow() - grace
    owned: dict[str, bool] = {}
    for (storage_name, canonical), (storage, content_hash, config) in blobs.items():
        if storage.keeps_data_in_records:
            continue  # gone with its content record
        if await _still_referenced(session, content_hash, canonical, ignoring):
            outcome.kept += 1
            continue
        if storage_name not in owned:
            try:
                await require_sole_owner(storage, database)
                owned[storage_name] = True
            except StorageOwnershipError as error:
                owned[storage_name] = False
                outcome.notes.append(str(error))
        if not owned[storage_name] or not await _old_enough(storage, config, cutoff, grace):
            outcome.kept += 1
            continue
        outcome.would_delete.append((storage_name, config))
        if dry_run:
            continue
        try:
            await storage.delete_data(config)
        except Exception as error:
            error.add_note(
                f"The records are deleted; the blob left behind in {storage_name!r} is "
                f"removed by the next collect_garbage."
            )
            raise
        outcome.deleted += 1


async def _still_referenced(
    session: AsyncSession,
    content_hash: str,
    canonical: str,
    ignoring: frozenset[uuid.UUID] = frozenset(),
) -> bool:
    """Whether a content record of a manifest not in ``ignoring`` points at the same blob.

    As in ``collect_garbage``, any record with the same config counts, whatever storage
    name it gives: two names over one location must not delete each other's blobs.
    """
    rows = await session.execute(
        select(ContentRecord.manifest_id, ContentRecord.storage_config).where(
            ContentRecord.content_hash == content_hash
        )
    )
    return any(
        manifest_id not in ignoring and _canonical(config) == canonical
        for manifest_id, config in rows
    )


async def _old_enough(
    storage: Storage, config: StorageConfig, cutoff: datetime, grace: timedelta
) -> bool:
    """Whether the blob was last written before ``cutoff``, asked of the storage right now."""
    if grace <= timedelta(0):
        return True
    modified = await storage.blob_modified(config)
    return modified is not None and modified < cutoff


# --- retention ------------------------------------------------------------------------------


@dataclass(slots=True)
class RetentionReport:
    """What ``delete_manifests`` deleted (or would delete, in a dry run)."""

    dry_run: bool
    manifests: list[ManifestRecord] = field(default_factory=list)
    """The manifests selected, newest first (detached records: id, created_at, tags...)."""
    contents_deleted: int = 0
    blobs: BlobOutcome = field(default_factory=BlobOutcome)


async def delete_manifests(
    session: AsyncSession,
    registry: Registry,
    *,
    older_than: datetime | None = None,
    keep_last: int | None = None,
    group_by: str | Sequence[str] | None = None,
    tags: Tags | None = None,
    delete_data: bool = True,
    dry_run: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    on_progress: ProgressCallback | None = None,
) -> RetentionReport:
    """Delete the manifests a retention rule selects, then the blobs nobody else uses.

    A manifest is selected when it carries every pair of ``tags`` and, when given, was
    created before ``older_than`` (timezone-aware) and is not among the ``keep_last``
    newest of its group: manifests with the same value of tag ``group_by``, or the same values
    of every tag when it is a sequence of tag keys (all matching manifests form one group
    when ``group_by`` is None; a missing tag counts as one value of its own). At least one of
    ``older_than``, ``keep_last`` and ``tags`` is required. Blobs follow the rules of
    ``collect_garbage`` (references, owners, grace). With ``dry_run=True`` nothing is
    deleted and the report lists what would be.
    ``on_progress(done, total)`` counts manifests deleted. InvalidArgumentError (a
    ValueError) for no rule, a negative ``keep_last``, or an ``older_than`` that is not an
    aware datetime.
    """
    if older_than is None and keep_last is None and not tags:
        raise InvalidArgumentError(
            "delete_manifests needs a rule: pass older_than=, keep_last= and/or tags= (it "
            "never deletes every record by default)."
        )
    if keep_last is not None and (
        isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0
    ):
        raise InvalidArgumentError(
            f"keep_last must be an int >= 0 (how many of the newest to keep in each group), "
            f"not {keep_last!r}."
        )
    if older_than is not None:
        _check_moment(older_than)
    wanted = check_tags(tags)
    report = RetentionReport(dry_run=dry_run)
    keys = [group_by] if isinstance(group_by, str) else list(group_by or ())
    seen: dict[tuple[str | None, ...], int] = {}
    for manifest in await find_manifests(session, tags=wanted or None):
        group = tuple(manifest.tags.get(key) for key in keys)
        rank = seen[group] = seen.get(group, 0) + 1
        if keep_last is not None and rank <= keep_last:
            continue
        if older_than is not None and manifest.created_at >= older_than:
            continue
        report.manifests.append(manifest)
    total = len(report.manifests)
    if on_progress is not None:
        on_progress(0, total)
    if dry_run:
        selected = frozenset(m.id for m in report.manifests)
        blobs, _ = await _blobs_of(session, registry if delete_data else None, list(selected))
        await _delete_unused_blobs(
            session, blobs, grace, report.blobs, dry_run=True, ignoring=selected
        )
        return report
    done = 0
    for chunk in _chunks([m.id for m in report.manifests]):
        blobs, contents = await _delete_records(session, chunk, registry, delete_data)
        report.contents_deleted += contents
        if blobs:
            await _delete_unused_blobs(session, blobs, grace, report.blobs, dry_run=False)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, total)
    return report


async def _blobs_of(
    session: AsyncSession, registry: Registry | None, manifest_ids: Sequence[uuid.UUID]
) -> tuple[_Blobs, int]:
    """The blobs the manifests' contents use (none without a registry), and their count."""
    bound = registry_for_session(registry, session) if registry is not None else None
    blobs: _Blobs = {}
    contents = 0
    for chunk in _chunks(list(manifest_ids)):
        rows = await session.execute(
            select(
                ContentRecord.content_hash, ContentRecord.storage_name, ContentRecord.storage_config
            ).where(ContentRecord.manifest_id.in_(chunk))
        )
        for content_hash, storage_name, config in rows:
            contents += 1
            if bound is not None:
                storage = bound.get_storage(storage_name)
                blobs[(storage_name, _canonical(config))] = (storage, content_hash, config)
    return blobs, contents


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
    DAMAGED = "damaged"
    """The bytes are fine but the manifest's class id names a registered class of another
    unpacker family (the row was altered): the record cannot load. A class id the registry
    does not know is not reported (the verifying process may lack that class)."""


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
    Contents of a manifest whose class id was altered to name a class of another unpacker
    family are reported DAMAGED (the load would raise DamagedRecordError).
    """
    _check_concurrency(concurrency)
    registry = registry_for_session(registry, session)
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
    checks = await _map_bounded(
        rows, lambda row: _check_content(row, registry), concurrency, total, on_progress
    )
    damaged = await _damaged_classes(session, registry, sorted({row.manifest_id for row in rows}))
    report.checks = [
        replace(check, status=ContentStatus.DAMAGED, detail=damaged[check.manifest_id])
        if check.status is ContentStatus.OK and check.manifest_id in damaged
        else check
        for check in checks
    ]
    return report


async def _damaged_classes(
    session: AsyncSession, registry: Registry, manifest_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Why each manifest whose class id names a class of another unpacker family is damaged."""
    columns = (ManifestRecord.id, ManifestRecord.class_id, ManifestRecord.unpacker_name)
    damaged: dict[uuid.UUID, str] = {}
    for chunk in _chunks(manifest_ids):
        result = await session.execute(select(*columns).where(ManifestRecord.id.in_(chunk)))
        for row in result.mappings():
            manifest = dict(row)
            try:
                check_unpacker_family(
                    manifest, registry.get_storable(manifest["class_id"]), registry
                )
            except DamagedRecordError as error:
                damaged[manifest["id"]] = str(error)
            except NotRegisteredError:
                continue  # unknown here, not proven damaged
    return damaged


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
    """Blobs no content record points at and older than the grace period: deleted, or to be
    deleted in a dry run."""
    young: int = 0
    """Unreferenced blobs kept because they are younger than the grace period (or their age
    is unknown): a save may be about to record them."""
    temporary: list[str] = field(default_factory=list)
    """Temporary files of dead writes (older than the grace period): removed, or to be."""
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    """One line per blob whose deletion failed (it stays, and is tried again next time)."""


@dataclass(slots=True)
class GarbageReport:
    """Garbage per registered storage. Sizes are not reported: storages do not list them."""

    dry_run: bool
    grace: timedelta = DEFAULT_GRACE
    database: str = ""
    """The database whose references were read (its label, without credentials)."""
    storages: list[StorageGarbage] = field(default_factory=list)

    @property
    def unreferenced(self) -> int:
        return sum(len(storage.unreferenced) for storage in self.storages)

    @property
    def deleted(self) -> int:
        return sum(storage.deleted for storage in self.storages)

    @property
    def young(self) -> int:
        return sum(storage.young for storage in self.storages)

    @property
    def temporary(self) -> int:
        return sum(len(storage.temporary) for storage in self.storages)

    @property
    def errors(self) -> list[str]:
        return [error for storage in self.storages for error in storage.errors]


async def collect_garbage(
    session: AsyncSession,
    registry: Registry,
    *,
    dry_run: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    claim: bool = False,
    forget_owners: Sequence[str] = (),
    on_progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> GarbageReport:
    """Delete the blobs of registered storages that nobody uses, and dead temporary files.

    A blob goes only when no content record of this database points at it, it is older
    than ``grace`` (checked again just before the delete), and this database is the only
    recorded owner of its storage; otherwise StorageOwnershipError is raised before
    anything is deleted, naming the databases this one cannot see. ``claim=True`` first
    records this database as an owner, for storages written before owners were recorded:
    only pass it when no other database uses them. ``forget_owners`` removes the owner
    markers of databases that no longer exist (labels as the refusal names them) from every
    registered storage before the check (in a dry run, they are only disregarded). Every
    storage is listed before any
    reference is read, so blobs of a save that commits during collection are not taken
    for garbage. Temporary files (``.tmp/``) older than ``grace`` are writes of killed
    processes and are removed whatever the owners.

    ``on_progress(done, None)`` counts blobs while listing, then ``on_progress(done,
    total)`` counts deletions. With ``dry_run=True`` nothing is deleted and the report
    lists every blob and temporary file that would be.
    """
    _check_concurrency(concurrency)
    registry = registry_for_session(registry, session)
    database = session_database(session)
    cutoff = utcnow() - grace
    report = GarbageReport(dry_run=dry_run, grace=grace, database=database)
    candidates: list[tuple[Storage, StorageGarbage, dict[str, StoredBlob]]] = []
    listed_so_far = 0
    for name, storage in sorted(registry.storages.items()):
        found = StorageGarbage(name)
        listed: dict[str, StoredBlob] = {}
        async for blob in storage.iter_stored_blobs():
            listed[_canonical(blob.config)] = blob
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

    for storage, found, listed in candidates:
        old = [blob for blob in listed.values() if _older(blob.modified, cutoff, grace)]
        found.young = len(listed) - len(old)
        found.unreferenced = [blob.config for blob in old]
        if not dry_run:
            for forgotten in forget_owners:
                await storage.remove_owner(forgotten)
        if found.unreferenced:
            if claim and not dry_run:
                await storage.add_owner(database)
            if not (claim and dry_run):
                await require_sole_owner(storage, database, ignoring=forget_owners)
    for storage, found, _ in candidates:
        found.temporary = await storage.collect_temporary(cutoff, dry_run=dry_run)
    if not dry_run:
        await _delete_all(candidates, cutoff, grace, on_progress, concurrency)
    return report


def _older(modified: datetime | None, cutoff: datetime, grace: timedelta) -> bool:
    if grace <= timedelta(0):
        return True
    return modified is not None and modified < cutoff


async def _delete_all(
    candidates: Sequence[tuple[Storage, StorageGarbage, dict[str, StoredBlob]]],
    cutoff: datetime,
    grace: timedelta,
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
            if not await _old_enough(storage, config, cutoff, grace):
                found.young += 1  # a save rewrote it since the listing: it is in use
                found.unreferenced.remove(config)
                return
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


def _check_moment(older_than: datetime) -> None:
    if not isinstance(older_than, datetime):
        raise InvalidArgumentError(
            f"older_than must be a timezone-aware datetime, not {type(older_than).__name__} "
            f"{older_than!r}; for an age, pass datetime.now(UTC) - timedelta(days=30)."
        )
    if older_than.tzinfo is None or older_than.utcoffset() is None:
        raise InvalidArgumentError(
            f"older_than={older_than!r} has no timezone; records are stamped in UTC, so pass "
            f"an aware datetime, e.g. older_than.replace(tzinfo=UTC)."
        )


def _check_concurrency(concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(
            f"concurrency must be an int >= 1 (how many blobs to check at once), not "
            f"{concurrency!r}."
        )


__all__ = [
    "DEFAULT_GRACE",
    "BlobOutcome",
    "ContentCheck",
    "ContentStatus",
    "DeleteReport",
    "GarbageReport",
    "ProgressCallback",
    "RetentionReport",
    "StorageGarbage",
    "VerifyReport",
    "collect_garbage",
    "delete_manifest",
    "delete_manifests",
    "verify_manifests",
]
