"""Queries: tag containment (awkward keys too), class and time filters, order, detached records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentRecord,
    InvalidArgumentError,
    ManifestNotFoundError,
    ManifestRecord,
    Registry,
)
from labox_prefect.core.builtin import StorableValue
from labox_prefect.core.query import (
    ManifestRow,
    _tags_contain,
    find_manifest_rows,
    find_manifests,
    get_contents,
    get_manifest,
)
from labox_prefect.core.saver import save_one

Sessions = async_sessionmaker[AsyncSession]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CLASS_A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
CLASS_B = uuid.UUID("00000000-0000-0000-0000-00000000000b")

AWKWARD_TAGS = {
    "a.b": "dotted",
    "with space": "spaced value",
    'q"uote': 'v"alue',
    "ap'os": "it's",
    "back\\slash": "c:\\dir",
    "$[0]": "path-like",
    "ünï": "çødé",
    "%_": "like wildcards",
}


def manifest_row(
    *, tags: dict[str, str], at: datetime = T0, class_id: uuid.UUID = CLASS_A
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "created_at": at,
        "class_id": class_id,
        "unpacker_name": "test.unpacker@v1",
        "tags": tags,
    }


async def insert_manifests(sessions: Sessions, rows: list[dict[str, Any]]) -> None:
    async with sessions() as session:
        await session.execute(insert(ManifestRecord).values(rows))
        await session.commit()


async def ids_of(sessions: Sessions, **filters: Any) -> list[uuid.UUID]:
    async with sessions() as session:
        return [record.id for record in await find_manifests(session, **filters)]


async def test_tags_match_by_containment(sessions: Sessions) -> None:
    both = manifest_row(tags={"project": "x", "stage": "raw", "extra": "1"})
    project_only = manifest_row(tags={"project": "x"})
    other = manifest_row(tags={"project": "y", "stage": "raw"})
    untagged = manifest_row(tags={})
    await insert_manifests(sessions, [both, project_only, other, untagged])

    assert set(await ids_of(sessions, tags={"project": "x"})) == {both["id"], project_only["id"]}
    assert await ids_of(sessions, tags={"project": "x", "stage": "raw"}) == [both["id"]]
    assert await ids_of(sessions, tags={"project": "x", "stage": "clean"}) == []
    assert await ids_of(sessions, tags={"stage": "ra"}) == []  # values match exactly
    assert len(await ids_of(sessions, tags={})) == 4  # no filter, not "no tags"


@pytest.mark.parametrize(("key", "value"), AWKWARD_TAGS.items(), ids=repr)
async def test_tags_with_awkward_keys_and_values_match_exactly(
    sessions: Sessions, key: str, value: str
) -> None:
    everything = manifest_row(tags=AWKWARD_TAGS)
    decoy = manifest_row(tags={k: v + "x" for k, v in AWKWARD_TAGS.items()})
    await insert_manifests(sessions, [everything, decoy])

    assert await ids_of(sessions, tags={key: value}) == [everything["id"]]
    assert await ids_of(sessions, tags={key: value + "x"}) == [decoy["id"]]
    assert await ids_of(sessions, tags=AWKWARD_TAGS) == [everything["id"]]


async def test_like_wildcards_and_quotes_are_not_patterns(sessions: Sessions) -> None:
    literal = manifest_row(tags={"k": "%"})
    ordinary = manifest_row(tags={"k": "anything"})
    await insert_manifests(sessions, [literal, ordinary])

    assert await ids_of(sessions, tags={"k": "%"}) == [literal["id"]]
    assert await ids_of(sessions, tags={"k": "' OR '1'='1"}) == []


async def test_bad_tag_filters_are_refused_with_the_reason(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(TypeError, match="str to str"):
            await find_manifests(session, tags={"n": 1})  # type: ignore[dict-item]


async def test_class_filter_by_id_or_by_storable_class(
    sessions: Sessions, registry: Registry
) -> None:
    a = manifest_row(tags={}, class_id=CLASS_A)
    b = manifest_row(tags={}, class_id=CLASS_B)
    await insert_manifests(sessions, [a, b])
    async with sessions() as session:
        saved = await save_one(StorableValue(3), session=session, registry=registry)

    assert await ids_of(sessions, class_id=CLASS_B) == [b["id"]]
    assert await ids_of(sessions, storable=StorableValue) == [saved.id]
    assert await ids_of(sessions, storable=StorableValue, class_id=saved.class_id) == [saved.id]
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match="disagree; pass only one"):
            await find_manifests(session, storable=StorableValue, class_id=CLASS_A)
        with pytest.raises(TypeError, match="Storable class"):
            await find_manifests(session, storable=int)  # type: ignore[arg-type]


async def test_newest_first_with_id_tie_break_and_time_window(sessions: Sessions) -> None:
    rows = [manifest_row(tags={"i": str(i)}, at=T0 + timedelta(hours=i)) for i in range(5)]
    twins = [manifest_row(tags={"twin": "yes"}, at=T0 + timedelta(hours=9)) for _ in range(3)]
    await insert_manifests(sessions, rows + twins)

    newest_first = sorted(twins, key=lambda r: r["id"], reverse=True) + rows[::-1]
    assert await ids_of(sessions) == [r["id"] for r in newest_first]
    assert await ids_of(sessions, limit=2) == [r["id"] for r in newest_first[:2]]
    window = await ids_of(sessions, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert window == [rows[2]["id"], rows[1]["id"]]  # since inclusive, until exclusive
    other_zone = datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=5)))  # 05:00 UTC
    assert await ids_of(sessions, since=T0 + timedelta(hours=4), until=other_zone) == [
        rows[4]["id"]
    ]


async def test_bad_time_and_limit_arguments_are_refused(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(InvalidArgumentError, match=r"no timezone.*datetime.now\(UTC\)"):
            await find_manifests(session, since=datetime(2024, 1, 1))
        with pytest.raises(InvalidArgumentError, match="no timezone"):
            await find_manifest_rows(session, until=datetime(2024, 1, 1))
        with pytest.raises(InvalidArgumentError, match=r"positive int.*limit=None for no limit"):
            await find_manifests(session, limit=0)
        with pytest.raises(ValueError, match="positive int"):  # still a ValueError
            await find_manifests(session, limit=-1)


async def test_get_manifest_and_contents(sessions: Sessions, registry: Registry) -> None:
    async with sessions() as session:
        saved = await save_one(
            StorableValue({"a": 1}), session=session, registry=registry, tags={"t": "1"}
        )
    async with sessions() as session:
        manifest = await get_manifest(session, saved.id)
        contents = await get_contents(session, saved.id)
        with pytest.raises(ManifestNotFoundError, match="No manifest with id"):
            await get_manifest(session, uuid.uuid4())
        assert await get_contents(session, uuid.uuid4()) == []

    assert (manifest.id, manifest.class_id, manifest.tags) == (saved.id, saved.class_id, {"t": "1"})
    assert manifest.created_at.tzinfo is not None
    assert [c.manifest_id for c in contents] == [saved.id]
    assert contents[0].content_hash
    assert contents[0].content_size > 0


async def test_contents_come_ordered_by_key(sessions: Sessions) -> None:
    manifest = manifest_row(tags={})
    await insert_manifests(sessions, [manifest])
    keys = ["zeta", "alpha", "mid"]
    async with sessions() as session:
        await session.execute(
            insert(ContentRecord).values(
                [
                    {
                        "id": uuid.uuid4(),
                        "created_at": T0,
                        "manifest_id": manifest["id"],
                        "content_key": key,
                        "content_type": "application/json",
                        "content_size": 1,
                        "content_hash": "0" * 64,
                        "content_hash_algorithm": "sha256",
                        "serializer_name": "s@v1",
                        "serializer_config": {},
                        "serializer_type": "value",
                        "storage_name": "st@v1",
                        "storage_config": {},
                    }
                    for key in keys
                ]
            )
        )
        await session.commit()
        found = await get_contents(session, manifest["id"])
    assert [c.content_key for c in found] == sorted(keys)


async def test_records_stay_readable_after_commit_and_close(sessions: Sessions) -> None:
    row = manifest_row(tags={"k": "v"})
    await insert_manifests(sessions, [row])
    async with sessions() as session:
        [found] = await find_manifests(session, tags={"k": "v"})
        by_id = await get_manifest(session, row["id"])
        await session.commit()  # expire_on_commit=True would expire attached objects
    # After the session closed: no lazy load is attempted, every attribute is there.
    assert (found.id, found.tags, found.class_id) == (row["id"], {"k": "v"}, CLASS_A)
    assert by_id.created_at == T0
    assert by_id.unpacker_name == "test.unpacker@v1"

    async with sessions() as session:
        # Detached records can be attached again, e.g. to delete or update them.
        merged = await session.merge(found)
        assert merged.tags == {"k": "v"}


async def test_query_leaves_objects_in_the_callers_session_alone(sessions: Sessions) -> None:
    row = manifest_row(tags={"k": "v"})
    await insert_manifests(sessions, [row])
    async with sessions() as session:
        held = await session.get(ManifestRecord, row["id"])
        assert held is not None
        [found] = await find_manifests(session, tags={"k": "v"})
        assert found is not held
        assert held in session
        assert found not in session


async def test_records_are_detached_with_their_identity_and_no_pending_change(
    sessions: Sessions,
) -> None:
    row = manifest_row(tags={"k": "v"})
    await insert_manifests(sessions, [row])
    async with sessions() as session:
        [found] = await find_manifests(session, tags={"k": "v"})
    state = sa_inspect(found)
    assert state.detached
    assert state.identity == (row["id"],)
    assert state.key == sa_inspect(ManifestRecord).identity_key_from_primary_key((row["id"],))
    assert not state.modified, "building the record must not record changes to flush"
    assert not state.unloaded, "every column is loaded"
    assert not state.expired_attributes
    assert found.tags == {"k": "v"}
    assert repr(found).startswith(f"ManifestRecord(id={row['id']}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_tag_query_uses_the_gin_index(
    database_url: str, engine: AsyncEngine
) -> None:
    rows = [  # a run context key: neither an ordered tag index nor the tag index has it
        manifest_row(
            tags={"prefect.run": f"r{i}", "kind": "ab"[i % 2]}, at=T0 + timedelta(seconds=i)
        )
        for i in range(5000)
    ]
    sessions = async_sessionmaker(engine)
    await insert_manifests(sessions, rows)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        captured.append((statement, params))

    async with engine.connect() as connection:
        # VACUUM moves the rows just inserted out of the GIN index's pending list; until
        # (auto)vacuum does so, the planner rightly finds a scan of 5000 rows cheaper.
        maintenance = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await maintenance.execute(text("VACUUM ANALYZE labox_manifests"))
        session = AsyncSession(bind=connection)
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            [found] = await find_manifests(session, tags={"prefect.run": "r4242"})
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert found.id == rows[4242]["id"]
        statement, params = captured[-1]
        plan_rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", params)
        plan = "\n".join(line for (line,) in plan_rows)
    assert "ix_labox_manifests_tags" in plan, plan


# --- ordered tag indexes: the run keys the Prefect integration writes ------------------------

FLOW = "prefect.flow_name"
TASK = "prefect.task_name"
RUN = "prefect.flow_run_id"
KIND = "prefect.kind"


def run_rows() -> list[dict[str, Any]]:
    """Records of two flows over time, flow and task results, and look-alikes that must not
    match: a value that is not a string, a key only in another case, records without keys."""
    rows = []
    for i in range(40):
        flow = ["etl", "train"][i % 2]
        tags = {FLOW: flow, RUN: f"run-{i // 8}", KIND: "flow" if i % 5 == 0 else "task"}
        if tags[KIND] == "task":
            tags[TASK] = ["fit", "load"][i % 3 % 2]
        if i % 3 == 0:
            tags["prefect.tag.gpu"] = "true"
        rows.append(manifest_row(tags=tags, at=T0 + timedelta(minutes=i // 2)))  # ties in time
    rows.append(manifest_row(tags={FLOW: ["etl"], KIND: "flow"}, at=T0))  # type: ignore[dict-item]
    rows.append(manifest_row(tags={FLOW: {"etl": "x"}, TASK: 5}, at=T0))  # type: ignore[dict-item]
    rows.append(manifest_row(tags={"PREFECT.FLOW_NAME": "etl"}, at=T0))
    rows.append(manifest_row(tags={}, at=T0 + timedelta(hours=1)))
    return rows


def expected(
    rows: list[dict[str, Any]],
    tags: dict[str, str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[uuid.UUID]:
    """Containment as the docstring defines it, newest first, ties by id."""
    found = [
        row
        for row in rows
        if all(row["tags"].get(key) == value for key, value in tags.items())
        and (since is None or row["created_at"] >= since)
        and (until is None or row["created_at"] < until)
    ]
    found.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return [row["id"] for row in found]


RUN_FILTERS = [
    {FLOW: "etl"},
    {FLOW: "etl", KIND: "flow"},
    {FLOW: "train", KIND: "task"},
    {FLOW: "etl", KIND: "flow", "prefect.tag.gpu": "true"},
    {TASK: "fit", "prefect.tag.gpu": "true"},
    {TASK: "load", FLOW: "train"},
    {RUN: "run-2"},
    {RUN: "run-3", TASK: "fit", KIND: "task"},
    {FLOW: "nobody"},
    {TASK: "5"},
]


@pytest.mark.parametrize("tags", RUN_FILTERS, ids=repr)
async def test_filters_on_indexed_run_keys_match_exactly_as_containment(
    sessions: Sessions, tags: dict[str, str]
) -> None:
    rows = run_rows()
    await insert_manifests(sessions, rows)
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=15)

    assert await ids_of(sessions, tags=tags) == expected(rows, tags)
    assert await ids_of(sessions, tags=tags, limit=3) == expected(rows, tags)[:3]
    assert await ids_of(sessions, tags=tags, since=since, until=until) == expected(
        rows, tags, since, until
    )


async def explained_plan(engine: AsyncEngine, **filters: Any) -> str:
    """The plan of the statement find_manifests sends (EXPLAIN, or EXPLAIN QUERY PLAN)."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        captured.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with AsyncSession(engine) as session:
            await find_manifests(session, **filters)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, params = captured[-1]
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql(
            f"{'EXPLAIN QUERY PLAN' if sqlite else 'EXPLAIN'} {statement}", params
        )
        return "\n".join(str(row[-1]) for row in rows)


