"""The SQL schema: one manifest record per saved object, one content record per content.

Column names are part of the public contract (users query them). Tags are JSONB with a GIN
index on PostgreSQL (``tags @> '{"k": "v"}'`` stays fast at millions of rows) and JSON on
SQLite. The index uses the ``jsonb_path_ops`` operator class, which indexes each key-value
pair as one entry where the default class indexes keys and values apart: a filter naming a
key or a value that most records carry (a "kind" key, a "true" value) no longer reads that
item's long posting list. Over 1M manifests it is half the size and answers two-pair filters
about 1.5x faster; it serves containment (``@>``) only, the one tag filter Labox makes.
The schema of production databases is managed by the shipped Alembic migrations;
``BaseRecord.create_all`` is the shortcut for tests and embedded use.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class SchemaTask:
    """``create_all``'s result: await it in async code, or call ``.run()`` from sync code."""

    def __init__(self, engine: AsyncEngine, metadata: Any) -> None:
        self._engine = engine
        self._metadata = metadata

    async def _create(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(self._metadata.create_all)

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
        ).ddl_if(dialect="postgresql"),
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


__all__ = ["BaseRecord", "ContentRecord", "ManifestRecord", "SchemaTask", "UTCDateTime", "utcnow"]
