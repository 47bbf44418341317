"""Prefect storage keys of Labox results: the one table the integration adds.

Prefect finds a persisted result by a storage key (a cache key, or a random one). A row here
maps that key to the Labox manifest holding the result, so a key resolves with one primary-key
lookup from any process sharing the database. ``record`` keeps Prefect's small result record
(its metadata and the pointer LaboxSerializer wrote) when the manifest *is* the result; it is
null when the manifest stores the bytes of a record written with another serializer. A
failed run's record (the error's type and message, see LaboxSerializer) has a record and no
manifest: failures are not results. Deleting a manifest deletes its keys (foreign key with
ON DELETE CASCADE).

``labox_task`` writes a task's key together with its manifest, before Prefect reports the run
Completed; ``prewritten_keys`` remembers what it wrote, so that Prefect's own write of the
same record right after is skipped instead of repeated.

The table is created by this package's own Alembic scripts (labox_prefect.migrations), with
their own version table, so the core's schema history is untouched.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from labox_prefect.core.database import ManifestRecord, UTCDateTime, utcnow

metadata = MetaData()

# The manifests table is copied into our metadata only so that the foreign key resolves;
# it is created and migrated by the core, never by us.
cast(Table, ManifestRecord.__table__).to_metadata(metadata)

result_keys = Table(
    "labox_prefect_results",
    metadata,
    Column("storage_key", String(1024), primary_key=True),
    Column(
        "manifest_id",
        Uuid,
        ForeignKey("labox_manifests.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("record", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_labox_prefect_results_manifest_id", "manifest_id"),
)


@dataclass(frozen=True)
class ResultKey:
    """Where the result stored under a Prefect storage key lives."""

    storage_key: str
    manifest_id: uuid.UUID | None
    record: str | None


_UPDATED = ("manifest_id", "record", "created_at")

_SELECT_KEY = select(result_keys.c.manifest_id, result_keys.c.record).where(
    result_keys.c.storage_key == bindparam("storage_key")
)


def _upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE of one key, its values bound when executed."""
    if dialect == "postgresql":
        pg = postgresql.insert(result_keys)
        return pg.on_conflict_do_update(
            index_elements=["storage_key"], set_={k: pg.excluded[k] for k in _UPDATED}
        )
    if dialect == "sqlite":
        lite = sqlite.insert(result_keys)
        return lite.on_conflict_do_update(
            index_elements=["storage_key"], set_={k: lite.excluded[k] for k in _UPDATED}
        )
    raise NotImplementedError(
        f"Labox results are stored on PostgreSQL or SQLite, not {dialect!r}; set "
        f"LABOX_DATABASE_URL to one of those."
    )


# Built once per dialect: building the statement cost more than running it on SQLite.
_UPSERTS: dict[str, Any] = {name: _upsert_statement(name) for name in ("postgresql", "sqlite")}


async def put_result_key(
    session: AsyncSession, storage_key: str, manifest_id: uuid.UUID | None, record: str | None
) -> None:
    """Point ``storage_key`` at a manifest (Prefect overwrites keys, e.g. on refresh_cache)."""
    dialect = session.get_bind().dialect.name
    statement = _UPSERTS.get(dialect)
    if statement is None:
        statement = _upsert_statement(dialect)  # raises the error naming what is supported
    values = {
        "storage_key": storage_key,
        "manifest_id": manifest_id,
        "record": record,
        "created_at": utcnow(),
    }
    await session.execute(statement, values)
    await session.commit()


async def get_result_key(
    connection: AsyncSession | AsyncConnection, storage_key: str
) -> ResultKey | None:
    """The row of ``storage_key``, or None when nothing was stored under it."""
    row = (await connection.execute(_SELECT_KEY, {"storage_key": storage_key})).first()
    if row is None:
        return None
    return ResultKey(storage_key, row.manifest_id, row.record)


@dataclass(frozen=True)
class PlannedKey:
    """A key to write with the result's manifest, and the record Prefect will write under it.

    ``record`` renders the record from the pointer to the manifest just saved (the bytes
    LaboxSerializer.dumps returns for it).
    """

    storage_key: str
    record: Callable[[bytes], str]


_PREWRITTEN_SIZE = 1024


class PrewrittenKeys:
    """Keys this process wrote with a result's manifest, before Prefect asked to write them.

    Prefect writes a task's result record right after the run; when it writes exactly the
    record already stored under that key, there is nothing left to do. Bounded: a forgotten
    entry only means the record is written again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, str], str] = OrderedDict()

    def put(self, database_label: str, storage_key: str, record: str) -> None:
        with self._lock:
            self._records[(database_label, storage_key)] = record
            self._records.move_to_end((database_label, storage_key))
            while len(self._records) > _PREWRITTEN_SIZE:
                self._records.popitem(last=False)

    def already_written(self, database_label: str, storage_key: str, content: bytes) -> bool:
        """Whether ``content`` is the record written under the key (asked once per write)."""
        with self._lock:
            written = self._records.pop((database_label, storage_key), None)
        return written is not None and written.encode("utf-8") == content


prewritten_keys = PrewrittenKeys()


async def upgrade_result_keys(engine: AsyncEngine) -> None:
    """Create or migrate this table (the core tables must exist already)."""
    from labox_prefect.migrations import aupgrade_integration

    await aupgrade_integration(engine)


__all__ = [
    "PlannedKey",
    "PrewrittenKeys",
    "ResultKey",
    "get_result_key",
    "metadata",
    "prewritten_keys",
    "put_result_key",
    "result_keys",
    "upgrade_result_keys",
]
