"""The process-wide runtime: one event-loop thread that owns the database engines.

Prefect runs a result serializer in whatever thread ran the task, and gives each async task
run a loop of its own, so an async engine created on one of those loops breaks on the next.
Here every engine, session and storage call lives on one private loop in one daemon thread;
callers hand it coroutines with ``run`` (from sync code, any thread) or ``arun`` (from async
code, any loop). Engines are created once per database URL, with their schema made ready on
first use, and are disposed at interpreter exit.

One exception, for an SQLite file (the embedded database): a hand-over to the runtime thread
and back costs two wake-ups, each waiting for the scheduler and for the GIL that Prefect's
own threads hold in turn, which cost more than saving a small result. So ``run_for`` runs a
coroutine on an SQLite file in the calling sync thread, on that thread's *lane*: a loop of
its own and engines of its own on the file (SQLite serializes writers from any number of
connections, as it does for several processes); a save there writes through a sync
connection the lane keeps open (``write_session``; labox_prefect.core.sessions says why). A
lane also gives its thread a read-only sqlite3 connection (``sqlite_reader``) for the one
lookup every task run makes: Prefect's
cache check of its key, which costs microseconds, as Prefect's own check of a file does. A
lane lives as long as its thread: its connections have no worker thread
(labox_prefect.sqlite_inline) and close when collected. Server databases always go through
the runtime thread, so a process keeps one bounded connection pool per server.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import URL, Connection, NullPool, create_engine, event, make_url
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from labox_prefect.core import (
    AnySession,
    BaseRecord,
    ContentRecord,
    ManifestRecord,
    Registry,
    Storage,
)
from labox_prefect.core.migrations import aupgrade
from labox_prefect.errors import DatabaseNotInitializedError
from labox_prefect.result_keys import upgrade_result_keys
from labox_prefect.settings import CORE_REGISTRY_MODULES, LaboxSettings, current_settings
from labox_prefect.sqlite_inline import create_inline_engine
from labox_prefect.target import Target

T = TypeVar("T")

LABOX_TABLES = (ManifestRecord.__tablename__, ContentRecord.__tablename__)
"""The tables a read needs: without them a database holds no Labox result."""

logger = logging.getLogger(__name__)


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
        self._engines: dict[EngineKey, AsyncEngine] = {}
        self._sessions: dict[EngineKey, async_sessionmaker[AsyncSession]] = {}
        self._schema_locks: dict[EngineKey, asyncio.Lock] = {}
        self._prepared: set[EngineKey] = set()  # engines whose schema this process made ready
        self._lock_engines: dict[EngineKey, AsyncEngine] = {}
        self._storages: dict[tuple[str, str | None, str | None, str | None], Storage] = {}
        self._registries: dict[tuple[Any, ...], Registry] = {}
        self._ready_urls: set[str] = set()
        self._lanes = threading.local()
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

    def run_for(self, database_url: str, coro: Coroutine[Any, Any, T]) -> T:
        """``run`` a coroutine whose only database is ``database_url``: on this thread's lane
        when that is an SQLite file and no loop runs in this thread, else on the runtime loop.

        The coroutine takes its sessions and engine from ``sessions`` and ``engine`` as
        always; on a lane they are the lane's (see the module docstring).
        """
        lane = self._lane(database_url)
        if lane is None:
            return self.run(coro)
        return lane.loop.run_until_complete(coro)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the runtime loop without blocking the caller's loop."""
        if threading.current_thread() is self._thread:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # --- what lives on the loop -------------------------------------------------------------

    async def sessions(
        self, database_url: str, *, create_schema: bool = True
    ) -> async_sessionmaker[AsyncSession]:
        """Sessions on ``database_url``, whose schema is made ready once per process.

        One engine per URL and connection settings (LABOX_DB_*), so changed settings take
        effect on the next unit of work. With ``create_schema=False`` (reads, and commands
        that only delete) nothing is created or migrated: the Labox tables must exist, else
        DatabaseNotInitializedError (and an SQLite file that does not exist is not made).
        Must be awaited on the runtime loop (inside a coroutine given to run/arun).
        """
        return (await self._ready(database_url, create_schema))[1]

    async def engine(self, database_url: str) -> AsyncEngine:
        """The engine of ``database_url``, schema ready, for statements that need no ORM.

        Must be awaited on the runtime loop, like ``sessions``.
        """
        return (await self._ready(database_url))[0]

    async def _ready(
        self, database_url: str, create_schema: bool = True
    ) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
        settings = current_settings()
        key = _engine_key(database_url, settings)
        lane = self._running_lane()
        if lane is not None:
            return await self._lane_ready(lane, key)
        ready = self._sessions.get(key)
        if ready is not None and (key in self._prepared or not create_schema):
            return self._engines[key], ready
        lock = self._schema_locks.setdefault(key, asyncio.Lock())
        async with lock:
            ready = self._sessions.get(key)
            if ready is not None and (key in self._prepared or not create_schema):
                return self._engines[key], ready
            engine = self._engines.get(key)
            made = engine is None
            if engine is None:
                if not create_schema:
                    _require_database_file(database_url)  # connecting would create the file
                engine = _create_engine(database_url, settings)
            try:
                if create_schema:
                    await _prepare_schema(engine)
                else:
                    await _require_schema(engine, database_url)
            except BaseException:
                if made:
                    await engine.dispose()
                raise
            self._engines[key] = engine
            if ready is None:
                ready = self._sessions[key] = async_sessionmaker(engine, expire_on_commit=False)
            if create_schema:
                self._prepared.add(key)
                if _is_sqlite_file(database_url):
                    self._ready_urls.add(database_url)
            return engine, ready

    async def _lane_ready(
        self, lane: _Lane, key: EngineKey
    ) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
        """The lane's engine for ``key``'s SQLite file, once the runtime made its schema ready."""
        ready = lane.engines.get(key)
        if ready is None:
            database_url = key[0]
            if database_url not in self._ready_urls:
                made = asyncio.run_coroutine_threadsafe(self._ready(database_url), self._loop)
                await asyncio.wrap_future(made)
            engine = _create_engine(database_url, current_settings())
            ready = lane.engines[key] = (engine, async_sessionmaker(engine, expire_on_commit=False))
        return ready

    @asynccontextmanager
    async def write_session(self, database_url: str) -> AsyncIterator[AnySession]:
        """What a save on ``database_url`` writes through, for the time of one save.

        On a lane, the lane's own sync connection on its SQLite file, kept open from save
        to save (statements run inline, without SQLAlchemy's async layer or a session:
        see labox_prefect.core.sessions); a transaction the save left open is rolled back.
        Elsewhere an ``AsyncSession`` of ``sessions``. Entered like ``sessions`` is awaited.
        """
        lane = self._running_lane()
        if lane is None:
            async with (await self.sessions(database_url))() as session:
                yield session
            return
        connection = await self._lane_connection(lane, database_url)
        try:
            yield connection
        finally:
            if connection.in_transaction():
                connection.rollback()

    async def _lane_connection(self, lane: _Lane, database_url: str) -> Connection:
        key = _engine_key(database_url, current_settings())
        connection = lane.connections.get(key)
        if connection is None or connection.closed or connection.invalidated:
            await self._lane_ready(lane, key)  # the schema is ready from here on
            url = make_url(database_url).set(drivername="sqlite")
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _tune_sqlite)
            connection = lane.connections[key] = engine.connect()
        return connection

    def _lane(self, database_url: str) -> _Lane | None:
        """This thread's lane, for an SQLite file from a thread with no running loop."""
        if not _is_sqlite_file(database_url) or threading.current_thread() is self._thread:
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return None  # run_until_complete cannot nest: hand over instead
        return self._thread_lane()

    def _running_lane(self) -> _Lane | None:
        """This thread's lane when the running loop is the lane's (inside ``run_for``)."""
        lane: _Lane | None = getattr(self._lanes, "lane", None)
        return lane if lane is not None and asyncio.get_running_loop() is lane.loop else None

    def _thread_lane(self) -> _Lane:
        lane: _Lane | None = getattr(self._lanes, "lane", None)
        if lane is None:
            lane = self._lanes.lane = _Lane()
        return lane

    def sqlite_reader(self, database_url: str) -> sqlite3.Connection | None:
        """This thread's read-only sqlite3 connection on ``database_url``, an SQLite file whose
        schema this runtime made ready; None for any other database (or before that).

        For single-row lookups only, from any thread but the runtime's (see the module
        docstring); a connection lives as long as its thread.
        """
        if database_url not in self._ready_urls or threading.current_thread() is self._thread:
            return None
        lane = self._thread_lane()
        reader = lane.readers.get(database_url)
        if reader is None:
            path = Path(make_url(database_url).database or "").expanduser().resolve()
            reader = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            reader.execute("PRAGMA busy_timeout=30000")
            lane.readers[database_url] = reader
        return reader

    async def lock_engine(self, database_url: str) -> AsyncEngine:
        """An engine of ``database_url`` without a pool: each connect opens a connection of
        its own, closed with it (labox_prefect.locking holds one per lock it holds).

        Must be awaited on the runtime loop, like ``sessions``.
        """
        settings = current_settings()
        key = _engine_key(database_url, settings)
        engine = self._lock_engines.get(key)
        if engine is None:
            unpooled = settings.model_copy(update={"db_pool": "null"})
            engine = self._lock_engines[key] = _create_engine(database_url, unpooled)
        return engine

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
        engines = [*self._engines.values(), *self._lock_engines.values()]
        self._engines, self._lock_engines = {}, {}
        self._sessions.clear()
        self._prepared.clear()
        self._ready_urls.clear()
        await asyncio.gather(*(engine.dispose() for engine in engines), return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed


EngineKey = tuple[str, tuple[Any, ...]]
"""A database URL and the connection settings its engine was made with."""


class _Lane:
    """One thread's own loop and connections on SQLite files (see the module docstring)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engines: dict[EngineKey, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}
        self.connections: dict[EngineKey, Connection] = {}
        self.readers: dict[str, sqlite3.Connection] = {}
        weakref.finalize(self, self.loop.close)  # when its thread ends, or at exit


def _engine_key(database_url: str, settings: LaboxSettings) -> EngineKey:
    return database_url, (
        settings.db_pool,
        settings.db_pool_size,
        settings.db_max_overflow,
        settings.db_pool_timeout,
        settings.db_pool_pre_ping,
        settings.db_pool_recycle,
        settings.db_application_name,
        settings.db_connect_wait,
    )


def _create_engine(database_url: str, settings: LaboxSettings) -> AsyncEngine:
    """An engine sized by the LABOX_DB_* settings (a server database) or the inline SQLite one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, **server_engine_options(url, settings))
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_inline_engine(url)
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


