"""A single row's INSERT on a sync SQLite Connection, sent to the driver's cursor."""

from __future__ import annotations

import datetime
import gc
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from labox_prefect.core import BaseRecord, ContentRecord, ManifestRecord, driver_execute
from labox_prefect.core.connection import is_transient
from labox_prefect.core.driver_execute import execute_row


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'labox.db'}")
    BaseRecord.metadata.create_all(engine)
    yield engine
    engine.dispose()


def manifest_row(**changes: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "created_at": datetime.datetime(2026, 12, 2, 10, 30, 1, 123456, tzinfo=datetime.UTC),
        "class_id": uuid.UUID(int=7),
        "unpacker_name": "labox.value@v1",
        "tags": {"k": "v", "é": "ü", "n": "1"},
    }
    return row | changes


def content_row(manifest_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "created_at": datetime.datetime(2026, 12, 2, 10, 30, 1, 5, tzinfo=datetime.UTC),
        "manifest_id": manifest_id,
        "content_key": "data",
        "content_type": "application/json",
        "content_encoding": None,
        "content_size": 12,
        "content_hash": "ab" * 32,
        "content_hash_algorithm": "sha256",
        "serializer_name": "labox.value-tree@v1",
        "serializer_config": {},
        "serializer_type": "value",
        "storage_name": "labox.database@v1",
        "storage_config": {"text": '{"a": [1, 2.5, null]}'},
    }


def stored(path: str, table: str, key: uuid.UUID) -> dict[str, Any]:
    """The row as SQLite holds it (each value's type and text), without its ids."""
    with sqlite3.connect(path) as raw:
        cursor = raw.execute(
            f"SELECT *, typeof(created_at) AS stored_as FROM {table} WHERE id = ?", (key.hex,)
        )
        names = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    assert row is not None
    return {
        name: value
        for name, value in zip(names, row, strict=True)
        if name not in ("id", "manifest_id")
    }


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(engine: Engine) -> None:
    by_driver, by_sqlalchemy = manifest_row(), manifest_row()
    with engine.connect() as connection:
        execute_row(connection, insert(ManifestRecord), by_driver)
        execute_row(connection, insert(ContentRecord), content_row(by_driver["id"]))
        connection.execute(insert(ManifestRecord), by_sqlalchemy)
        sqlalchemy_content = content_row(by_sqlalchemy["id"])
        connection.execute(insert(ContentRecord), sqlalchemy_content)
        connection.commit()
    path = str(engine.url.database)
    driver_manifest = stored(path, "labox_manifests", by_driver["id"])
    assert driver_manifest == stored(path, "labox_manifests", by_sqlalchemy["id"])
    assert driver_manifest["created_at"] == "2026-12-02 10:30:01.123456"
    driver_content = stored(path, "labox_contents", content_row_id(path, by_driver["id"]))
    assert driver_content == stored(path, "labox_contents", sqlalchemy_content["id"])


def content_row_id(path: str, manifest_id: uuid.UUID) -> uuid.UUID:
    with sqlite3.connect(path) as raw:
        (found,) = raw.execute(
            "SELECT id FROM labox_contents WHERE manifest_id = ?", (manifest_id.hex,)
        ).fetchone()
    return uuid.UUID(found)


def test_a_single_row_skips_the_engines_cursor_events(engine: Engine) -> None:
    """The point of it: no SQLAlchemy execution around the cursor (its events included)."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as connection:
            execute_row(connection, insert(ManifestRecord), manifest_row())
            connection.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen == []
    with engine.connect() as connection:
        assert len(connection.execute(ManifestRecord.__table__.select()).all()) == 1


def test_the_row_is_in_the_connections_transaction(engine: Engine) -> None:
    with engine.connect() as connection:
        execute_row(connection, insert(ManifestRecord), manifest_row())
        assert connection.in_transaction()
        connection.rollback()
        kept = manifest_row()
        execute_row(connection, insert(ManifestRecord), kept)
        connection.commit()
    with engine.connect() as connection:
        ids = connection.execute(ManifestRecord.__table__.select()).scalars().all()
    assert ids == [kept["id"]]


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    row = manifest_row()
    with engine.connect() as connection:
        execute_row(connection, insert(ManifestRecord), row)
        with pytest.raises(IntegrityError) as raised:
            execute_row(connection, insert(ManifestRecord), row)
        assert isinstance(raised.value.orig, sqlite3.IntegrityError)
        assert "labox_manifests.id" in str(raised.value)
        connection.rollback()
        execute_row(connection, insert(ManifestRecord), row)  # usable again
        connection.commit()


def test_a_locked_database_is_a_transient_operational_error(engine: Engine) -> None:
    path = str(engine.url.database)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        locked = create_engine(engine.url, connect_args={"timeout": 0})
        with locked.connect() as connection, pytest.raises(OperationalError) as raised:
            execute_row(connection, insert(ManifestRecord), manifest_row())
        locked.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked" in str(raised.value)
    assert is_transient(raised.value) == is_transient(
        OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    )


def test_a_statement_needing_a_python_default_goes_through_sqlalchemy(engine: Engine) -> None:
    metadata = MetaData()
    table = Table(
        "with_default",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String, default="filled by SQLAlchemy"),
    )
    metadata.create_all(engine)
    with engine.connect() as connection:
        execute_row(connection, insert(table), {"id": 1})
        connection.commit()
        assert connection.execute(table.select()).all() == [(1, "filled by SQLAlchemy")]


def test_a_translated_schema_goes_through_sqlalchemy(engine: Engine, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    BaseRecord.metadata.create_all(create_engine(f"sqlite:///{other}"))
    row = manifest_row()
    with engine.connect() as connection:
        connection.exec_driver_sql(f"ATTACH DATABASE '{other}' AS other")
        translated = connection.execution_options(schema_translate_map={None: "other"})
        execute_row(translated, insert(ManifestRecord), row)
        translated.commit()
    with sqlite3.connect(other) as raw:
        assert raw.execute("SELECT id FROM labox_manifests").fetchall() == [(row["id"].hex,)]
    with sqlite3.connect(str(engine.url.database)) as raw:
        assert raw.execute("SELECT id FROM labox_manifests").fetchall() == []


def test_each_thread_compiles_a_statement_once_and_keeps_nothing_once_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As many lanes as a large machine's thread pool, each with its engine: none recompiles
    its statements, and an ended thread's compiled statements (and dialect) go with it."""
    compiled: list[str] = []
    prepare = driver_execute._prepare

    def counting(statement: Any, dialect: Any, columns: frozenset[str]) -> Any:
        compiled.append(threading.current_thread().name)
        return prepare(statement, dialect, columns)

    monkeypatch.setattr(driver_execute, "_prepare", counting)
    url = f"sqlite:///{tmp_path / 'labox.db'}"
    BaseRecord.metadata.create_all(create_engine(url))
    statement = insert(ManifestRecord)
    dialects: list[weakref.ref[Any]] = []

    def lane() -> None:
        engine = create_engine(url)
        dialects.append(weakref.ref(engine.dialect))
        with engine.connect() as connection:
            for _ in range(3):
                execute_row(connection, statement, manifest_row())
            connection.commit()
        engine.dispose()

    lanes = [threading.Thread(target=lane, name=f"lane-{n}") for n in range(40)]
    for thread in lanes:
        thread.start()
        thread.join()
    assert sorted(compiled) == sorted(thread.name for thread in lanes)  # once per lane
    gc.collect()
    assert all(dialect() is None for dialect in dialects)
