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
list, the most selective. A filter naming none of them reads the tag index (``sqlite_tags``,
``postgresql_tags``: users' tags and Prefect run tags) for one of its pairs, newest first: the
pair with the fewest entries when there are several (a count of each, up to
``PROBE_ENTRIES``, asked in one statement first); on PostgreSQL every pair is then checked
by ``jsonb_contains`` (the same test as ``@>``, which the planner neither estimates from the
tag sample nor answers from the GIN index: the plan is the tag index's walk). On PostgreSQL a
filter naming a task name (the ordered index it would use) and such a pair reads the tag
index's entries of that pair among the task's results (its task index), newest first: one
range scan of exactly the matching entries, where the task name's ordered index was walked
testing each result for the pair. A filter on
other keys only (``prefect.kind`` alone, say) tests ``@>`` (PostgreSQL: the GIN index) or
walks the time index, testing each record (SQLite).

On PostgreSQL the tag values are written into the statement as constants (quoted by
SQLAlchemy), so that every query is planned for its own values (see ``_jsonb_constant``),
but for a task name with a tag: the task index's walk is the plan for any values, and they
are parameters (see ``_jsonb_parameter``).

What a call costs in Python is kept small, for the many-row answers of ``find_results``:
the statement of each shape of filter (which keys, which options; not their values) is
built once and reused, so SQLAlchemy's compiled cache answers it without walking it again;
tags are read as their JSON text and decoded with orjson; records are made without the
ORM's per-row loading machinery (``detached``), and ``find_manifest_rows`` makes none
(``find_results`` reads rows). Figures over 1M manifests: bench/query_scale.py,
bench/query_ab.py and docs/performance.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    TableClause,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state

from labox_prefect.core import postgresql_tags, sqlite_tags
from labox_prefect.core.connection import retrying
from labox_prefect.core.database import (
    ORDERED_TAG_INDEXES,
    POSTGRESQL_TIME_ORDER,
    ContentRecord,
    ManifestRecord,
    OrderedTagIndex,
    UTCDateTime,
)
from labox_prefect.core.detached import detached_records, record_makers
from labox_prefect.core.errors import (
    InvalidArgumentError,
    ManifestNotFoundError,
    UnsupportedDatabaseError,
)
from labox_prefect.core.ownership import session_database
from labox_prefect.core.storable import Storable
from labox_prefect.core.tags import Tags, check_tags

TAG_DIALECTS = ("postgresql", "sqlite")
"""The databases tag filters are implemented for."""

PROBE_ENTRIES = 500
"""Entries of each pair counted, at most, to choose the pair whose entries to read."""

_MANIFESTS = ManifestRecord.__table__
_CONTENTS = ContentRecord.__table__
_TAGS: TableClause = table(
    sqlite_tags.TABLE,
    column("key", String()),
    column("value", String()),
    column("created_at", UTCDateTime()),
    column("manifest_id", String()),
    column("task_name", String()),  # PostgreSQL's only (postgresql_tags)
)


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
    Ties in ``created_at`` are broken by id so that paging is stable. InvalidArgumentError
    (a ValueError) for a naive datetime, a ``limit`` below 1, or a ``class_id`` that
    disagrees with ``storable``.
    """
    rows = await find_manifest_rows(
        session,
        tags=tags,
        class_id=class_id,
        storable=storable,
        since=since,
        until=until,
        limit=limit,
    )
    return _manifests(rows)


class ManifestRow(NamedTuple):
    """A manifest's columns as read, without an ORM record: what listing many manifests needs.

    ``tags`` is a new dict of each row; the other fields are those of ``ManifestRecord``.
    """

    id: uuid.UUID
    created_at: datetime
    class_id: uuid.UUID
    unpacker_name: str
    tags: dict[str, str]


async def find_manifest_rows(
    session: AsyncSession,
    *,
    tags: Tags | None = None,
    class_id: uuid.UUID | None = None,
    storable: type[Storable] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[ManifestRow]:
    """``find_manifests`` as plain rows: the same filters, order and errors, no ORM record.

    A row costs a fraction of a record to make (100: about 0.1 ms against 0.6 ms, loaded
    machine), which is much of what is left of a many-row query in Python: ``find_results``
    reads rows.
    """
    wanted_class = _class_id_filter(class_id, storable)
    wanted = check_tags(tags)
    dialect = session.get_bind().dialect.name
    if wanted and dialect not in TAG_DIALECTS:
        raise UnsupportedDatabaseError(
            f"Filtering by tags is implemented for PostgreSQL and SQLite, not {dialect!r}; use "
            f"one of those databases for Labox records."
        )
    values: dict[str, Any] = {}
    if wanted_class is not None:
        values["class_id"] = wanted_class
    if since is not None:
        values["since"] = _aware(since, "since")
    if until is not None:
        values["until"] = _aware(until, "until")
    if limit is not None:
        values["limit"] = _positive(limit)
    ordered = _ordered_index(wanted)
    indexed = {k: v for k, v in wanted.items() if sqlite_tags.indexed(k)}
    task = (
        dialect == "postgresql"
        and ordered is not None
        and ordered.key == postgresql_tags.TASK_NAME_KEY
        and bool(indexed)
    )
    if task:  # the tag index's entries of the task's results instead of the ordered index
        ordered = None
        values["task_name"] = wanted[postgresql_tags.TASK_NAME_KEY]
    checked = dict(wanted)  # pairs tested on each record (PostgreSQL: in one @>)
    if dialect == "postgresql" and ordered is not None:
        values["value"] = json.dumps(checked.pop(ordered.key))
        if ordered.only is not None:
            del checked[ordered.only[0]]
    elif ordered is not None:
        values["value"] = wanted[ordered.key]
    if dialect == "postgresql":
        if checked:
            values["tags"] = json.dumps(checked)
    else:
        values.update(_pair_values(checked))
    shape = _Shape(
        dialect=dialect,
        ordered=ordered,
        tag_index=ordered is None and bool(indexed),
        task=task,
        pairs=(1 if checked else 0) if dialect == "postgresql" else len(checked),
        class_id="class_id" in values,
        since="since" in values,
        until="until" in values,
        limit="limit" in values,
    )

    async def query() -> Sequence[Any]:
        if shape.tag_index:
            values["key"], values["value"] = await _fewest_entries(
                session, indexed, values.get("task_name")
            )
        rows: Sequence[Any] = (await session.execute(_manifest_statement(shape), values)).all()
        return rows

    rows = await retrying(query, database=session_database(session), reset=session.rollback)
    return _rows(rows, raw_tags=dialect in TAG_DIALECTS)


async def get_manifest(session: AsyncSession, manifest_id: uuid.UUID) -> ManifestRecord:
    """The manifest with this id; ManifestNotFoundError if there is none."""
    dialect = session.get_bind().dialect.name
    rows = await retrying(
        lambda: _all(session, _manifest_by_id(dialect), {"id": manifest_id}),
        database=session_database(session),
        reset=session.rollback,
    )
    if not rows:
        raise ManifestNotFoundError(
            f"No manifest with id {manifest_id} exists in this database; check the database "
            f"URL, or whether the record was deleted."
        )
    return _manifests(_rows(rows, raw_tags=dialect in TAG_DIALECTS))[0]


async def get_contents(session: AsyncSession, manifest_id: uuid.UUID) -> list[ContentRecord]:
    """The content records of a manifest, ordered by content key (empty if there are none)."""
    rows = await retrying(
        lambda: _all(session, _contents_of_manifest(), {"manifest_id": manifest_id}),
        database=session_database(session),
        reset=session.rollback,
    )
    return detached_records(ContentRecord, [c.key for c in _CONTENTS.columns], rows)


# --- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """What a find_manifests statement depends on apart from the values: its cache key.

    ``ordered``: the ordered tag index read for one key. ``tag_index``: the tag index
    (``sqlite_tags``, ``postgresql_tags``) read for one pair (``key``, ``value``); ``task``:
    only its entries of one task's results (``task_name``: PostgreSQL's task index).
    ``pairs``: on PostgreSQL 1 if the pairs left are
    tested in one ``@>`` (``tags``), on SQLite the number of pairs each tested by
    ``json_each`` (``key_0``, ``value_0``, ...). The rest: which options are given.
    """

    dialect: str
    ordered: OrderedTagIndex | None
    tag_index: bool
    task: bool
    pairs: int
    class_id: bool
    since: bool
    until: bool
    limit: bool


@lru_cache(maxsize=256)
def _manifest_statement(shape: _Shape) -> Select[Any]:
    """The statement of a shape, built once: its bound parameters are named in ``_Shape``."""
    statement = select(*_manifest_columns(shape.dialect))
    manifests = _MANIFESTS.c
    order: tuple[ColumnElement[Any], ...] = (manifests.created_at.desc(), manifests.id.desc())
    if shape.dialect == "postgresql" and shape.ordered is not None:
        statement, order = _postgresql_ordered(statement, shape)
    elif shape.ordered is not None:  # SQLite: the index's expression, then every pair exactly
        statement = statement.where(
            literal_column(shape.ordered.sqlite_value()) == bindparam("value", type_=String)
        )
        if shape.ordered.only is not None:
            statement = statement.where(text(shape.ordered.sqlite_where()))
    elif shape.tag_index:
        statement, order = _tag_index(statement, shape)
    if shape.dialect == "postgresql" and shape.tag_index:
        tags = _jsonb_parameter("tags") if shape.task else _jsonb_constant("tags")
        statement = statement.where(_jsonb_contains_unplanned(tags))
    elif shape.dialect == "postgresql" and shape.pairs:
        statement = statement.where(_jsonb_contains(_jsonb_constant("tags")))
    elif shape.dialect != "postgresql":
        statement = statement.where(*_sqlite_pair_tests(shape.pairs))
    if shape.class_id:
        statement = statement.where(manifests.class_id == bindparam("class_id", type_=_uuid_type()))
    # PostgreSQL's tag index bounds its entries' time, which is the manifests' (see _tag_index):
    # a bound on the manifests too would offer the planner a walk of the time index.
    manifest_times = not (shape.dialect == "postgresql" and shape.tag_index)
    if shape.since and manifest_times:
        statement = statement.where(manifests.created_at >= _moment("since"))
    if shape.until and manifest_times:
        statement = statement.where(manifests.created_at < _moment("until"))
    statement = statement.order_by(*order)
    if shape.limit:
        statement = statement.limit(bindparam("limit", type_=Integer))
    return statement


def _manifest_columns(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """The manifest's columns, tags as their JSON text where tag filters work (see ``_tags``)."""
    tags: ColumnElement[Any] = _MANIFESTS.c.tags
    if dialect == "postgresql":
        tags = cast(tags, Text)
    elif dialect == "sqlite":
        tags = type_coerce(tags, Text)
    columns = [c for c in _MANIFESTS.columns if c.key != "tags"]
    return (*columns, tags.label("tags"))


def _postgresql_ordered(
    statement: Select[Any], shape: _Shape
) -> tuple[Select[Any], tuple[ColumnElement[Any], ...]]:
    """Match the index's key by its own expression, order by its time.

    ``tags -> key = '"value"'::jsonb`` holds exactly when ``tags @> {key: value}`` does
    (tags are an object, and a JSONB object has each key once), so the pair leaves the
    ``@>``; the ``only`` pair is written as a constant, as the partial index's predicate.
    """
    index = shape.ordered
    assert index is not None
    statement = statement.where(
        literal_column(index.postgresql_value(), JSONB) == _jsonb_constant("value")
    )
    where = index.postgresql_where()
    if where is not None:
        statement = statement.where(text(where))
    time_order: ColumnElement[datetime] = literal_column(POSTGRESQL_TIME_ORDER, DateTime())
    if shape.since:  # bound the walk of the index too, not only the rows it returns
        statement = statement.where(time_order >= _utc_timestamp(_moment("since")))
    if shape.until:
        statement = statement.where(time_order < _utc_timestamp(_moment("until")))
    return statement, (time_order.desc(), _MANIFESTS.c.id.desc())


def _tag_index(
    statement: Select[Any], shape: _Shape
) -> tuple[Select[Any], tuple[ColumnElement[Any], ...]]:
    """Read one pair's entries of the tag index newest first, each joined to its manifest.

    On SQLite the join is on the time too: an entry whose manifest's time changed without
    the triggers (see sqlite_tags) joins nothing, so the index's order is the manifests'
    order. On PostgreSQL the triggers follow every insert, update and delete (see
    postgresql_tags), and the join is on the id alone: the planner then counts one manifest
    per entry, where a second equality made it expect one row in all and sort every entry
    of a common pair instead of reading them in order. There the pair is written into the
    statement (see ``_jsonb_constant``): the planner estimates it from the statistics of
    pairs. With ``task``, the entries of one task's results (PostgreSQL: the task index),
    and the values are parameters (see ``_jsonb_parameter``).
    """
    postgresql = shape.dialect == "postgresql"
    constants = postgresql and not shape.task
    key = bindparam("key", type_=String, literal_execute=constants)
    value = bindparam("value", type_=String, literal_execute=constants)
    manifests = _MANIFESTS.c
    joined = manifests.id == _TAGS.c.manifest_id
    if not postgresql:
        joined = and_(joined, manifests.created_at == _TAGS.c.created_at)
    statement = statement.select_from(_TAGS.join(_MANIFESTS, joined)).where(
        _TAGS.c.key == key, _TAGS.c.value == value
    )
    if shape.task:  # the task index: task_name, key, value, then time
        task_name = bindparam("task_name", type_=String)
        statement = statement.where(_TAGS.c.task_name == task_name)
    if shape.since:  # bound the walk of the index too, not only the rows it returns
        statement = statement.where(_TAGS.c.created_at >= _moment("since"))
    if shape.until:
        statement = statement.where(_TAGS.c.created_at < _moment("until"))
    return statement, (_TAGS.c.created_at.desc(), _TAGS.c.manifest_id.desc())


def _sqlite_pair_tests(pairs: int) -> list[ColumnElement[bool]]:
    if not pairs:
        return []
    return [
        _sqlite_has_tags(
            [
                (bindparam(f"key_{n}", type_=String), bindparam(f"value_{n}", type_=String))
                for n in range(pairs)
            ]
        )
    ]


def _pair_values(tags: dict[str, str]) -> dict[str, str]:
    """The values of ``_sqlite_pair_tests`` for these pairs."""
    values: dict[str, str] = {}
    for number, (key, value) in enumerate(tags.items()):
        values[f"key_{number}"] = key
        values[f"value_{number}"] = value
    return values


async def _fewest_entries(
    session: AsyncSession, tags: dict[str, str], task_name: str | None
) -> tuple[str, str]:
    """The pair with the fewest tag index entries (counted up to PROBE_ENTRIES each; with a
    ``task_name``, its entries of that task's results)."""
    pairs = list(tags.items())
    if len(pairs) == 1:
        return pairs[0]
    values: dict[str, Any] = _pair_values(tags)
    if task_name is not None:
        values["task_name"] = task_name
    statement = _probe_statement(len(pairs), task=task_name is not None)
    counts = (await session.execute(statement, values)).one()
    return pairs[min(range(len(pairs)), key=counts.__getitem__)]


@lru_cache(maxsize=64)
def _probe_statement(pairs: int, *, task: bool) -> Select[Any]:
    """One row: how many entries each of ``pairs`` pairs has, up to PROBE_ENTRIES each
    (``task``: among the entries of the task ``task_name``)."""
    counts = []
    for number in range(pairs):
        entry: Select[Any] = select(literal_column("1")).select_from(_TAGS)
        if task:
            entry = entry.where(_TAGS.c.task_name == bindparam("task_name"))
        entries = (
            entry.where(
                _TAGS.c.key == bindparam(f"key_{number}"),
                _TAGS.c.value == bindparam(f"value_{number}"),
            )
            .limit(PROBE_ENTRIES)
            .subquery()
        )
        counts.append(select(func.count()).select_from(entries).scalar_subquery())
    return select(*counts)


@lru_cache(maxsize=8)
def _manifest_by_id(dialect: str) -> Select[Any]:
    return select(*_manifest_columns(dialect)).where(
        _MANIFESTS.c.id == bindparam("id", type_=_uuid_type())
    )


@lru_cache(maxsize=1)
def _contents_of_manifest() -> Select[Any]:
    return (
        select(*_CONTENTS.columns)
        .where(_CONTENTS.c.manifest_id == bindparam("manifest_id", type_=_uuid_type()))
        .order_by(_CONTENTS.c.content_key)
    )


def _uuid_type() -> Any:
    return _MANIFESTS.c.id.type


def _moment(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


def _jsonb_contains(document: ColumnElement[Any]) -> ColumnElement[bool]:
    return type_coerce(_MANIFESTS.c.tags, JSONB).contains(document)


def _jsonb_contains_unplanned(document: ColumnElement[Any]) -> ColumnElement[bool]:
    """``tags @> document`` as the function call ``jsonb_contains(tags, document)``: the same test.

    The planner neither tests the 1,000 sampled documents for it (0.7-0.9 ms of planning
    per query) nor answers it from the GIN index: where the tag index gives the records,
    this only checks each one, and the plan is the tag index's walk.
    """
    return func.jsonb_contains(type_coerce(_MANIFESTS.c.tags, JSONB), document, type_=Boolean)


def _tags_contain(dialect: str, tags: dict[str, str]) -> ColumnElement[bool]:
    """Containment of these pairs, values written in (bench/query_scale.py counts with it)."""
    if dialect == "postgresql":
        return _jsonb_contains(cast(literal(json.dumps(tags), String), JSONB))
    if dialect == "sqlite":
        return _sqlite_has_tags([(literal(k), literal(v)) for k, v in tags.items()])
    raise UnsupportedDatabaseError(f"tag filters: PostgreSQL and SQLite, not {dialect!r}")


def _jsonb_constant(name: str) -> ColumnElement[Any]:
    """A JSON value written into the statement (quoted by SQLAlchemy), not a parameter.

    PostgreSQL then plans each query for its own values, as a million records need: how
    many records carry a pair decides between reading an index in time order and
    collecting the matches to sort them. A prepared statement with parameters gets, after
    five runs, a generic plan made for no value in particular: over 1M manifests, a walk of
    the whole time index for a rare tag (1.9 s), or a sort of every flow result of a
    popular flow when the flow's name is a parameter (1 s).
    """
    return cast(bindparam(name, type_=String, literal_execute=True), JSONB)


def _jsonb_parameter(name: str) -> ColumnElement[Any]:
    """A JSON value as a parameter: for the task index's plan, which no value changes.

    The task index answers every condition on the entries (task name, key, value) and
    their order, without reading the table's rows: reading it newest first costs no more
    than collecting the same entries to sort them, for any estimate of their number, so
    the generic plan PostgreSQL keeps after five runs is that walk too (for common and rare
    pairs alike; tests/core/test_query.py checks it). As parameters, the statement is
    prepared once per connection and, after five runs, not planned again: 0.4-0.5 ms a
    call over 1M manifests, against values written in.
    """
    return cast(bindparam(name, type_=String), JSONB)


def _ordered_index(tags: dict[str, str]) -> OrderedTagIndex | None:
    """The first ordered tag index whose key (and ``only`` pair) the filter names."""
    for index in ORDERED_TAG_INDEXES:
        if index.key in tags and (index.only is None or tags.get(index.only[0]) == index.only[1]):
            return index
    return None


def _utc_timestamp(moment: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """An aware moment as PostgreSQL's ``timezone('UTC', ...)`` of a timestamptz gives it."""
    return func.timezone(literal("UTC", String), cast(moment, DateTime(timezone=True)))


def _sqlite_has_tags(
    pairs: Sequence[tuple[ColumnElement[str], ColumnElement[str]]],
) -> ColumnElement[bool]:
    """Every (key, value) pair is in tags as a string: one pass of ``json_each`` for all.

    For each pair, the pass takes the largest of "this entry is the pair" (1 or 0) over the
    document's string entries; the sum of those equals the number of pairs exactly when each
    is there. SQLite parses the document once per pass: one pass for any number of pairs,
    not one per pair.
    """
    tag = func.json_each(_MANIFESTS.c.tags).table_valued("key", "value", "type").alias("tag")
    tests = [and_(tag.c.key == key, tag.c.value == value) for key, value in pairs]
    found: ColumnElement[int] = func.max(tests[0], type_=Integer)
    for test in tests[1:]:
        found = found + func.max(test, type_=Integer)
    counted = select(found).select_from(tag).where(tag.c.type == "text", or_(*tests))
    return counted.scalar_subquery() == len(pairs)


# --- records ---------------------------------------------------------------------------------


async def _all(session: AsyncSession, statement: Select[Any], values: dict[str, Any]) -> Any:
    return (await session.execute(statement, values)).all()


def _rows(rows: Iterable[Sequence[Any]], *, raw_tags: bool) -> list[ManifestRow]:
    """Rows of ``_manifest_columns`` as ManifestRows (tags as JSON text if ``raw_tags``)."""
    if raw_tags:
        return [
            ManifestRow(id_, at, class_id, name, _tags(tags))
            for id_, at, class_id, name, tags in rows
        ]
    return [ManifestRow(*row) for row in rows]


def _manifests(rows: Iterable[ManifestRow]) -> list[ManifestRecord]:
    """Manifest records made as ``detached_records`` makes them, in one loop: 0.6 ms for 100
    manifests (loaded machine)."""
    new, identity = record_makers(ManifestRecord)
    records: list[ManifestRecord] = []
    for row in rows:
        record = new()
        state = instance_state(record)
        values = state.dict
        values["id"] = row.id
        values["created_at"] = row.created_at
        values["class_id"] = row.class_id
        values["unpacker_name"] = row.unpacker_name
        values["tags"] = row.tags
        state.key = identity((row.id,))
        records.append(record)
    return records


def _tags(document: str | bytes | None) -> Any:
    """Tags from their JSON text, as SQLAlchemy's JSON type reads them, 2-3x faster.

    orjson refuses a lone surrogate's escape (``"\\ud800"``), which json reads: the tag
    rule refuses such tags, but a row written by other code may hold one.
    """
    if document is None:
        return None
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError:
        return json.loads(document)


# --- arguments -------------------------------------------------------------------------------


def _class_id_filter(
    class_id: uuid.UUID | None, storable: type[Storable] | None
) -> uuid.UUID | None:
    if storable is None:
        return class_id
    if not (isinstance(storable, type) and issubclass(storable, Storable)):
        raise TypeError(f"storable= takes a Storable class, not {storable!r}.")
    from_class = storable.storable_class_id()
    if class_id is not None and class_id != from_class:
        raise InvalidArgumentError(
            f"class_id={class_id} and storable={storable.__qualname__} (class id {from_class}) "
            f"disagree; pass only one of them."
        )
    return from_class


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidArgumentError(
            f"{name}={moment!r} has no timezone; records are stamped in UTC, so pass an aware "
            f"datetime, e.g. datetime.now(UTC) or {name}.replace(tzinfo=UTC)."
        )
    return moment


def _positive(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(
            f"limit must be a positive int, not {limit!r}; pass limit=None for no limit."
        )
    return limit


__all__ = [
    "ManifestRow",
    "UnsupportedDatabaseError",
    "find_manifest_rows",
    "find_manifests",
    "get_contents",
    "get_manifest",
]