@lru_cache(maxsize=64)  # asked on every run_for
def _is_sqlite_file(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def server_engine_options(url: URL, settings: LaboxSettings) -> dict[str, Any]:
    """``create_async_engine`` keywords for a server database, from the LABOX_DB_* settings.

    ``db_pool="null"`` gives SQLAlchemy's NullPool (a connection per unit of work, for
    PgBouncer); otherwise a queue pool of ``db_pool_size`` + ``db_max_overflow``
    connections at most. With asyncpg, every connection carries ``db_application_name``
    and waits while the server is at its connection limit (``connect_waiting``).
    """
    options: dict[str, Any] = {"pool_pre_ping": settings.db_pool_pre_ping}
    if settings.db_pool == "null":
        options["poolclass"] = NullPool
    else:
        options.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
        )
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "asyncpg":
        if "application_name" not in url.query:
            connect_args["server_settings"] = {"application_name": settings.db_application_name}
        connect_args["async_creator_fn"] = partial(connect_waiting, settings.db_connect_wait)
    elif url.get_driver_name().startswith("psycopg") and "application_name" not in url.query:
        connect_args["application_name"] = settings.db_application_name
    if connect_args:
        options["connect_args"] = connect_args
    return options


async def connect_waiting(wait: float, *args: Any, **kwargs: Any) -> Any:
    """``asyncpg.connect``, retried for up to ``wait`` seconds while the server answers
    "too many connections" (SQLSTATE 53300; PostgreSQL manual, appendix A).

    Waits 0.1 s, then twice as long each time, at most 2 s between tries; when ``wait`` runs
    out the last error is raised, and labox_prefect.core.connection's bounded retries (and
    its DatabaseUnavailableError) take over. SQLAlchemy's asyncpg dialect calls this in
    place of ``asyncpg.connect`` (its ``async_creator_fn`` connect argument;
    tests/integration/test_connections.py fails if that hook goes away).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = 0.1
    while True:
        try:
            return await asyncpg.connect(*args, **kwargs)
        except asyncpg.exceptions.TooManyConnectionsError as error:
            if loop.time() + pause > deadline:
                raise
            logger.info("database at its connection limit (%s); waiting %.1f s", error, pause)
            await asyncio.sleep(pause)
            pause = min(2 * pause, 2.0)


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


def _require_database_file(database_url: str) -> None:
    """DatabaseNotInitializedError for an SQLite file that does not exist (a read makes none)."""
    url = make_url(database_url)
    if not _is_sqlite_file(database_url) or url.database is None:
        return
    path = Path(url.database).expanduser()
    if not path.is_file():
        raise DatabaseNotInitializedError(
            f"No Labox database at {path}: nothing was saved there yet, or LABOX_DATABASE_URL "
            f"/ LABOX_HOME (or the block's database_url) names another file. Reading creates "
            f"nothing: the first labox_task run saving there creates it, or `labox-prefect db "
            f"upgrade`."
        )


async def _require_schema(engine: AsyncEngine, database_url: str) -> None:
    """DatabaseNotInitializedError unless the Labox tables exist (nothing is created)."""
    async with engine.connect() as connection:
        found = await connection.run_sync(
            lambda sync: [sa_inspect(sync).has_table(name) for name in LABOX_TABLES]
        )
    if not all(found):
        label = make_url(database_url).render_as_string(hide_password=True)
        raise DatabaseNotInitializedError(
            f"The database {label} has no Labox tables: nothing was saved there yet, or the "
            f"URL names another database. Reading creates nothing: run `labox-prefect db "
            f"upgrade` (it creates them), or save a result there first (a labox_task run)."
        )


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

__all__ = [
    "EngineKey",
    "Runtime",
    "connect_waiting",
    "get_runtime",
    "server_engine_options",
    "shutdown",
]
