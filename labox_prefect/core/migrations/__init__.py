"""Schema migrations of the Labox tables, shipped with the package: no alembic.ini needed.

``upgrade(url)`` brings a database to the newest schema; ``current(url)`` says where it is.
The revision lives in the ``labox_alembic_version`` table, so a project that manages its
own tables with Alembic in the same database keeps its own ``alembic_version`` untouched.

Tables made earlier by ``BaseRecord.create_all`` are adopted: when they exist without a
recorded revision and match the schema of this package version exactly, they are stamped
instead of created again; when they differ, upgrading stops and lists the differences. The
ordered tag indexes (revision 0002) are the exception: tables made by an older version's
``create_all`` lack them, so adopted tables are stamped 0001 and upgraded, which creates
those of them that are missing. (Alembic cannot reflect expression indexes on SQLite, so it
compares them on PostgreSQL only.) The tag indexes, SQLite's (revision 0003, see
``labox_prefect.core.sqlite_tags``) and PostgreSQL's (revision 0004, and 0005 which adds
the task names, ``labox_prefect.core.postgresql_tags``), are no model, so no comparison sees
them: the upgrade makes each whole where any part of it is missing, and leaves it alone
otherwise.

``upgrade`` and ``current`` are synchronous. For an async URL (``sqlite+aiosqlite``,
``postgresql+asyncpg``) they run the work on a private event loop in a private thread, so
they work from any thread, but called on a thread whose event loop is running they block
that loop until the migration ends: from async code, ``await aupgrade(...)`` instead.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, create_engine, inspect, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from labox_prefect.core.database import (
    ORDERED_TAG_INDEXES,
    BaseRecord,
    ContentRecord,
    ManifestRecord,
)
from labox_prefect.core.errors import SchemaMismatchError

VERSION_TABLE = "labox_alembic_version"
"""Where the Labox schema revision is kept (not Alembic's default ``alembic_version``)."""

ADOPTED_REVISION = "0001"
"""What adopted tables are stamped as: revisions after it create what they add if missing."""

SCRIPT_LOCATION = Path(__file__).parent

T = TypeVar("T")


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (the newest by default).

    Idempotent: an up-to-date database is left as it is. Synchronous; see the module
    docstring for async URLs and running event loops.
    """
    run_on_database(url, lambda connection: upgrade_on(connection, revision))


async def aupgrade(url_or_engine: str | URL | AsyncEngine, revision: str = "head") -> None:
    """``upgrade`` for async code: takes an async URL or an AsyncEngine (left open)."""
    await arun_on_database(url_or_engine, lambda connection: upgrade_on(connection, revision))


def current(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at, or None if Labox never migrated it."""
    return run_on_database(url, revision_on)


async def acurrent(url_or_engine: str | URL | AsyncEngine) -> str | None:
    """``current`` for async code: takes an async URL or an AsyncEngine (left open)."""
    return await arun_on_database(url_or_engine, revision_on)


def context_options(dialect_name: str) -> dict[str, Any]:
    """Options of every Alembic context over Labox tables: migrations and comparisons.

    They name our version table (so comparisons do not see it as an extra table) and leave
    out of comparisons the indexes the models declare for another database (``info``
    ``{"dialect": ...}``: the tags GIN index, each dialect's ordered tag indexes): Alembic
    does not know that they are made on one dialect only. Tables that are not Labox's
    (a project's own, the Prefect integration's) and their indexes are left out too: they
    share the database, they are not differences in the Labox schema.
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        if reflected and compare_to is None and table not in BaseRecord.metadata.tables:
            return False
        only_on = getattr(obj, "info", {}).get("dialect") if type_ == "index" else None
        return only_on in (None, dialect_name)

    return {"version_table": VERSION_TABLE, "include_object": include_object, "compare_type": True}


def alembic_config(connection: Connection) -> Config:
    """An Alembic config for the shipped scripts, bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Migrate on an open connection (adopting tables made by create_all), in its transaction."""
    config = alembic_config(connection)
    if revision_on(connection) is None and _has_labox_tables(connection):
        _adopt(connection, config)
    command.upgrade(config, revision)


def _adopt(connection: Connection, config: Config) -> None:
    """Stamp tables made by ``create_all`` as ADOPTED_REVISION if they match this version.

    Only missing ordered tag indexes are allowed: the upgrade after the stamp creates them.
    """
    differences = [
        difference
        for difference in schema_differences(connection)
        if not _is_missing_ordered_index(difference)
    ]
    if differences:
        listing = "\n".join(f"  {difference}" for difference in differences)
        raise SchemaMismatchError(
            f"The Labox tables exist but have no recorded migration, and differ from the schema "
            f"of this version:\n{listing}\nThey were made by another version's "
            f"BaseRecord.create_all; migrate them by hand, or export the data and start from "
            f"an empty database."
        )
    command.stamp(config, ADOPTED_REVISION)


def schema_differences(connection: Connection) -> list[Any]:
    """Alembic's differences between the Labox tables on ``connection`` and the models.

    SQLAlchemy cannot reflect expression indexes on SQLite, so there the ordered tag
    indexes are not compared (and the warnings saying so are silenced).
    """
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        return list(compare_metadata(context, BaseRecord.metadata))


def _is_missing_ordered_index(difference: Any) -> bool:
    ordered = {index.name for index in ORDERED_TAG_INDEXES}
    return (
        isinstance(difference, tuple)
        and difference[0] == "add_index"
        and difference[1].name in ordered
    )


def _has_labox_tables(connection: Connection) -> bool:
    inspector = inspect(connection)
    return any(
        inspector.has_table(record.__tablename__) for record in (ManifestRecord, ContentRecord)
    )


def revision_on(connection: Connection, version_table: str = VERSION_TABLE) -> str | None:
    """The revision recorded in ``version_table`` on an open connection (None if none)."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


def run_on_database(url: str | URL, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction on ``url`` from sync code, async URLs included."""
    if not make_url(url).get_dialect().is_async:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                return work(connection)
        finally:
            engine.dispose()
    # A private thread: asyncio.run would fail under a running loop, and would clear the
    # calling thread's event loop otherwise.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labox-migrations") as thread:
        return thread.submit(asyncio.run, arun_on_database(url, work)).result()


async def arun_on_database(
    url_or_engine: str | URL | AsyncEngine, work: Callable[[Connection], T]
) -> T:
    """Run ``work`` in one transaction on an async URL or engine (an engine is left open)."""
    if isinstance(url_or_engine, AsyncEngine):
        async with url_or_engine.begin() as connection:
            return await connection.run_sync(work)
    engine = create_async_engine(url_or_engine, pool_pre_ping=True)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


__all__ = [
    "ADOPTED_REVISION",
    "VERSION_TABLE",
    "SchemaMismatchError",
    "acurrent",
    "alembic_config",
    "arun_on_database",
    "aupgrade",
    "context_options",
    "current",
    "revision_on",
    "run_on_database",
    "schema_differences",
    "upgrade",
    "upgrade_on",
]
