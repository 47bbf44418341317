"""Shipped migrations: the schema they build equals the models', on SQLite and PostgreSQL."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from labox_prefect.core import BaseRecord, Registry, postgresql_tags, sqlite_tags
from labox_prefect.core.builtin import StorableValue
from labox_prefect.core.database import ORDERED_TAG_INDEXES
from labox_prefect.core.migrations import (
    VERSION_TABLE,
    SchemaMismatchError,
    acurrent,
    alembic_config,
    arun_on_database,
    aupgrade,
    current,
    schema_differences,
    upgrade,
)
from labox_prefect.core.query import find_manifests
from labox_prefect.core.saver import save_one

HEAD = "0005"


def index_names(connection: Connection, table: str) -> list[str]:
    """Every named index of a table, expression indexes too (SQLAlchemy skips SQLite's)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = :table"
    names = connection.execute(text(query), {"table": table}).scalars()
    return sorted(name for name in names if not name.startswith("sqlite_autoindex"))


def schema_facts(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        "tables": sorted(inspector.get_table_names()),
        "indexes": {
            table: index_names(connection, table) for table in ("labox_manifests", "labox_contents")
        },
        "unique": [c["name"] for c in inspector.get_unique_constraints("labox_contents")],
        "fks": [fk["options"] for fk in inspector.get_foreign_keys("labox_contents")],
    }


async def run_on(url: str, work: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


async def test_upgrade_builds_exactly_the_models_schema(database_url: str) -> None:
    assert await acurrent(database_url) is None
    await aupgrade(database_url)

    assert await acurrent(database_url) == HEAD
    assert await run_on(database_url, schema_differences) == []
    facts = await run_on(database_url, schema_facts)
    tables = ["labox_alembic_version", "labox_contents", "labox_manifests", sqlite_tags.TABLE]
    assert facts["tables"] == sorted(tables)
    expected_manifest_indexes = [
        "ix_labox_manifests_class_id",
        "ix_labox_manifests_created_at",
        *(index.name for index in ORDERED_TAG_INDEXES),
    ]
    if database_url.startswith("postgresql"):
        expected_manifest_indexes += ["ix_labox_manifests_tags", "labox_manifests_pkey"]
    assert facts["indexes"]["labox_manifests"] == sorted(expected_manifest_indexes)
    assert set(facts["indexes"]["labox_contents"]) >= {
        "ix_labox_contents_content_hash",
        "ix_labox_contents_manifest_id",
    }
    assert facts["unique"] == ["uq_labox_contents_manifest_key"]
    assert facts["fks"] == [{"ondelete": "CASCADE"}]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_tags_are_jsonb_with_a_gin_index(database_url: str) -> None:
    await aupgrade(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            column_type = await connection.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'labox_manifests' AND column_name = 'tags'"
                )
            )
            index = await connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_labox_manifests_tags'")
            )
    finally:
        await engine.dispose()
    assert column_type == "jsonb"
    assert "USING gin (tags jsonb_path_ops)" in index


async def test_upgrade_is_idempotent_and_the_tables_work(
    database_url: str, registry: Registry
) -> None:
    await aupgrade(database_url)
    await aupgrade(database_url)
    await aupgrade(database_url, HEAD)
    assert await acurrent(database_url) == HEAD

    engine = create_async_engine(database_url)
    try:
        sessions = async_sessionmaker(engine)
        async with sessions() as session:
            saved = await save_one(
                StorableValue([1, 2]), session=session, registry=registry, tags={"m": "1"}
            )
        async with sessions() as session:
            assert [r.id for r in await find_manifests(session, tags={"m": "1"})] == [saved.id]
    finally:
        await engine.dispose()


