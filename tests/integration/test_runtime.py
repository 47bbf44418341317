"""The runtime thread and the settings it reads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from labox_prefect.result_keys import (
    ResultKey,
    add_result_key,
    lookup_result_key,
    put_result_key,
)
from labox_prefect.runtime import get_runtime, shutdown
from labox_prefect.settings import current_settings
from labox_prefect.sqlite_inline import InlineConnection


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


def test_run_works_from_any_thread_and_any_loop() -> None:
    runtime = get_runtime()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(runtime.run(_where())))]
    threads += [
        threading.Thread(target=lambda: results.append(asyncio.run(runtime.arun(_where()))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["labox-prefect-runtime"] * 2


def test_shutdown_stops_the_thread_and_a_new_runtime_starts_on_use() -> None:
    runtime = get_runtime()

    shutdown()

    assert runtime.closed
    assert not any(t.name == "labox-prefect-runtime" for t in threading.enumerate())
    assert get_runtime() is not runtime
    assert get_runtime().run(_where()) == "labox-prefect-runtime"


def test_the_runtime_refuses_to_wait_on_itself() -> None:
    runtime = get_runtime()

    async def nested() -> None:
        runtime.run(_where())

    with pytest.raises(RuntimeError, match="deadlock"):
        runtime.run(nested())


def test_defaults_live_under_labox_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LABOX_DATABASE_URL", "LABOX_STORAGE_URL", "LABOX_REGISTRY_MODULES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABOX_HOME", str(tmp_path))
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", " a.b , c ,")

    settings = current_settings()

    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/labox.db"
    assert settings.resolved_storage_url() == f"{tmp_path}/storage"
    assert settings.registry_modules == ("a.b", "c")
    assert settings.artifacts is True


def test_sqlite_statements_run_on_the_runtime_thread(tmp_path: Path) -> None:
    """No thread hop per statement: SQLite is called from the runtime loop itself."""
    url = _sqlite_url(tmp_path, "inline.db")
    runtime = get_runtime()
    assert runtime.run(_sqlite_thread(url)) == ("labox-prefect-runtime",) * 2


def _sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{(tmp_path / name).as_posix()}"


async def _sqlite_thread(url: str) -> tuple[str, str]:
    """(the thread running this coroutine, the thread SQLite runs its statements in)."""
    engine = await get_runtime().engine(url)
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, InlineConnection)
        await driver.create_function("thread_name", 0, lambda: threading.current_thread().name)
        sqlite = str((await connection.exec_driver_sql("SELECT thread_name()")).scalar_one())
    return threading.current_thread().name, sqlite


def test_a_sync_caller_runs_an_embedded_database_coroutine_in_its_own_thread(
    tmp_path: Path,
) -> None:
    """No hand-over to the runtime thread and back for the embedded database (a lane)."""
    url = _sqlite_url(tmp_path, "lane.db")
    runtime = get_runtime()
    threads_before = set(threading.enumerate())

    here = threading.current_thread().name
    assert runtime.run_for(url, _sqlite_thread(url)) == (here, here)
    assert runtime.run_for(url, _sqlite_thread(url)) == (here, here)  # the lane is kept
    # its connection has no worker thread (threads of earlier tests may end meanwhile)
    assert set(threading.enumerate()) <= threads_before

    async def from_a_loop() -> tuple[str, str]:
        return runtime.run_for(url, _sqlite_thread(url))  # this loop cannot be nested

    runtime_thread = ("labox-prefect-runtime", "labox-prefect-runtime")
    assert asyncio.run(from_a_loop()) == runtime_thread
    postgres = "postgresql+asyncpg://labox:labox@127.0.0.1:5432/labox_test"
    assert runtime._lane(postgres) is None  # a server database: the runtime's one pool


def test_a_lane_saves_through_one_connection_it_keeps_and_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    url = _sqlite_url(tmp_path, "kept.db")
    runtime = get_runtime()

    async def writer(fail: bool) -> object:
        async with runtime.write_session(url) as connection:
            assert isinstance(connection, Connection)
            await add_result_key(connection, "key", None, "failed" if fail else "saved")
            if fail:
                raise RuntimeError("failed inside the save")
            connection.commit()
            return connection

    first = runtime.run_for(url, writer(fail=False))
    with pytest.raises(RuntimeError, match="failed inside"):
        runtime.run_for(url, writer(fail=True))
    assert runtime.run_for(url, writer(fail=False)) is first  # kept from save to save
    assert isinstance(first, Connection)
    assert not first.in_transaction()
    assert not first.closed
    reader = runtime.sqlite_reader(url)
    assert reader is not None
    assert lookup_result_key(reader, "key") == ResultKey("key", None, "saved")  # rolled back


def test_each_thread_has_a_lane_of_its_own_and_writes_are_seen_across_them(
    tmp_path: Path,
) -> None:
    url = _sqlite_url(tmp_path, "lanes.db")
    runtime = get_runtime()

    async def put(key: str) -> None:
        async with (await runtime.sessions(url))() as session:
            await put_result_key(session, key, None, threading.current_thread().name)

    runtime.run_for(url, put("main"))
    worker = threading.Thread(target=lambda: runtime.run_for(url, put("worker")), name="w1")
    worker.start()
    worker.join()
    reader = runtime.sqlite_reader(url)
    assert reader is not None
    assert lookup_result_key(reader, "worker") == ResultKey("worker", None, "w1")
    assert lookup_result_key(reader, "main") == ResultKey(
        "main", None, threading.current_thread().name
    )


def test_the_embedded_database_is_read_in_the_callers_thread(tmp_path: Path) -> None:
    """Prefect's cache check reads its key without a hand-over to the runtime thread."""
    url = f"sqlite+aiosqlite:///{(tmp_path / 'reader.db').as_posix()}"
    runtime = get_runtime()
    assert runtime.sqlite_reader(url) is None  # not before the runtime made the schema

    async def put(key: str) -> None:
        async with (await runtime.sessions(url))() as session:
            await put_result_key(session, key, None, "the record")

    runtime.run(put("k1"))
    reader = runtime.sqlite_reader(url)
    assert reader is not None
    assert reader is runtime.sqlite_reader(url)  # one per thread and database
    assert lookup_result_key(reader, "k1") == ResultKey("k1", None, "the record")
    assert lookup_result_key(reader, "k2") is None
    runtime.run(put("k2"))  # written after the first read: seen, no stale snapshot
    assert lookup_result_key(reader, "k2") == ResultKey("k2", None, "the record")
    with pytest.raises(sqlite3.OperationalError):  # read-only
        reader.execute("DELETE FROM labox_prefect_results")
    other_thread: list[Any] = []
    thread = threading.Thread(target=lambda: other_thread.append(runtime.sqlite_reader(url)))
    thread.start()
    thread.join()
    assert other_thread[0] is not None
    assert other_thread[0] is not reader
    assert runtime.sqlite_reader("postgresql+asyncpg://labox@127.0.0.1/x") is None
