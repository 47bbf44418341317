"""gc and results rm never delete what a record uses; read-only commands create nothing.

Each test is an example of issue 8 ("Nothing lost, ever") that failed before.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from typer.testing import CliRunner, Result

from labox_prefect.cli import app, output
from labox_prefect.core import BaseRecord, ManifestRecord, Registry, load_one, save_one
from labox_prefect.core.builtin import FileStorage, StorableValue
from tests.conftest import table_names
from tests.integration._records import prefect_tags, save
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

MODULES = ["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def core_save(database: Path, value: object, registry: Registry) -> ManifestRecord:
    """Save with the core alone, into the user's own SQLite database."""

    async def go() -> ManifestRecord:
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        try:
            await BaseRecord.create_all(engine)
            async with async_sessionmaker(engine)() as session:
                return await save_one(StorableValue(value), session=session, registry=registry)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def core_load(database: Path, record: ManifestRecord, registry: Registry) -> object:
    async def go() -> object:
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        try:
            async with async_sessionmaker(engine)() as session:
                return (await load_one(record, session=session, registry=registry)).value
        finally:
            await engine.dispose()

    return asyncio.run(go())


def age(path: Path, seconds: float) -> None:
    """Make a file look written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@sqlite_only
def test_gc_keeps_what_a_core_user_saved_in_their_own_database(
    backend: Backend, tmp_path: Path
) -> None:
    """The issue's example: a Registry with no storage, your own mine.db, then gc."""
    save({"n": 1}, prefect_tags())  # the integration's database exists
    mine = tmp_path / "mine.db"
    frame = pd.DataFrame({"a": range(100)})
    record = core_save(mine, frame, Registry(modules=MODULES))

    result = run("gc", "--grace", "0s")

    assert result.exit_code == 0, result.output
    loaded = core_load(mine, record, Registry(modules=MODULES))
    pd.testing.assert_frame_equal(loaded, frame)  # type: ignore[arg-type]


@sqlite_only
def test_gc_refuses_a_storage_another_database_writes_to(backend: Backend, tmp_path: Path) -> None:
    save({"n": 1}, prefect_tags())
    shared = FileStorage(backend.storage_url)  # the integration's folder, on purpose
    mine = tmp_path / "mine.db"
    registry = Registry(modules=MODULES, default_storage=shared)
    frame = pd.DataFrame({"b": range(100)})
    record = core_save(mine, frame, registry)

    result = run("gc", "--grace", "0s")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert f"sqlite:///{mine.as_posix()}" in message
    assert "Nothing was deleted" in message
    pd.testing.assert_frame_equal(core_load(mine, record, registry), frame)  # type: ignore[arg-type]


