"""SQLite connections whose calls run inline in the awaiting thread, with no worker thread.

aiosqlite runs every sqlite3 call on its connection's worker thread and hands the result back
to the loop: two thread switches per call, and SQLAlchemy makes several calls per statement
(cursor, execute, fetch, close, commit). For a small result that was most of its cost (a key
lookup took about 1 ms where sqlite3 itself takes microseconds), and more inside a flow, where
each switch also waits for Prefect's threads to hand over the GIL. Calls on a local SQLite
file are short, so here they run inline: connecting, every statement and closing. Calls on
one connection never overlap, because each is awaited and a connection is used by one loop
(labox_prefect.runtime gives each loop engines of its own).

With no worker thread, nothing binds a connection to a loop or keeps it alive: one that is
dropped unclosed (its engine dropped with the thread that used it) is closed by sqlite3 when
it is collected. The sqlite3 connection is made with ``check_same_thread=False``, as
SQLAlchemy's aiosqlite dialect makes it anyway, since collection may happen in any thread.
The price: while SQLite waits for another writer's lock (``busy_timeout``), the awaiting
loop waits too, instead of only the coroutine that asked.

This subclasses ``aiosqlite.Connection`` and replaces its hand-over points (``_execute``,
connecting, ``stop``); tests/integration/test_runtime.py fails if aiosqlite changes them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call in the awaiting thread (no worker thread)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect_inline().__await__()

    async def _connect_inline(self) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def stop(self) -> asyncio.Future[Any] | None:
        """Close the sqlite3 connection now (there is no worker thread to stop)."""
        self._running = False
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        return None

    def __del__(self) -> None:
        self.stop()


def create_inline_engine(url: URL) -> AsyncEngine:
    """An async SQLite engine (``sqlite+aiosqlite`` URL) on inline connections."""
    engine: AsyncEngine | None = None

    async def connect() -> aiosqlite.Connection:
        assert engine is not None
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        return await InlineConnection(partial(sqlite3.connect, *args, **kwargs), 64)

    engine = create_async_engine(url, async_creator=connect)
    return engine


__all__ = ["InlineConnection", "create_inline_engine"]
