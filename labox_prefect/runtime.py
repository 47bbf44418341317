"""The process-wide runtime: one event-loop thread that owns every database engine.

Prefect runs a result serializer in whatever thread ran the task, and gives each async task
run a loop of its own, so an async engine created on one of those loops breaks on the next.
Here every engine, session and storage call lives on one private loop in one daemon thread;
callers hand it coroutines with ``run`` (from sync code, any thread) or ``arun`` (from async
code, any loop). Engines are created once per database URL, with their schema made ready on
first use, and are disposed at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from labox_prefect.core import BaseRecord, Registry, Storage
from labox_prefect.core.migrations import aupgrade
from labox_prefect.result_keys import upgrade_result_keys
from labox_prefect.settings import CORE_REGISTRY_MODULES
from labox_prefect.sqlite_inline import create_inline_engine
from labox_prefect.target import Target

T = TypeVar("T")


class Runtime:
    """One daemon thread running one event loop, and everything bound to that loop."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="labox-prefect-runtime", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._engines: dict[str, AsyncEngine] = {}
        self._sessions: dict[str, async_sessionmaker[AsyncSession]] = {}
        self._schema_locks: dict[str, asyncio.Lock] = {}
        self._storages: dict[tuple[str, str | None, str | None, str | None], Storage] = {}
        self._registries: dict[tuple[Any, ...], Registry] = {}
        self._closed = False

    # --- running coroutines ---------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runtime loop and wait for it, from any thread but that loop's."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "Runtime.run was called on the runtime's own loop, which would deadlock; "
                "await the coroutine instead."
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the runtime loop without blocking the caller's loop."""
        if threading.current_thread() is self._thread:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # --- what lives on the loop -------------------------------------------------------------

    async def sessions(self, database_url: str) -> async_sessionmaker[AsyncSession]:
        """Sessions on ``database_url``, whose schema is made ready once per process.

        Must be awaited on the runtime loop (inside a coroutine given to run/arun).
        """
        ready = self._sessions.get(database_url)
        if ready is not None:
            return ready
        lock = self._schema_locks.setdefault(database_url, asyncio.Lock())
        async with lock:
            ready = self._sessions.get(database_url)
            if ready is not None:
                return ready
            engine = _create_engine(database_url)
            try:
                await _prepare_schema(engine)
            except BaseException:
                await engine.dispose()
                raise
            self._engines[database_url] = engine
            ready = async_sessionmaker(engine, expire_on_commit=False)
            self._sessions[database_url] = ready
            return ready

    async def engine(self, database_url: str) -> AsyncEngine:
        """The engine of ``database_url``, schema ready, for statements that need no ORM.

        Must be awaited on the runtime loop, like ``sessions``.
        """
        await self.sessions(database_url)
        return self._engines[database_url]

    def registry(self, target: Target, modules: tuple[str, ...] = ()) -> Registry:
        """The registry of the core modules plus ``modules``, saving to the target's storage.

        One per storage and module list: a registry imports modules and a storage may open
        clients, so both are built once and shared (they are safe to use concurrently).
        """
        key = (target.storage_url, target.s3_endpoint_url, target.s3_key, target.s3_secret)
        with self._lock:
            storage = self._storages.get(key)
            if storage is None:
                storage = self._storages[key] = target.storage()
            registry_key = (*key, modules)
            registry = self._registries.get(registry_key)
            if registry is None:
                registry = Registry(
                    modules=[*CORE_REGISTRY_MODULES, *modules], default_storage=storage
                )
                self._registries[registry_key] = registry
            return registry

    # --- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Dispose every engine and stop the loop; later use starts a new runtime."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.pid == os.getpid() and self._thread.is_alive():
            try:
                self.run(self._dispose_engines())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _dispose_engines(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        self._sessions.clear()
        await asyncio.gather(*(engine.dispose() for engine in engines), return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed


def _create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_inline_engine(url)
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Honour declared foreign keys, and let writers from several processes wait their turn.

    WAL with synchronous=NORMAL keeps a commit to one write without fsync, which is what
    makes a small result cost about as much as a small file.
    """
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=30000",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
    ):
        cursor.execute(pragma)
    cursor.close()


async def _prepare_schema(engine: AsyncEngine) -> None:
    """Create (SQLite) or migrate (any other database) the Labox tables, then ours."""
    if engine.dialect.name == "sqlite":
        await BaseRecord.create_all(engine)
    else:
        await aupgrade(engine)
    await upgrade_result_keys(engine)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The runtime of this process, started on first use (and again after a fork)."""
    global _runtime
    current = _runtime
    if current is not None and not current.closed and current.pid == os.getpid():
        return current
    with _runtime_lock:
        if _runtime is None or _runtime.closed or _runtime.pid != os.getpid():
            _runtime = Runtime()
        return _runtime


def shutdown() -> None:
    """Dispose the engines and stop the runtime thread (registered to run at exit)."""
    with _runtime_lock:
        current = _runtime
    if current is not None:
        current.close()


atexit.register(shutdown)

__all__ = ["Runtime", "get_runtime", "shutdown"]
