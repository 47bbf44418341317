"""Finding saved objects: manifests by tag, class and time, and the contents of one manifest.

Every record returned here is *detached*: built from the selected row and attached to no
session. It stays readable after the caller's session commits (``expire_on_commit=True``)
or closes, and querying never disturbs objects the caller already holds in its session.

Queries retry transient database failures (see ``connection``) before they raise
DatabaseUnavailableError.

Tag filters mean containment: a manifest matches when it carries every given pair, and
may carry more. On PostgreSQL that is JSONB ``tags @> '{...}'``, which the GIN index
``ix_labox_manifests_tags`` answers. On SQLite each pair is an ``EXISTS`` over
``json_each(tags)``: JSON paths (``json_extract(tags, '$."k"')``) cannot name a key that
holds a double quote, or a non-ASCII key stored escaped, while ``json_each`` compares the
decoded key itself, so any key works.

When the filter names a key of an ordered tag index (``database.ORDERED_TAG_INDEXES``: the
run keys the Prefect integration writes), the query asks for that key's value in the
index's own terms, and on PostgreSQL orders by the index's time expression: the index gives
the matching records newest first and the query stops at the limit, and no plan can walk
the whole time index instead. The other pairs are checked on the records it reads (on
PostgreSQL, one ``@>`` of the rest; on SQLite, the ``json_each`` test of every pair, so what
matches is unchanged on both). A filter naming several such keys uses the first index of the
list, the most selective.

On PostgreSQL the tag values are written into the statement as constants (quoted by
SQLAlchemy), so that every query is planned for its own values (see ``_jsonb_constant``).
Figures over 1M manifests: bench/query_scale.py and the README's Performance section.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state

from labox_prefect.core.connection import retrying
from labox_prefect.core.database import (
    ORDERED_TAG_INDEXES,
    POSTGRESQL_TIME_ORDER,
    BaseRecord,
    ContentRecord,
    ManifestRecord,
    OrderedTagIndex,
    UTCDateTime,
)
from labox_prefect.core.errors import ManifestNotFoundError, UnsupportedDatabaseError
from labox_prefect.core.ownership import session_database
from labox_prefect.core.storable import Storable
from labox_prefect.core.tags import Tags, check_tags

R = TypeVar("R", bound=BaseRecord)


async def find_manifests(
    session: AsyncSession,
    *,
    tags: Tags | None = None,
    class_id: uuid.UUID | None = None,
    storable: type[Storable] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[ManifestRecord]:
    """Manifests matching every given filter, newest first.

    ``tags``: every pair must be present (others may be too). ``class_id`` or ``storable``
    (a Storable class, whose class id is used): only objects of that class. ``since`` is
    inclusive and ``until`` exclusive, both timezone-aware. ``limit``: at most that many.
    Ties in ``created_at`` are broken by id so that paging is stable.
    """
    wanted_class = _class_id_filter(class_id, storable)
    wanted = check_tags(tags)
    dialect = session.get_bind().dialect.name
    statement = select(*ManifestRecord.__table__.columns)
    ordered = _ordered_index(wanted) if dialect in ("postgresql", "sqlite") else None
    if ordered is not None and dialect == "postgresql":
        statement = _postgresql_ordered(statement, ordered, wanted, since, until)
    else:
        if ordered is not None:  # SQLite: the index's expression, then every pair exactly
            statement = _sqlite_ordered(statement, ordered, wanted)
        if wanted:
            statement = statement.where(_tags_contain(dialect, wanted))
        statement = statement.order_by(ManifestRecord.created_at.desc(), ManifestRecord.id.desc())
    if wanted_class is not None:
        statement = statement.where(ManifestRecord.class_id == wanted_class)
    if since is not None:
        statement = statement.where(ManifestRecord.created_at >= _aware(since, "since"))
    if until is not None:
        statement = statement.where(ManifestRecord.created_at < _aware(until, "until"))
    if limit is not None:
        statement = statement.limit(_positive(limit))
    return await _detached(session, ManifestRecord, statement)


async def get_manifest(session: AsyncSession, manifest_id: uuid.UUID) -> ManifestRecord:
    """The manifest with this id; ManifestNotFoundError if there is none."""
    statement = select(*ManifestRecord.__table__.columns).where(ManifestRecord.id == manifest_id)
    found = await _detached(session, ManifestRecord, statement)
    if not found:
        raise ManifestNotFoundError(
            f"No manifest with id {manifest_id} exists in this database; check the database "
            f"URL, or whether the record was deleted."
        )
    return found[0]


async def get_contents(session: AsyncSession, manifest_id: uuid.UUID) -> list[ContentRecord]:
    """The content records of a manifest, ordered by content key (empty if there are none)."""
    statement = (
        select(*ContentRecord.__table__.columns)
        .where(ContentRecord.manifest_id == manifest_id)
        .order_by(ContentRecord.content_key)
    )
    return await _detached(session, ContentRecord, statement)


def _tags_contain(dialect: str, tags: dict[str, str]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return type_coerce(ManifestRecord.tags, JSONB).contains(_jsonb_constant(tags))
    if dialect == "sqlite":
        return and_(*(_sqlite_has_tag(key, value) for key, value in tags.items()))
    raise UnsupportedDatabaseError(
        f"Filtering by tags is implemented for PostgreSQL and SQLite, not {dialect!r}; use "
        f"one of those databases for Labox records."
    )


def _jsonb_constant(value: object) -> ColumnElement[Any]:
    """A JSON value written into the statement (quoted by SQLAlchemy), not a parameter.

    PostgreSQL then plans each query for its own values, as a million records need: how
    many records carry a pair decides between reading an index in time order and
    collecting the matches to sort them. A prepared statement with parameters gets, after
    five runs, a generic plan made for no value in particular: over 1M manifests, a walk of
    the whole time index for a rare tag (1.9 s).
    """
    return cast(bindparam(None, json.dumps(value), String, literal_execute=True), JSONB)


def _ordered_index(tags: dict[str, str]) -> OrderedTagIndex | None:
    """The first ordered tag index whose key (and ``only`` pair) the filter names."""
    for index in ORDERED_TAG_INDEXES:
        if index.key in tags and (index.only is None or tags.get(index.only[0]) == index.only[1]):
            return index
    return None


def _postgresql_ordered(
    statement: Select[Any],
    index: OrderedTagIndex,
    tags: dict[str, str],
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    """Match the index's key by its own expression, order by its time; ``@>`` the rest.

    ``tags -> key = '"value"'::jsonb`` holds exactly when ``tags @> {key: value}`` does
    (tags are an object, and a JSONB object has each key once), so the pair leaves the
    ``@>``; the ``only`` pair is written as a constant, as the partial index's predicate.
    """
    value = _jsonb_constant(tags[index.key])
    statement = statement.where(literal_column(index.postgresql_value(), JSONB) == value)
    rest = dict(tags)
    del rest[index.key]
    where = index.postgresql_where()
    if index.only is not None and where is not None:
        statement = statement.where(text(where))
        del rest[index.only[0]]
    if rest:
        statement = statement.where(_tags_contain("postgresql", rest))
    time_order: ColumnElement[datetime] = literal_column(POSTGRESQL_TIME_ORDER, DateTime())
    if since is not None:  # bound the walk of the index too, not only the rows it returns
        statement = statement.where(time_order >= _utc_timestamp(_aware(since, "since")))
    if until is not None:
        statement = statement.where(time_order < _utc_timestamp(_aware(until, "until")))
    return statement.order_by(time_order.desc(), ManifestRecord.id.desc())


def _utc_timestamp(moment: datetime) -> ColumnElement[datetime]:
    """An aware moment as PostgreSQL's ``timezone('UTC', ...)`` of a timestamptz gives it."""
    return func.timezone(
        literal("UTC", String), cast(literal(moment, UTCDateTime()), DateTime(timezone=True))
    )