async def test_a_projects_own_alembic_history_is_left_alone(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
            await connection.execute(text("INSERT INTO alembic_version VALUES ('users_rev_7')"))
        await aupgrade(engine)  # an engine is used and left open
        async with engine.connect() as connection:
            theirs = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            ours = await connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    finally:
        await engine.dispose()
    assert (theirs, ours) == ("users_rev_7", HEAD)


async def test_tables_from_create_all_are_adopted(database_url: str, engine: AsyncEngine) -> None:
    # The ``engine`` fixture made the tables with BaseRecord.create_all, as the guide does.
    assert await acurrent(engine) is None
    await aupgrade(engine)
    assert await acurrent(engine) == HEAD
    async with engine.connect() as connection:
        assert await connection.run_sync(schema_differences) == []


async def test_tables_that_differ_are_not_adopted(database_url: str, engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_labox_contents_content_hash"))
    with pytest.raises(SchemaMismatchError, match="ix_labox_contents_content_hash"):
        await aupgrade(engine)
    assert await acurrent(engine) is None


def test_sync_upgrade_on_a_sqlite_file_with_sync_and_async_urls(tmp_path: Any) -> None:
    path = tmp_path / "sync.db"
    assert current(f"sqlite:///{path}") is None
    upgrade(f"sqlite+aiosqlite:///{path}")
    upgrade(f"sqlite:///{path}")
    assert current(f"sqlite+aiosqlite:///{path}") == HEAD
    assert current(f"sqlite:///{path}") == HEAD


async def test_sync_upgrade_works_even_from_a_running_loop(database_url: str) -> None:
    # It blocks this loop while it runs (aupgrade is the polite way), but it does not fail.
    upgrade(database_url)
    assert current(database_url) == HEAD
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            assert await find_manifests(session) == []
    finally:
        await engine.dispose()


async def drop_ordered_tag_indexes(engine: AsyncEngine) -> None:
    """Make the tables as an older version's create_all made them."""
    async with engine.begin() as connection:
        for index in ORDERED_TAG_INDEXES:
            await connection.execute(text(f"DROP INDEX {index.name}"))


async def test_tables_from_an_older_create_all_are_adopted_and_get_the_tag_indexes(
    database_url: str, engine: AsyncEngine
) -> None:
    await drop_ordered_tag_indexes(engine)
    await aupgrade(engine)
    assert await acurrent(engine) == HEAD
    async with engine.connect() as connection:
        names = await connection.run_sync(index_names, "labox_manifests")
        assert await connection.run_sync(schema_differences) == []
    assert {index.name for index in ORDERED_TAG_INDEXES} <= set(names)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_create_all_adds_the_tag_indexes_to_older_sqlite_tables(
    database_url: str, engine: AsyncEngine
) -> None:
    # The embedded database is made by create_all, not migrated: it adds what is missing.
    await drop_ordered_tag_indexes(engine)
    await BaseRecord.create_all(engine)
    await BaseRecord.create_all(engine)
    async with engine.connect() as connection:
        names = await connection.run_sync(index_names, "labox_manifests")
    assert {index.name for index in ORDERED_TAG_INDEXES} <= set(names)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_samples_a_thousand_tag_documents_for_the_planner(
    database_url: str,
) -> None:
    await aupgrade(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            target = await connection.scalar(
                text(
                    "SELECT attstattarget FROM pg_attribute "
                    "WHERE attrelid = 'labox_manifests'::regclass AND attname = 'tags'"
                )
            )
    finally:
        await engine.dispose()
    assert target == 1000


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


def tag_index_sql(connection: Connection) -> list[tuple[str, str]]:
    """The SQL SQLite keeps of the tag index's table and triggers, and how many entries."""
    rows = connection.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE name = :table OR "
            "(type = 'trigger' AND tbl_name = 'labox_manifests') ORDER BY name"
        ),
        {"table": sqlite_tags.TABLE},
    )
    return [(name, sql) for name, sql in rows]


async def entry_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(text(f"SELECT count(*) FROM {sqlite_tags.TABLE}"))
    return int(count or 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_sqlite_tag_index_migrated_is_the_one_create_all_makes(
    database_url: str, tmp_path: Any, registry: Registry
) -> None:
    await aupgrade(database_url)
    made = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'made.db'}")
    try:
        await BaseRecord.create_all(made)
        async with made.connect() as connection:
            expected = await connection.run_sync(tag_index_sql)
    finally:
        await made.dispose()

    assert [name for name, _ in expected] == sorted([sqlite_tags.TABLE, *sqlite_tags.TRIGGERS])
    assert await run_on(database_url, tag_index_sql) == expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_older_sqlite_tables_get_the_tag_index_with_their_manifests_and_lose_it_on_downgrade(
    database_url: str, engine: AsyncEngine, registry: Registry
) -> None:
    async with AsyncSession(engine) as session:
        await save_one(StorableValue(1), session=session, registry=registry, tags={"u": "1"})
    async with engine.begin() as connection:  # as an older version's create_all made them
        for trigger in sqlite_tags.TRIGGERS:
            await connection.execute(text(f"DROP TRIGGER {trigger}"))
        await connection.execute(text(f"DROP TABLE {sqlite_tags.TABLE}"))

    await aupgrade(engine)
    assert await acurrent(engine) == HEAD
    assert await entry_count(engine) == 1
    async with AsyncSession(engine) as session:
        await save_one(StorableValue(2), session=session, registry=registry, tags={"u": "2"})
    assert await entry_count(engine) == 2

    downgrade = partial(_downgrade, revision="0002")  # a downgrade takes it away whole
    await arun_on_database(engine, downgrade)
    async with engine.connect() as connection:
        assert await connection.run_sync(tag_index_sql) == []


def postgresql_tag_index_sql(connection: Connection) -> list[tuple[str, str]]:
    """The definitions PostgreSQL keeps of the tag index: columns, key, statistics, triggers
    and their functions."""
    rows = connection.execute(
        text(
            "SELECT 'column ' || attname, format_type(atttypid, atttypmod) || "
            "CASE WHEN attnotnull THEN ' not null' ELSE '' END FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped "
            "UNION ALL SELECT 'index ' || relname, pg_get_indexdef(indexrelid) FROM pg_index "
            "JOIN pg_class ON pg_class.oid = indexrelid WHERE indrelid = CAST(:table AS regclass) "
            "UNION ALL SELECT 'statistics ' || stxname, "
            "pg_get_statisticsobjdef(oid) || ' ' || stxstattarget "
            "FROM pg_statistic_ext WHERE stxrelid = CAST(:table AS regclass) "
            "UNION ALL SELECT 'trigger ' || tgname, pg_get_triggerdef(pg_trigger.oid) || ' ' || "
            "pg_get_functiondef(tgfoid) FROM pg_trigger "
            "WHERE tgrelid = CAST('labox_manifests' AS regclass) AND NOT tgisinternal "
            "ORDER BY 1"
        ),
        {"table": sqlite_tags.TABLE},
    )
    return [(name, sql) for name, sql in rows]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_postgresql_tag_index_migrated_is_the_one_create_all_makes(
    database_url: str, engine: AsyncEngine, registry: Registry
) -> None:
    await BaseRecord.create_all(engine)
    async with engine.connect() as connection:
        expected = await connection.run_sync(postgresql_tag_index_sql)
    async with engine.begin() as connection:
        for statement in postgresql_tags.DROP:
            await connection.execute(text(statement))
        await connection.run_sync(BaseRecord.metadata.drop_all)
    assert [name.split()[0] for name, _ in expected].count("trigger") == 3

    await aupgrade(engine)
    assert await acurrent(engine) == HEAD
    async with engine.connect() as connection:
        assert await connection.run_sync(postgresql_tag_index_sql) == expected


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_older_postgresql_tables_get_the_tag_index_and_lose_it_on_downgrade(
    database_url: str, engine: AsyncEngine, registry: Registry
) -> None:
    async with AsyncSession(engine) as session:
        await save_one(StorableValue(1), session=session, registry=registry, tags={"u": "1"})
    async with engine.begin() as connection:  # as an older version's create_all made them
        for statement in postgresql_tags.DROP:
            await connection.execute(text(statement))

    await aupgrade(engine)
    assert await acurrent(engine) == HEAD
    assert await entry_count(engine) == 1
    async with AsyncSession(engine) as session:
        await save_one(StorableValue(2), session=session, registry=registry, tags={"u": "2"})
    assert await entry_count(engine) == 2

    async with engine.connect() as connection:
        await connection.run_sync(_downgrade, "0003")
        await connection.commit()
        found = await connection.scalar(
            text("SELECT to_regclass(:name)"), {"name": sqlite_tags.TABLE}
        )
    assert found is None
    async with AsyncSession(engine) as session:  # saves work without it
        await save_one(StorableValue(3), session=session, registry=registry, tags={"u": "3"})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_postgresql_tag_index_without_task_names_gets_them_and_loses_them_on_downgrade(
    database_url: str, registry: Registry
) -> None:
    engine = create_async_engine(database_url)
    try:
        await aupgrade(engine, "0004")
        async with engine.connect() as connection:
            before = await connection.run_sync(postgresql_tag_index_sql)
        tags = {"prefect.task_name": "fit", "u": "1"}
        async with AsyncSession(engine) as session:
            await save_one(StorableValue(1), session=session, registry=registry, tags=tags)

        await aupgrade(engine)
        assert await acurrent(engine) == HEAD
        async with AsyncSession(engine) as session:  # the task index finds the old entry
            [found] = await find_manifests(session, tags=tags)
        assert found.tags == tags
        async with engine.connect() as connection:
            named = await connection.scalar(
                text(f"SELECT task_name FROM {postgresql_tags.TABLE} WHERE key = 'u'")
            )
        assert named == "fit"

        async with engine.connect() as connection:
            await connection.run_sync(_downgrade, "0004")
            await connection.commit()
            assert await connection.run_sync(postgresql_tag_index_sql) == before
        assert await entry_count(engine) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_create_all_remakes_a_postgresql_tag_index_without_task_names(
    database_url: str, engine: AsyncEngine, registry: Registry
) -> None:
    await BaseRecord.create_all(engine)
    async with engine.connect() as connection:
        expected = await connection.run_sync(postgresql_tag_index_sql)
    async with engine.begin() as connection:
        for statement in postgresql_tags.DROP:
            await connection.execute(text(statement))
        await connection.run_sync(BaseRecord.metadata.drop_all)
    await aupgrade(engine, "0004")  # as a version without task names made it
    tags = {"prefect.task_name": "fit", "u": "1"}
    async with AsyncSession(engine) as session:
        await save_one(StorableValue(1), session=session, registry=registry, tags=tags)

    await BaseRecord.create_all(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(postgresql_tag_index_sql) == expected
        named = await connection.scalar(
            text(f"SELECT task_name FROM {postgresql_tags.TABLE} WHERE key = 'u'")
        )
    assert named == "fit"
