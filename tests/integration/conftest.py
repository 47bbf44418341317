"""Prefect fixtures: one test harness per session, fresh Labox settings per test.

The harness (a temporary Prefect server and database) costs seconds, so every integration
test shares one, with the services that tests never need turned off. Labox settings are
per test: each test gets its own LABOX_HOME (embedded SQLite and blob folder), or, on the
``postgres_s3`` backend, the session's PostgreSQL database and a fresh S3 bucket.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from tests.conftest import S3Server

_QUIET_SERVICES = (
    "EVENT_PERSISTER",
    "TRIGGERS",
    "TASK_RUN_RECORDER",
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
)

_LABOX_VARIABLES = (
    "LABOX_HOME",
    "LABOX_DATABASE_URL",
    "LABOX_STORAGE_URL",
    "LABOX_S3_ENDPOINT_URL",
    "LABOX_REGISTRY_MODULES",
    "LABOX_ARTIFACTS",
)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session, with idle services off."""
    with pytest.MonkeyPatch.context() as env:
        for service in _QUIET_SERVICES:
            env.setenv(f"PREFECT_API_SERVICES_{service}_ENABLED", "false")
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # None: wait PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (the harness's own 30 s
        # is too short on a loaded machine)
        with prefect_test_harness(server_startup_timeout=None):
            yield


@dataclass(frozen=True)
class Backend:
    """Where this test's results go, as the environment says it."""

    name: str
    database_url: str
    storage_url: str


@pytest.fixture(params=["sqlite", "postgres_s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    """Labox settings for one test: embedded SQLite + files, or PostgreSQL + S3.

    Artifacts are off unless a test turns them on (they cost API calls per flow run).
    """
    for name in _LABOX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABOX_HOME", str(tmp_path / "labox"))
    monkeypatch.setenv("LABOX_ARTIFACTS", "false")
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(tmp_path / "prefect-results"))
    if request.param == "sqlite":
        home = tmp_path / "labox"
        return Backend(
            "sqlite",
            f"sqlite+aiosqlite:///{(home / 'labox.db').as_posix()}",
            (home / "storage").as_posix(),
        )
    postgres_url: str = request.getfixturevalue("postgres_url")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    storage_url = f"s3://{bucket}/results"
    monkeypatch.setenv("LABOX_DATABASE_URL", postgres_url)
    monkeypatch.setenv("LABOX_STORAGE_URL", storage_url)
    monkeypatch.setenv("LABOX_S3_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret)
    if not os.environ.get("AWS_DEFAULT_REGION"):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return Backend("postgres_s3", postgres_url, storage_url)
