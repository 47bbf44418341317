"""The SQL schema: one manifest record per saved object, one content record per content.

Column names are part of the public contract (users query them). Tags are JSONB with a GIN
index on PostgreSQL (``tags @> '{"k": "v"}'`` stays fast at millions of rows) and JSON on
SQLite. The index uses the ``jsonb_path_ops`` operator class, which indexes each key-value
pair as one entry where the default class indexes keys and values apart: a filter naming a
key or a value that most records carry (a "kind" key, a "true" value) no longer reads that
item's long posting list. Over 1M manifests it is half the size and answers two-pair filters
about 1.5x faster; it serves containment (``@>``) only, the one tag filter Labox makes.

A few tag keys also have an *ordered tag index* (``ORDERED_TAG_INDEXES``): a btree on the
key's value, then time, then id, which answers "the newest records carrying key = value" by
reading those records in order and stopping at the limit, however many there are and however
they are spread over time. They are the keys the Prefect integration writes on every record
(the core imports nothing of Prefect; it only knows these labels) that ``find_results``
filters on. On SQLite, records without the key have no entry (the indexes are partial).
The GIN index
alone cannot give that order: over 1M manifests, a popular flow's newest results took a sort
of all its records, or a walk of the time index whose cost the planner could only guess (up
to 612 ms per call).

The schema of production databases is managed by the shipped Alembic migrations;
``BaseRecord.create_all`` is the shortcut for tests and embedded use.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from labox_prefect.core.postgresql_tags import ensure_tag_index as ensure_postgresql_tag_index
from labox_prefect.core.sqlite_tags import ensure_tag_index

JsonColumn = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC, SQLite included."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give timestamps a timezone (UTC)")
        # SQLite keeps the wall-clock text without its offset: store and compare in UTC.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def _create_missing_indexes(connection: Connection, metadata: MetaData) -> None:
    """Indexes a newer version declares on tables an older one made, and the tag index.

    ``create_all`` makes only missing tables; an embedded database made before the ordered
    tag indexes existed gets them here, once (``IF NOT EXISTS``: SQLAlchemy cannot reflect
    SQLite's expression indexes to check first), and the tag index of ``sqlite_tags`` (with
    the entries of the manifests already there) when it has none. On PostgreSQL, the tag
    index of ``postgresql_tags`` when it has none; its other indexes are migrated instead.
    """
    if connection.dialect.name == "postgresql":
        if ManifestRecord.__tablename__ in metadata.tables:
            ensure_postgresql_tag_index(connection)
        return
    if connection.dialect.name != "sqlite":
        return
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            if index.info.get("dialect", "sqlite") == "sqlite":
                connection.execute(CreateIndex(index, if_not_exists=True))
    if ManifestRecord.__tablename__ in metadata.tables:
        ensure_tag_index(connection)


class SchemaTask:
    """``create_all``'s result: await it in async code, or call ``.run()`` from sync code."""

    def __init__(self, engine: AsyncEngine, metadata: Any) -> None:
        self._engine = engine
        self._metadata = metadata

    async def _create(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(self._metadata.create_all)
            await conn.run_sync(_create_missing_indexes, self._metadata)

    def __await__(self) -> Generator[Any, None, None]:
        return self._create().__await__()

    def run(self) -> None:
        """Create the tables from synchronous code (no event loop may be running)."""

        async def create_and_release() -> None:
            await self._create()
            # Pooled connections belong to this temporary loop; drop them before it closes.
            await self._engine.dispose()

        asyncio.run(create_and_release())


class BaseRecord(DeclarativeBase):
    """Declarative base of the Labox tables."""

    @classmethod
    def create_all(cls, engine: AsyncEngine) -> SchemaTask:
        """Create the Labox tables that do not exist yet."""
        return SchemaTask(engine, cls.metadata)


@dataclass(frozen=True)
class OrderedTagIndex:
    """An index of the records carrying tag ``key``, by its value, then newest first.

    ``only``: a (key, value) pair: the index holds only the records carrying that pair too,
    and answers filters that name both (``prefect.kind = flow`` is one record in twenty).
    Keys and values here are plain ASCII labels: they are written into the SQL of the
    indexes and of the queries that must match them.
    """

    name: str
    key: str
    only: tuple[str, str] | None = None

    def postgresql_value(self, key: str | None = None) -> str:
        """The indexed expression on PostgreSQL: the key's JSONB value."""
        return f"(tags -> {_sql_text(self.key if key is None else key)})"

    def sqlite_value(self, key: str | None = None) -> str:
        """The indexed expression on SQLite: the key's value as SQL text."""
        return f"json_extract(tags, {_sql_text(_sqlite_path(self.key if key is None else key))})"

    def postgresql_where(self) -> str | None:
        """The partial index's predicate: the ``only`` pair, or none.

        A PostgreSQL index without the key's records would be smaller, but ANALYZE gathers
        the statistics of an index expression (each flow's share of the records, which the
        planner needs to choose this index) for non-partial indexes only.
        """
        if self.only is None:
            return None
        key, value = self.only
        return f"{self.postgresql_value(key)} = {_sql_text(_json_text(value))}::jsonb"

    def sqlite_where(self) -> str:
        if self.only is None:
            return f"{self.sqlite_value()} IS NOT NULL"
        key, value = self.only
        return f"{self.sqlite_value(key)} = {_sql_text(value)}"

    def indexes(self) -> tuple[Index, Index]:
        """The index on PostgreSQL and on SQLite, each made on (and ``info`` naming) its own."""
        # PostgreSQL orders by created_at in UTC as a timestamp (the same order): a filter
        # on this key can then be served in order by this index only, never by a backward
        # walk of ix_labox_manifests_created_at whose length the planner can only guess.
        where = self.postgresql_where()
        postgresql = Index(
            self.name,
            text(self.postgresql_value()),
            text(POSTGRESQL_TIME_ORDER),
            "id",
            postgresql_where=None if where is None else text(where),
            info={"dialect": "postgresql"},
        ).ddl_if(dialect="postgresql")
        # SQLite weighs two indexes on the same expression alike (which one it takes then
        # depends on the order they were made in): the ``only`` key leads, so that a filter
        # naming both pairs matches more of this index and always reads it.
        leading = [] if self.only is None else [text(self.sqlite_value(self.only[0]))]
        sqlite = Index(
            self.name,
            *leading,
            text(self.sqlite_value()),
            "created_at",
            "id",
            sqlite_where=text(self.sqlite_where()),
            info={"dialect": "sqlite"},
        ).ddl_if(dialect="sqlite")
        return postgresql, sqlite


POSTGRESQL_TIME_ORDER = "timezone('UTC', created_at)"
"""created_at as a UTC timestamp: ordered as created_at, and the order of the tag indexes."""

ORDERED_TAG_INDEXES = (
    OrderedTagIndex("ix_labox_manifests_flow_run_id", "prefect.flow_run_id"),
    OrderedTagIndex("ix_labox_manifests_task_name", "prefect.task_name"),
    OrderedTagIndex(
        "ix_labox_manifests_flow_results", "prefect.flow_name", only=("prefect.kind", "flow")
    ),
    OrderedTagIndex("ix_labox_manifests_flow_name", "prefect.flow_name"),
)
"""The ordered tag indexes, the most selective first: a query uses the first it can."""


def _sql_text(value: str) -> str:
    if not value.isascii() or not value.isprintable() or "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be written into index SQL as it is")
    return f"'{value}'"


