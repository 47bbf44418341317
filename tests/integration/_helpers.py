"""Queries the integration tests share: records by tag, straight from the core, and the
connections a test's processes hold on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid

import asyncpg
from sqlalchemy import make_url

from labox_prefect.core import ContentRecord, ManifestRecord, find_manifests, get_contents
from labox_prefect.persistence import open_session
from labox_prefect.result_keys import ResultKey, get_result_key
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target


def manifests(**tags: str) -> list[ManifestRecord]:
    """Manifests of the configured database carrying every given tag."""
    target = Target.from_settings()

    async def query() -> list[ManifestRecord]:
        async with open_session(target) as session:
            return await find_manifests(session, tags=tags)

    return get_runtime().run(query())


def contents(manifest_id: uuid.UUID) -> list[ContentRecord]:
    target = Target.from_settings()

    async def query() -> list[ContentRecord]:
        async with open_session(target) as session:
            return await get_contents(session, manifest_id)

    return get_runtime().run(query())


def result_key(storage_key: str) -> ResultKey | None:
    target = Target.from_settings()

    async def query() -> ResultKey | None:
        async with open_session(target) as session:
            return await get_result_key(session, storage_key)

    return get_runtime().run(query())


def dsn(url: str) -> str:
    """An SQLAlchemy URL of PostgreSQL as a libpq DSN (what asyncpg.connect takes)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ConnectionSampler:
    """Counts, every few milliseconds, the connections pg_stat_activity shows under a name."""

    def __init__(self, url: str, application_name: str) -> None:
        self._dsn = dsn(url)
        self._name = application_name
        self._stop = threading.Event()
        self.counts: list[int] = []
        self._thread = threading.Thread(target=asyncio.run, args=(self._sample(),))

    async def _sample(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            while not self._stop.is_set():
                self.counts.append(
                    await connection.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        self._name,
                    )
                )
                await asyncio.sleep(0.005)
        finally:
            await connection.close()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