async def generic_plan(engine: AsyncEngine, **filters: Any) -> str:
    """The generic plan of find_manifests' statement (PostgreSQL): the plan of a prepared
    statement for no values in particular, which a connection keeps after five runs."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        captured.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with AsyncSession(engine) as session:
            await find_manifests(session, **filters)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, params = captured[-1]
    # The plan is made for no values: EXECUTE's arguments (no parameters there) are nulls.
    arguments = ", ".join("NULL" for _ in params)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql(f"PREPARE labox_find AS {statement}")
        try:
            rows = await connection.exec_driver_sql(f"EXPLAIN EXECUTE labox_find({arguments})")
            return "\n".join(str(row[-1]) for row in rows)
        finally:  # the pooled connection as it was
            await connection.exec_driver_sql("DEALLOCATE labox_find")
            await connection.exec_driver_sql("RESET plan_cache_mode")


@pytest.mark.parametrize(
    ("tags", "index"),
    [
        ({FLOW: "etl"}, "ix_labox_manifests_flow_name"),
        ({FLOW: "etl", KIND: "flow"}, "ix_labox_manifests_flow_results"),
        ({TASK: "fit", KIND: "task"}, "ix_labox_manifests_task_name"),
        ({RUN: "run-1", TASK: "fit"}, "ix_labox_manifests_flow_run_id"),
    ],
    ids=repr,
)
async def test_a_filter_on_a_run_key_reads_its_ordered_index(
    engine: AsyncEngine, tags: dict[str, str], index: str
) -> None:
    # Without statistics both planners weigh an index by its shape: the rows it narrows to.
    rows = [
        manifest_row(
            tags={FLOW: f"f{i % 50}", TASK: f"t{i % 70}", RUN: f"r{i}", KIND: "task"},
            at=T0 + timedelta(seconds=i),
        )
        for i in range(3000)
    ]
    await insert_manifests(async_sessionmaker(engine), rows)

    plan = await explained_plan(engine, tags=tags, limit=10)
    assert index in plan, plan
    assert "ix_labox_manifests_created_at" not in plan, plan


# --- the tag indexes (users' tags, Prefect run tags), and what every call reuses -------------

USER_ROWS_TAGS = [
    {"project": "p", "stage": "raw", "batch": "b1", "prefect.tag.gpu": "true", KIND: "task"},
    {"project": "p", "stage": "clean", "batch": "b2", KIND: "flow"},
    {"project": "p", "stage": "raw", "batch": "b3", "prefect.tag.gpu": "true", KIND: "flow"},
    {"project": "q", "stage": "raw", "batch": "b1", KIND: "task"},
    {"project": "p", "stage": ["raw"], "batch": "b4"},  # a value that is not a string
    {"project": "p", "ünï": "çødé", 'q"uote': "it's", "batch": "b5"},
]


def user_rows() -> list[dict[str, Any]]:
    """Records carrying users' tags and run tags, several at one time (ties broken by id)."""
    return [
        manifest_row(tags=tags, at=T0 + timedelta(minutes=number // 2 + 10 * copy))
        for copy in range(4)
        for number, tags in enumerate(USER_ROWS_TAGS)
    ]


USER_FILTERS = [
    {"batch": "b1"},
    {"project": "p"},
    {"project": "p", "stage": "raw"},
    {"stage": "raw", "project": "q"},
    {"prefect.tag.gpu": "true"},
    {"prefect.tag.gpu": "true", KIND: "flow"},
    {KIND: "flow"},  # no indexed key: the time index, each record tested
    {"stage": "raw"},  # a value found also as a list's element: strings only match
    {"ünï": "çødé", 'q"uote': "it's"},
    {"batch": "nobody"},
    {"project": "p", "batch": "nobody"},
]


@pytest.mark.parametrize("tags", USER_FILTERS, ids=repr)
async def test_filters_on_users_tags_match_exactly_as_containment(
    sessions: Sessions, tags: dict[str, str]
) -> None:
    rows = user_rows()
    await insert_manifests(sessions, rows)
    since, until = T0 + timedelta(minutes=11), T0 + timedelta(minutes=31)

    assert await ids_of(sessions, tags=tags) == expected(rows, tags)
    assert await ids_of(sessions, tags=tags, limit=3) == expected(rows, tags)[:3]
    assert (
        await ids_of(sessions, tags=tags, since=since, until=until, limit=5)
        == expected(rows, tags, since, until)[:5]
    )


async def plain_ids(sessions: Sessions, tags: dict[str, str], **filters: Any) -> list[uuid.UUID]:
    """The plain path: containment of every pair on every record, sorted by time then id."""
    records = ManifestRecord.__table__.c
    statement = select(records.id).where(_tags_contain(sessions.kw["bind"].dialect.name, tags))
    if "since" in filters:
        statement = statement.where(records.created_at >= filters["since"])
    if "until" in filters:
        statement = statement.where(records.created_at < filters["until"])
    statement = statement.order_by(records.created_at.desc(), records.id.desc())
    async with sessions() as session:
        return list((await session.scalars(statement.limit(filters.get("limit")))).all())


@pytest.mark.parametrize("tags", USER_FILTERS, ids=repr)
async def test_the_tag_index_finds_what_the_plain_path_finds_in_its_order(
    sessions: Sessions, tags: dict[str, str]
) -> None:
    await insert_manifests(sessions, user_rows())
    window = {"since": T0 + timedelta(minutes=11), "until": T0 + timedelta(minutes=31)}

    for filters in ({}, {"limit": 3}, {**window, "limit": 5}, {"since": window["since"]}):
        assert await ids_of(sessions, tags=tags, **filters) == await plain_ids(
            sessions, tags, **filters
        ), filters


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_a_users_tag_reads_the_tag_index_newest_first(engine: AsyncEngine) -> None:
    rows = [
        manifest_row(tags={"batch": f"b{i % 500}", "project": "p"}, at=T0 + timedelta(seconds=i))
        for i in range(3000)
    ]
    await insert_manifests(async_sessionmaker(engine), rows)

    plan = await explained_plan(engine, tags={"batch": "b7"}, limit=10)
    assert "SEARCH labox_manifest_tags USING PRIMARY KEY (key=? AND value=?)" in plan, plan
    assert "SCAN labox_manifests" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index's order is the answer's


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "tags", [{"batch": "b7"}, {"project": "p"}, {"project": "p", "batch": "b7"}], ids=repr
)
async def test_on_postgresql_a_users_tag_reads_the_tag_index_newest_first(
    engine: AsyncEngine, tags: dict[str, str]
) -> None:
    rows = [
        manifest_row(tags={"batch": f"b{i % 500}", "project": "p"}, at=T0 + timedelta(seconds=i))
        for i in range(3000)
    ]
    await insert_manifests(async_sessionmaker(engine), rows)
    async with engine.connect() as connection:
        maintenance = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await maintenance.execute(text("VACUUM ANALYZE labox_manifests, labox_manifest_tags"))

    plan = await explained_plan(engine, tags=tags, limit=10)
    assert "Index Only Scan Backward using labox_manifest_tags_pkey" in plan, plan
    assert "Sort" not in plan, plan  # the index's order is the answer's
    assert "ix_labox_manifests_tags" not in plan, plan  # the GIN index is not read
    assert "jsonb_contains(" in plan, plan  # every pair tested on the record


def task_rows() -> list[dict[str, Any]]:
    """Task results of two tasks, a run tag on one run in three, users' tags, ties in time,
    and look-alikes: a task name that is no string, a flow result, a task without the tag."""
    rows = []
    for i in range(120):
        tags = {FLOW: "etl", RUN: f"run-{i // 6}", KIND: "task", TASK: ["fit", "load"][i % 2]}
        if i // 6 % 3 == 0:
            tags["prefect.tag.gpu"] = "true"
        tags["stage"] = ["raw", "clean"][i % 3 % 2]
        rows.append(manifest_row(tags=tags, at=T0 + timedelta(minutes=i // 4)))
    gpu = {"prefect.tag.gpu": "true", "stage": "raw"}
    rows.append(manifest_row(tags={**gpu, TASK: ["fit"], KIND: "task"}, at=T0))  # type: ignore[dict-item]
    rows.append(manifest_row(tags={**gpu, FLOW: "etl", KIND: "flow"}, at=T0))
    rows.append(manifest_row(tags={**gpu, "prefect.TASK_NAME": "fit"}, at=T0))
    return rows


TASK_FILTERS = [
    {TASK: "fit", "prefect.tag.gpu": "true"},
    {TASK: "load", "stage": "raw"},
    {TASK: "fit", "prefect.tag.gpu": "true", "stage": "clean"},
    {TASK: "fit", "prefect.tag.gpu": "true", KIND: "task", FLOW: "etl"},
    {TASK: "fit", "prefect.tag.nobody": "true"},
    {TASK: "nobody", "prefect.tag.gpu": "true"},
]


@pytest.mark.parametrize("tags", TASK_FILTERS, ids=repr)
async def test_a_task_name_with_a_tag_finds_what_the_plain_path_finds_in_its_order(
    sessions: Sessions, tags: dict[str, str]
) -> None:
    await insert_manifests(sessions, task_rows())
    window = {"since": T0 + timedelta(minutes=3), "until": T0 + timedelta(minutes=21)}

    for filters in ({}, {"limit": 3}, {**window, "limit": 5}, {"until": window["until"]}):
        found = await ids_of(sessions, tags=tags, **filters)
        assert found == await plain_ids(sessions, tags, **filters), filters
    async with sessions() as session:
        rows = await find_manifest_rows(session, tags=tags, limit=10)
    assert [row.id for row in rows] == await plain_ids(sessions, tags, limit=10)
    assert all(row.tags[TASK] == tags[TASK] for row in rows)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "tags",
    [
        {TASK: "t7", "prefect.tag.gpu": "true"},
        {TASK: "t7", "batch": "b7"},
        {TASK: "t7", "prefect.tag.gpu": "true", "batch": "b7"},
    ],
    ids=repr,
)
@pytest.mark.parametrize("generic", [False, True], ids=["planned for the values", "generic"])
async def test_on_postgresql_a_task_name_with_a_tag_reads_the_tasks_entries_of_the_tag(
    engine: AsyncEngine, tags: dict[str, str], generic: bool
) -> None:
    rows = [
        manifest_row(
            tags={
                TASK: f"t{i % 10}",
                KIND: "task",
                "prefect.tag.gpu": "true",
                "batch": f"b{i % 500}",
            },
            at=T0 + timedelta(seconds=i),
        )
        for i in range(3000)
    ]
    await insert_manifests(async_sessionmaker(engine), rows)
    async with engine.connect() as connection:
        maintenance = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await maintenance.execute(text("VACUUM ANALYZE labox_manifests, labox_manifest_tags"))

    explain = generic_plan if generic else explained_plan  # generic: the plan for any values
    plan = await explain(engine, tags=tags, limit=10)
    assert "Index Only Scan Backward using ix_labox_manifest_tags_task_name" in plan, plan
    assert "Sort" not in plan, plan  # the index's order is the answer's
    assert "ix_labox_manifests_task_name" not in plan, plan  # no walk testing each result
    assert "jsonb_contains(" in plan, plan  # every pair tested on the record


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_pair_with_the_fewest_entries_is_read(engine: AsyncEngine) -> None:
    rows = [
        manifest_row(tags={"project": "p", "batch": f"b{i}"}, at=T0 + timedelta(seconds=i))
        for i in range(800)
    ]
    await insert_manifests(async_sessionmaker(engine), rows)
    captured: list[Any] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        captured.append(params)

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with AsyncSession(engine) as session:
            [found] = await find_manifests(session, tags={"project": "p", "batch": "b9"})
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert found.id == rows[9]["id"]
    assert "p" in captured[-1]  # both pairs tested on the record
    assert tuple(captured[-1][:2]) == ("batch", "b9")  # and the rare one's entries read


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_an_entry_left_behind_never_makes_a_record_match(
    engine: AsyncEngine,
) -> None:
    row = manifest_row(tags={"batch": "old"})
    await insert_manifests(async_sessionmaker(engine), [row])
    async with engine.begin() as connection:  # replaces the row without a delete trigger
        await connection.execute(
            text(
                "INSERT OR REPLACE INTO labox_manifests "
                "SELECT id, :at, class_id, unpacker_name, :tags FROM labox_manifests"
            ),
            {"at": "2025-01-01 00:00:00.000000", "tags": '{"batch": "new"}'},
        )
        left = await connection.scalar(text("SELECT count(*) FROM labox_manifest_tags"))
    assert left == 2  # the old row's entry is still there

    sessions = async_sessionmaker(engine)
    assert await ids_of(sessions, tags={"batch": "old"}) == []
    assert await ids_of(sessions, tags={"batch": "new"}) == [row["id"]]


async def test_a_shape_of_filter_is_compiled_once_whatever_its_values(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    await insert_manifests(sessions, run_rows() + user_rows())
    hits: list[Any] = []

    def cache_use(conn: Any, cursor: Any, statement: str, params: Any, context: Any, *_: Any):
        hits.append(context.cache_hit)

    filters = [
        ({FLOW: "etl", "prefect.tag.gpu": "true"}, {FLOW: "train", "prefect.tag.x": "true"}),
        ({"project": "p"}, {"project": "q"}),
        ({RUN: "run-1", KIND: "task"}, {RUN: "run-2", KIND: "flow"}),
        ({TASK: "fit", "prefect.tag.gpu": "true"}, {TASK: "load", "prefect.tag.x": "true"}),
    ]
    for first, second in filters:
        await ids_of(sessions, tags=first, limit=5, since=T0)
        event.listen(engine.sync_engine, "before_cursor_execute", cache_use)
        try:
            await ids_of(sessions, tags=second, limit=7, since=T0 + timedelta(minutes=1))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", cache_use)
    compiled = {hit for hit in hits}
    assert compiled == {engine.dialect.CACHE_HIT}, hits


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tags_holding_an_escape_orjson_refuses_read_as_json_reads_them(
    engine: AsyncEngine,
) -> None:
    manifest_id = uuid.uuid4()
    async with engine.begin() as connection:  # written by other code: the tag rule refuses it
        await connection.execute(
            text(
                "INSERT INTO labox_manifests (id, created_at, class_id, unpacker_name, tags) "
                "VALUES (:id, '2024-01-01 00:00:00.000000', :id, 'u@v1', :tags)"
            ),
            {"id": manifest_id.hex, "tags": '{"k": "\\ud800", "n": "1"}'},
        )
    async with AsyncSession(engine) as session:
        [found] = await find_manifests(session, tags={"n": "1"})
        by_id = await get_manifest(session, manifest_id)
    assert found.tags == by_id.tags == {"k": "\ud800", "n": "1"}


@pytest.mark.parametrize("tags", [{}, {FLOW: "etl"}, {"project": "p"}, {KIND: "flow"}], ids=repr)
async def test_rows_are_the_records_values_in_the_same_order(
    sessions: Sessions, tags: dict[str, str]
) -> None:
    await insert_manifests(sessions, run_rows() + user_rows())
    async with sessions() as session:
        records = await find_manifests(session, tags=tags, limit=30)
        rows = await find_manifest_rows(session, tags=tags, limit=30)

    assert rows == [
        ManifestRow(r.id, r.created_at, r.class_id, r.unpacker_name, r.tags) for r in records
    ]
    assert rows
    assert all(type(row.tags) is dict for row in rows)