def _sqlite_path(key: str) -> str:
    if '"' in key:
        raise ValueError(f"{key!r} cannot be written into a JSON path")
    return f'$."{key}"'


def _json_text(value: str) -> str:
    if '"' in value:
        raise ValueError(f"{value!r} cannot be written as a JSON string as it is")
    return f'"{value}"'


class ManifestRecord(BaseRecord):
    """One saved storable: which class, which unpacker, which tags."""

    __tablename__ = "labox_manifests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    class_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unpacker_name: Mapped[str] = mapped_column(String(255))
    tags: Mapped[dict[str, str]] = mapped_column(JsonColumn, default=dict)

    __table_args__ = (
        Index("ix_labox_manifests_created_at", "created_at"),
        Index("ix_labox_manifests_class_id", "class_id"),
        Index(
            "ix_labox_manifests_tags",
            "tags",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
            info={"dialect": "postgresql"},
        ).ddl_if(dialect="postgresql"),
        *(index for ordered in ORDERED_TAG_INDEXES for index in ordered.indexes()),
    )

    def __repr__(self) -> str:
        return f"ManifestRecord(id={self.id}, class_id={self.class_id}, tags={self.tags})"


class ContentRecord(BaseRecord):
    """One stored value or stream of a manifest, and where its bytes are."""

    __tablename__ = "labox_contents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    manifest_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("labox_manifests.id", ondelete="CASCADE")
    )
    content_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    content_encoding: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_size: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(128))
    content_hash_algorithm: Mapped[str] = mapped_column(String(32))
    serializer_name: Mapped[str] = mapped_column(String(255))
    serializer_config: Mapped[dict[str, Any]] = mapped_column(JsonColumn, default=dict)
    serializer_type: Mapped[str] = mapped_column(String(16))
    storage_name: Mapped[str] = mapped_column(String(255))
    storage_config: Mapped[dict[str, Any]] = mapped_column(JsonColumn, default=dict)

    __table_args__ = (
        UniqueConstraint("manifest_id", "content_key", name="uq_labox_contents_manifest_key"),
        Index("ix_labox_contents_manifest_id", "manifest_id"),
        Index("ix_labox_contents_content_hash", "content_hash"),
    )

    def __repr__(self) -> str:
        return (
            f"ContentRecord(manifest_id={self.manifest_id}, key={self.content_key!r}, "
            f"type={self.content_type!r}, size={self.content_size})"
        )


__all__ = [
    "ORDERED_TAG_INDEXES",
    "POSTGRESQL_TIME_ORDER",
    "BaseRecord",
    "ContentRecord",
    "ManifestRecord",
    "OrderedTagIndex",
    "SchemaTask",
    "UTCDateTime",
    "utcnow",
]
