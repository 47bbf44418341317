"""Connections to PostgreSQL: sized by LABOX_DB_*, named, and patient at a connection limit."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy import NullPool, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from labox_prefect import labox_task
from labox_prefect.runtime import server_engine_options, shutdown
from labox_prefect.settings import current_settings
from tests.conftest import _execute
from tests.integration._helpers import ConnectionSampler, dsn, manifests
from tests.integration.conftest import Backend

PATIENCE = 120.0
on_postgres = pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)


@on_postgres
def test_a_flow_of_16_parallel_tasks_stays_within_the_pool(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"labox-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LABOX_DB_APPLICATION_NAME", name)
    settings = current_settings()
    bound = settings.db_pool_size + settings.db_max_overflow
    salt = uuid.uuid4().hex

    @labox_task(tags={"pool-test": salt})
    def square(x: int) -> int:
        return x * x

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=16))
    def parallel() -> list[int]:
        return [future.result() for future in square.map(range(16))]

    with ConnectionSampler(backend.database_url, name) as sampler:
        assert parallel() == [x * x for x in range(16)]

    assert len(manifests(**{"pool-test": salt})) == 16
    assert (settings.db_pool_size, settings.db_max_overflow) == (2, 2)  # the defaults
    assert 1 <= max(sampler.counts) <= bound


class _Signal(logging.Handler):
    """Sets ``seen`` when the runtime logs that a connection waits for the limit."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "connection limit" in record.getMessage():
            self.seen.set()


@pytest.fixture
def connection_limit(backend: Backend) -> Iterator[int]:
    """The session's database limited to 4 connections (restored after), with no engine of
    this process holding any: every test before this one may have left pooled ones open."""
    shutdown()
    database = make_url(backend.database_url).database
    base = make_url(backend.database_url).set(database="postgres").render_as_string(False)
    _execute(base, f'ALTER DATABASE "{database}" CONNECTION LIMIT 4')
    try:
        yield 4
    finally:
        shutdown()
        _execute(base, f'ALTER DATABASE "{database}" CONNECTION LIMIT -1')


@on_postgres
def test_at_a_connection_limit_concurrent_flow_runs_wait_and_save_everything(
    backend: Backend, connection_limit: int
) -> None:
    salt = uuid.uuid4().hex
    signal = _Signal()
    runtime_logger = logging.getLogger("labox_prefect.runtime")
    runtime_logger.addHandler(signal)
    previous_level = runtime_logger.level
    runtime_logger.setLevel(logging.INFO)
    release = threading.Event()
    occupied = threading.Event()

    async def occupy() -> None:  # another worker holding every connection, for a while
        held = [await asyncpg.connect(dsn(backend.database_url)) for _ in range(connection_limit)]
        occupied.set()
        await asyncio.to_thread(release.wait)
        for connection in held:
            await connection.close()

    @labox_task(tags={"limit-test": salt})
    def double(x: int) -> dict[str, int]:
        return {"x": x, "double": 2 * x}

    @flow
    def one_run(i: int) -> list[dict[str, int]]:
        return [double(i), double(100 + i)]

    occupier = threading.Thread(target=asyncio.run, args=(occupy(),))
    occupier.start()
    try:
        assert occupied.wait(PATIENCE)
        with ThreadPoolExecutor(max_workers=8) as runs:
            futures = [runs.submit(one_run, i) for i in range(8)]
            assert signal.seen.wait(PATIENCE), "no connection ever met the limit"
            release.set()
            results = [future.result(timeout=4 * PATIENCE) for future in futures]
    finally:
        release.set()
        occupier.join()
        runtime_logger.removeHandler(signal)
        runtime_logger.setLevel(previous_level)

    assert results == [
        [{"x": i, "double": 2 * i}, {"x": 100 + i, "double": 200 + 2 * i}] for i in range(8)
    ]
    assert len(manifests(**{"limit-test": salt})) == 16


def test_the_null_pool_mode_and_the_application_name(monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_url("postgresql+asyncpg://user:secret@127.0.0.1:5432/db")
    monkeypatch.setenv("LABOX_DB_POOL", "null")
    monkeypatch.setenv("LABOX_DB_APPLICATION_NAME", "my-worker")
    options: dict[str, Any] = server_engine_options(url, current_settings())
    engine = create_async_engine(url, **options)

    assert isinstance(engine.pool, NullPool)
    assert options["connect_args"]["server_settings"] == {"application_name": "my-worker"}
    named = make_url(f"{url.render_as_string(False)}?application_name=mine")
    assert "server_settings" not in server_engine_options(named, current_settings()).get(
        "connect_args", {}
    )