def _sqlite_ordered(
    statement: Select[Any], index: OrderedTagIndex, tags: dict[str, str]
) -> Select[Any]:
    """The index's expression equal to the key's value (and its ``only`` predicate)."""
    statement = statement.where(literal_column(index.sqlite_value()) == tags[index.key])
    if index.only is not None:
        statement = statement.where(text(index.sqlite_where()))
    return statement


def _sqlite_has_tag(key: str, value: str) -> ColumnElement[bool]:
    pairs = func.json_each(ManifestRecord.tags).table_valued("key", "value", "type").alias("tag")
    return (
        select(1)
        .select_from(pairs)
        .where(pairs.c.key == key, pairs.c.type == "text", pairs.c.value == value)
        .exists()
    )


async def _detached(session: AsyncSession, record: type[R], statement: Select[Any]) -> list[R]:
    """Build records from plain rows and mark them detached (persistent, in no session).

    Each row's values go straight into a new instance's state, as the ORM's own loading
    puts them, not through the constructor, whose attribute events and change history
    (discarded at once) cost twice as much: 0.9 ms against 0.4 ms for 100 manifests.
    """
    configure_mappers()  # instruments the attributes, which no constructor call did yet
    mapper: Mapper[R] = sa_inspect(record)
    manager = mapper.class_manager
    records: list[R] = []
    result = await retrying(
        lambda: session.execute(statement),
        database=session_database(session),
        reset=session.rollback,
    )
    for row in result.mappings():
        instance = manager.new_instance()
        instance_state(instance).dict.update(row)
        make_transient_to_detached(instance)
        records.append(instance)
    return records


def _class_id_filter(
    class_id: uuid.UUID | None, storable: type[Storable] | None
) -> uuid.UUID | None:
    if storable is None:
        return class_id
    if not (isinstance(storable, type) and issubclass(storable, Storable)):
        raise TypeError(f"storable= takes a Storable class, not {storable!r}.")
    from_class = storable.storable_class_id()
    if class_id is not None and class_id != from_class:
        raise ValueError(
            f"class_id={class_id} and storable={storable.__qualname__} (class id {from_class}) "
            f"disagree; pass only one of them."
        )
    return from_class


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name}={moment!r} has no timezone; records are stamped in UTC, so pass an aware "
            f"datetime, e.g. datetime.now(UTC) or {name}.replace(tzinfo=UTC)."
        )
    return moment


def _positive(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int (or None for no limit), not {limit!r}.")
    return limit


__all__ = [
    "UnsupportedDatabaseError",
    "find_manifests",
    "get_contents",
    "get_manifest",
]
