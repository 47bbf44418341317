"""SQLite connections whose calls run inline on the runtime loop, not on a thread per call.

aiosqlite runs every sqlite3 call on its connection's worker thread and hands the result back
to the loop: two thread switches per call, and SQLAlchemy makes several calls per statement
(cursor, execute, fetch, close, commit). For a small result that was most of its cost (a key
lookup took about 1 ms where sqlite3 itself takes microseconds), and more inside a flow, where
each switch also waits for Prefect's threads to hand over the GIL. Calls on a local SQLite
file are short, so here they run inline on the runtime loop, which only the runtime's own
coroutines share; calls on one connection never overlap because each is awaited.

The worker thread still opens and closes the connection (and sets an isolation level when
SQLAlchemy asks), so the sqlite3 connection is made with ``check_same_thread=False``, as
SQLAlchemy's aiosqlite dialect makes it anyway. The price: while SQLite waits for another
process's write lock (``busy_timeout``), the runtime loop waits too, instead of only the
coroutine that asked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call in the awaiting thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def create_inline_engine(url: URL) -> AsyncEngine:
    """An async SQLite engine (``sqlite+aiosqlite`` URL) on inline connections."""
    engine: AsyncEngine | None = None

    async def connect() -> aiosqlite.Connection:
        assert engine is not None
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        connection = InlineConnection(partial(sqlite3.connect, *args, **kwargs), 64)
        connection._thread.daemon = True  # as SQLAlchemy does: never hold up interpreter exit
        return await connection

    engine = create_async_engine(url, async_creator=connect)
    return engine


__all__ = ["InlineConnection", "create_inline_engine"]
