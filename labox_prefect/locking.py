"""A Prefect lock manager backed by the Labox database, for ``isolation_level="SERIALIZABLE"``.

With ``cache_policy=INPUTS.configure(lock_manager=LaboxLockManager(),
isolation_level="SERIALIZABLE")`` a task run's transaction takes the lock of its cache key
before it looks for a cached result (``prefect.transactions.Transaction.begin``), and lets it
go after it wrote its record. So of N identical cache misses started together, on any
workers and machines that share the Labox database, one computes and the others wait, then
find its record: one computation, one record.

Where the lock lives follows the target of the results (labox_prefect.target): the
running task's Labox block, else the saved ``default`` block, else the environment.

- **PostgreSQL**: a session-level advisory lock (``pg_advisory_lock(bigint)``, manual section
  "Advisory Lock Functions") on the first 8 bytes of ``sha256("labox-prefect:" + key)``,
  taken on a connection of its own that is held, outside any pool, while the lock is held
  (so a lock costs one connection while it is held). When the holder's process dies, the
  server closes that connection and releases the lock.
- **SQLite**: an exclusive ``flock`` on a file per key in the folder ``<database>.locks``
  next to the database file; the operating system releases it when the holder's process
  dies. Lock files are kept (removing one could let two holders lock two different files).

Timeouts: ``acquire_timeout`` (seconds; None waits as long as the holder holds; 0 tries once)
and ``hold_timeout`` (seconds; None holds until released) come from the call, else from this
manager's defaults. Prefect's transactions pass neither. When a hold timeout expires, the lock
is released and the holder's later ``release_lock`` is a no-op (logged as a warning).
Prefect ignores a failed acquisition: the run then goes on unlocked, as without a lock
manager.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prefect.locking.protocol import LockManager
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from labox_prefect.core.connection import retrying, sqlstate
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target, TargetBlock, aresolve_target, resolve_target

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
"""Seconds between two tries of a file lock (SQLite targets) while waiting for it."""

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL manual, appendix A: lock_not_available


def advisory_key(key: str) -> int:
    """The signed 64-bit PostgreSQL advisory lock key of a Prefect transaction key."""
    digest = hashlib.sha256(f"labox-prefect:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Handle(Protocol):
    async def release(self) -> None: ...


class _Backend(Protocol):
    async def acquire(self, key: str, within: float | None) -> _Handle | None: ...

    async def is_locked(self, key: str) -> bool: ...

    async def wait(self, key: str, within: float | None) -> bool: ...


# --- PostgreSQL: advisory locks on connections of their own ---------------------------------


@dataclass
class _AdvisoryHandle:
    connection: AsyncConnection
    lock_key: int

    async def release(self) -> None:
        try:
            await self.connection.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_key}
            )
        finally:
            await self.connection.close()  # closing alone releases it too


class _AdvisoryLocks:
    def __init__(self, database_url: str, label: str) -> None:
        self._url = database_url
        self._label = label

    async def _connect(self) -> AsyncConnection:
        engine = await get_runtime().lock_engine(self._url)

        async def connect() -> AsyncConnection:
            return await engine.connect()

        async def nothing() -> None:
            return None

        return await retrying(connect, database=self._label, reset=nothing)

    async def _lock(
        self, connection: AsyncConnection, function: str, lock_key: int, within: float | None
    ) -> bool:
        """Run ``function`` (pg_advisory_lock or its shared twin), waiting ``within`` seconds."""
        if within is not None and within <= 0:
            tried = await connection.execute(
                text(f"SELECT pg_try_{function.removeprefix('pg_')}(:k)"), {"k": lock_key}
            )
            return bool(tried.scalar())
        milliseconds = "0" if within is None else str(max(1, round(within * 1000)))
        await connection.execute(
            text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": milliseconds}
        )
        try:
            await connection.execute(text(f"SELECT {function}(:k)"), {"k": lock_key})
        except DBAPIError as error:
            if sqlstate(error) == _LOCK_NOT_AVAILABLE:
                return False
            raise
        return True

    async def acquire(self, key: str, within: float | None) -> _Handle | None:
        lock_key = advisory_key(key)
        connection = await self._connect()
        try:
            if await self._lock(connection, "pg_advisory_lock", lock_key, within):
                await connection.commit()  # a session lock outlives it; no transaction idles
                return _AdvisoryHandle(connection, lock_key)
        except BaseException:
            await connection.close()
            raise
        await connection.close()
        return None

    async def is_locked(self, key: str) -> bool:
        lock_key = advisory_key(key) & 0xFFFFFFFFFFFFFFFF
        engine = await get_runtime().engine(self._url)
        async with engine.connect() as connection:
            found = await connection.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1)"
                ),
                {"hi": lock_key >> 32, "lo": lock_key & 0xFFFFFFFF},
            )
            return bool(found.scalar())

    async def wait(self, key: str, within: float | None) -> bool:
        lock_key = advisory_key(key)
        connection = await self._connect()
        try:
            free = await self._lock(connection, "pg_advisory_lock_shared", lock_key, within)
            if free:
                await connection.execute(
                    text("SELECT pg_advisory_unlock_shared(:k)"), {"k": lock_key}
                )
            return free
        finally:
            await connection.close()


# --- SQLite: file locks next to the database ------------------------------------------------


@dataclass
class _FileHandle:
    descriptor: int

    async def release(self) -> None:
        os.close(self.descriptor)  # closing the file releases its flock


class _FileLocks:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def _open(self, key: str) -> int:
        self._folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:40] + ".lock"
        return os.open(self._folder / name, os.O_RDWR | os.O_CREAT, 0o644)

    async def _flock(self, descriptor: int, operation: int, within: float | None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            try:
                fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if deadline is not None and loop.time() >= deadline:
                    return False
                await asyncio.sleep(POLL_INTERVAL)

    async def acquire(self, key: str, within: float | None) -> _Handle | None:
        descriptor = self._open(key)
        try:
            if await self._flock(descriptor, fcntl.LOCK_EX, within):
                return _FileHandle(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
        return None

    async def is_locked(self, key: str) -> bool:
        return not await self.wait(key, 0)

    async def wait(self, key: str, within: float | None) -> bool:
        descriptor = self._open(key)
        try:
            return await self._flock(descriptor, fcntl.LOCK_SH, within)
        finally:
            os.close(descriptor)


def _file_lock_folder(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return Path(tempfile.gettempdir()) / "labox-prefect-locks" / str(os.getpid())
    return Path(database).expanduser().absolute().with_name(Path(database).name + ".locks")


# --- the lock manager -----------------------------------------------------------------------


@dataclass
class _Held:
    holder: str
    handle: _Handle
    expiry: asyncio.TimerHandle | None = None


class LaboxLockManager(LockManager):
    """Prefect's ``LockManager`` on the Labox database of the results' target.

    ``block``: where the locks live, as ``find_results`` takes it (a saved block's name, a
    LaboxResultStorage, a Target), or None for the results' own target at each call.
    ``acquire_timeout`` / ``hold_timeout``: seconds used when a call gives none (see the
    module docstring). Safe to share between threads, flows and task runs; one instance per
    process is enough.
    """

    def __init__(
        self,
        block: str | TargetBlock | Target | None = None,
        *,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> None:
        self.block = block
        self.acquire_timeout = acquire_timeout
        self.hold_timeout = hold_timeout
        self._held: dict[str, _Held] = {}
        self._mutex = threading.Lock()
        self._backends: dict[str, _Backend] = {}
        self._expiring: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return (
            f"LaboxLockManager(block={self.block!r}, acquire_timeout={self.acquire_timeout!r}, "
            f"hold_timeout={self.hold_timeout!r})"
        )

    # --- Prefect's LockManager ---------------------------------------------------------------

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock of ``key`` for ``holder``; False when ``acquire_timeout`` ran out."""
        backend = self._backend(resolve_target(self.block))
        return get_runtime().run(self._acquire(backend, key, holder, acquire_timeout, hold_timeout))

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        backend = self._backend(await aresolve_target(self.block))
        return await get_runtime().arun(
            self._acquire(backend, key, holder, acquire_timeout, hold_timeout)
        )

    def release_lock(self, key: str, holder: str) -> None:
        """Let ``holder``'s lock of ``key`` go.

        A lock ``holder`` does not hold (its hold timeout ran out, and maybe another holder
        took it since) is left alone, with a warning: the holder's work is done by then, and
        failing its run would not undo anything.
        """
        with self._mutex:
            held = self._held.get(key)
        if held is None or held.holder != holder:
            logger.warning(
                "lock %r is not held by %r (its hold timeout ran out?): nothing to release",
                key,
                holder,
            )
            return
        get_runtime().run(self._release(key, held))

    def is_locked(self, key: str) -> bool:
        """Whether any holder, in any process on the database, holds the lock of ``key``."""
        if key in self._held:
            return True
        backend = self._backend(resolve_target(self.block))
        return get_runtime().run(backend.is_locked(key))

    def is_lock_holder(self, key: str, holder: str) -> bool:
        held = self._held.get(key)
        return held is not None and held.holder == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until the lock of ``key`` is free; False when ``timeout`` (s) ran out."""
        backend = self._backend(resolve_target(self.block))
        return get_runtime().run(backend.wait(key, timeout))

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        backend = self._backend(await aresolve_target(self.block))
        return await get_runtime().arun(backend.wait(key, timeout))

    # --- on the runtime loop -----------------------------------------------------------------

    async def _acquire(
        self,
        backend: _Backend,
        key: str,
        holder: str,
        acquire_timeout: float | None,
        hold_timeout: float | None,
    ) -> bool:
        with self._mutex:
            held = self._held.get(key)
        if held is not None and held.holder == holder:
            return True
        timeout = self.acquire_timeout if acquire_timeout is None else acquire_timeout
        handle = await backend.acquire(key, timeout)
        if handle is None:
            return False
        entry = _Held(holder, handle)
        hold = self.hold_timeout if hold_timeout is None else hold_timeout
        if hold is not None:
            entry.expiry = asyncio.get_running_loop().call_later(hold, self._expire, key, entry)
        with self._mutex:
            self._held[key] = entry
        return True

    async def _release(self, key: str, held: _Held) -> None:
        with self._mutex:
            if self._held.get(key) is not held:
                return  # released already (its hold timeout ran out)
            del self._held[key]
        if held.expiry is not None:
            held.expiry.cancel()
        await held.handle.release()

    def _expire(self, key: str, held: _Held) -> None:
        logger.warning("lock %r of %r released: its hold timeout ran out", key, held.holder)
        release = asyncio.ensure_future(self._release(key, held))
        self._expiring.add(release)  # kept until done, so it is not collected midway
        release.add_done_callback(self._expiring.discard)

    def _backend(self, target: Target) -> _Backend:
        with self._mutex:
            backend = self._backends.get(target.database_url)
            if backend is None:
                url = target.database_url
                if make_url(url).get_backend_name() == "sqlite":
                    backend = _FileLocks(_file_lock_folder(url))
                else:
                    backend = _AdvisoryLocks(url, target.database_label)
                self._backends[url] = backend
            return backend


__all__ = ["POLL_INTERVAL", "LaboxLockManager", "advisory_key"]
