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
Completed, and Prefect's own write of the same record right after is skipped (the sequence is
in labox_prefect.persistence).

The table is created by this package's own Alembic scripts (labox_prefect.migrations), with
their own version table, so the core's schema history is untouched.
"""

from __future__ import annotations

import sqlite3
import uuid
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

from labox_prefect.core import AnySession, execute_in_session, session_bind
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


async def add_result_key(
    session: AnySession, storage_key: str, manifest_id: uuid.UUID | None, record: str | None
) -> None:
    """Point ``storage_key`` at a manifest in the session's transaction (the caller commits).

    An upsert: Prefect overwrites keys (e.g. on refresh_cache), and a retried transaction
    writes the same row again.
    """
    dialect = session_bind(session).dialect.name
    statement = _UPSERTS.get(dialect)
    if statement is None:
        statement = _upsert_statement(dialect)  # raises the error naming what is supported
    values = {
        "storage_key": storage_key,
        "manifest_id": manifest_id,
        "record": record,
        "created_at": utcnow(),
    }
    await execute_in_session(session, statement, values)


async def put_result_key(
    session: AsyncSession, storage_key: str, manifest_id: uuid.UUID | None, record: str | None
) -> None:
    """``add_result_key``, committed."""
    await add_result_key(session, storage_key, manifest_id, record)
    await session.commit()


async def get_result_key(
    connection: AsyncSession | AsyncConnection, storage_key: str
) -> ResultKey | None:
    """The row of ``storage_key``, or None when nothing was stored under it."""
    row = (await connection.execute(_SELECT_KEY, {"storage_key": storage_key})).first()
    if row is None:
        return None
    return ResultKey(storage_key, row.manifest_id, row.record)


_SELECT_KEY_SQL = str(_SELECT_KEY.compile(dialect=sqlite.dialect()))
"""``_SELECT_KEY`` in SQLite's own SQL (one ``?``: the storage key), for plain sqlite3."""


def lookup_result_key(connection: sqlite3.Connection, storage_key: str) -> ResultKey | None:
    """``get_result_key`` on a plain sqlite3 connection (the embedded database, read in the
    caller's thread; manifest ids are stored as 32 hex digits, as SQLAlchemy's Uuid does)."""
    # fetchall steps the statement to its end, so no read snapshot outlives the lookup.
    rows = connection.execute(_SELECT_KEY_SQL, (storage_key,)).fetchall()
    if not rows:
        return None
    manifest_id, record = rows[0]
    return ResultKey(storage_key, None if manifest_id is None else uuid.UUID(manifest_id), record)


async def upgrade_result_keys(engine: AsyncEngine) -> None:
    """Create or migrate this table (the core tables must exist already)."""
    from labox_prefect.migrations import aupgrade_integration

    await aupgrade_integration(engine)


__all__ = [
    "ResultKey",
    "add_result_key",
    "get_result_key",
    "lookup_result_key",
    "metadata",
    "put_result_key",
    "result_keys",
    "upgrade_result_keys",
]