@sqlite_only
def test_gc_table_names_each_storage_whole_at_80_columns(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "_width", 80)
    save(pd.DataFrame({"k": [1]}), prefect_tags())

    dry = run("gc", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert max(len(line) for line in dry.stdout.splitlines()) <= 80
    table = dry.stdout.split("would be deleted")[0]
    for name in ("labox.database@v1", "labox.file@v1", "unreferenced"):
        assert name in table, dry.stdout
    assert "…" not in table


@sqlite_only
def test_gc_removes_temporary_files_of_killed_writers_after_the_grace(backend: Backend) -> None:
    save(pd.DataFrame({"k": [1]}), prefect_tags())
    temp = Path(backend.storage_url) / ".tmp"
    temp.mkdir(exist_ok=True)
    dead, live = temp / "dead-writer", temp / "live-writer"
    dead.write_bytes(b"half a blob")
    live.write_bytes(b"being written")
    age(dead, 2 * 3600)

    dry = run("gc", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete temporary file labox.file@v1 .tmp/dead-writer" in dry.stdout
    assert dead.exists()

    real = run("gc")
    assert real.exit_code == 0, real.output
    assert "and 1 temporary files" in real.stdout
    assert not dead.exists()
    assert live.exists()


@sqlite_only
def test_read_only_commands_on_a_mistyped_path_create_nothing(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "no-such-folder" / "labox.db"
    monkeypatch.setenv("LABOX_DATABASE_URL", f"sqlite+aiosqlite:///{typo}")

    for command in (["results", "ls"], ["verify"], ["gc"], ["results", "rm", "--keep-last", "1"]):
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert "No Labox database at" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not typo.parent.exists()


READ_ONLY_COMMANDS = (
    ["results", "ls"],
    ["results", "show", str(uuid.UUID(int=1))],
    ["results", "get", str(uuid.UUID(int=1)), "--output", "out.json"],
    ["verify"],
    ["gc", "--dry-run"],
    ["results", "rm", "--keep-last", "1"],
)


@sqlite_only
def test_commands_other_than_db_upgrade_create_no_table_on_postgresql(
    backend: Backend, empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_DATABASE_URL", empty_postgres_url)

    for command in READ_ONLY_COMMANDS:
        result = run(*command)
        assert result.exit_code == 2, (command, result.output)
        (line,) = result.stderr.splitlines()  # one line, no blank line before it
        assert "has no Labox tables" in line, command
        assert "Reading creates nothing: run `labox-prefect db upgrade`" in line
        assert "***" in line or "@" not in line  # the URL's password is never printed
    assert table_names(empty_postgres_url) == set()

    assert run("db", "upgrade").exit_code == 0
    listed = run("results", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []


@sqlite_only
def test_before_the_first_save_the_embedded_default_lists_nothing_and_creates_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    database = tmp_path / "labox" / "labox.db"

    listed = run("results", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []
    for command in READ_ONLY_COMMANDS[1:]:
        result = run(*command)
        assert result.exit_code == 2, (command, result.output)
        (line,) = result.stderr.splitlines()  # one line, no blank line before it
        assert "No Labox database at" in line, command
    assert not database.parent.exists()


@sqlite_only
def test_commands_on_a_sqlite_file_without_labox_tables_create_none(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "another-app.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    monkeypatch.setenv("LABOX_DATABASE_URL", f"sqlite+aiosqlite:///{other}")

    for command in READ_ONLY_COMMANDS:
        result = run(*command)
        assert result.exit_code == 2, (command, result.output)
        (line,) = result.stderr.splitlines()  # one line, no blank line before it
        assert "has no Labox tables" in line, command
    with sqlite3.connect(other) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert names == {"notes"}


@sqlite_only
def test_results_rm_keeps_the_newest_per_task_and_lists_in_a_dry_run(
    backend: Backend,
) -> None:
    train = [save(pd.DataFrame({"t": [i]}), prefect_tags(task="train")) for i in range(3)]
    other = save(pd.DataFrame({"o": [0]}), prefect_tags(task="score"))

    dry = run("results", "rm", "--keep-last", "1", "--dry-run", "--grace", "0s")
    assert dry.exit_code == 0, dry.output
    for record in train[:2]:
        assert f"would delete record {record.id}" in dry.stdout
    assert str(train[2].id) not in dry.stdout
    assert str(other.id) not in dry.stdout
    assert "Would delete 2 results and 2 blobs" in dry.stdout

    real = run("results", "rm", "--keep-last", "1", "--grace", "0s")
    assert real.exit_code == 0, real.output
    assert "Deleted 2 results and 2 blobs" in real.stdout
    listed = run("results", "ls", "--json")
    assert {str(train[2].id), str(other.id)} == {entry["id"] for entry in json.loads(listed.stdout)}
    assert run("verify").exit_code == 0


@sqlite_only
def test_results_rm_needs_a_rule(backend: Backend) -> None:
    save({"n": 1}, prefect_tags())
    result = run("results", "rm")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()  # one line, no blank line before it
    assert line.startswith("Error: results rm needs a rule")
    assert "give at least one of --older-than, --keep-last or --tag" in line
    assert "Invalid value" not in line
