"""What a save writes through: SQLAlchemy's ``AsyncSession``, its sync ``Session``, or a sync
``Connection``.

Saving is a coroutine either way. With a sync ``Session`` or ``Connection`` each statement
runs inline, blocking the event loop while it runs. That is meant for an SQLite file used
from one thread, where a statement costs microseconds and SQLAlchemy's async layer (a
greenlet switch and an awaited driver call for every DBAPI call) costs more than the
statement itself: a small save through an ``AsyncSession`` on SQLite spends about half its
time there. A ``Connection`` kept open by its caller costs less again than a ``Session``
per save (no session to make, no pool check-out, check-in and reset): its transaction
begins with the first statement and ends with the commit or rollback. Loading and queries
take an ``AsyncSession`` only. On a ``Connection`` to SQLite, a single row's INSERT goes
straight to the driver's cursor (labox_prefect.core.driver_execute).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Executable
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from labox_prefect.core.driver_execute import execute_row

AnySession = AsyncSession | Session | Connection
"""What a save accepts to write through."""


def session_bind(session: AnySession) -> Engine | Connection:
    """The engine or connection ``session`` works on (``.engine.url`` and ``.dialect`` name
    its database)."""
    if isinstance(session, Connection):
        return session
    bind = session.get_bind()
    assert isinstance(bind, Engine | Connection)
    return bind


async def execute_in_session(
    session: AnySession, statement: Executable, parameters: Any = None
) -> None:
    """Execute ``statement`` in the session's transaction, on its connection (not through
    the ORM's execution layer, which costs more than a small INSERT); the caller commits.

    ``parameters``: a dict, or a list of dicts for an executemany.
    """
    if isinstance(session, AsyncSession):
        connection = await session.connection()
        await connection.execute(statement, parameters)
    elif isinstance(session, Connection):
        if isinstance(parameters, dict):
            execute_row(session, statement, parameters)
        else:
            session.execute(statement, parameters)
    else:
        session.connection().execute(statement, parameters)


async def scalar_in_session(session: AnySession, statement: Executable) -> Any:
    """The first column of the first row of ``statement``, or None."""
    if isinstance(session, AsyncSession):
        return await session.scalar(statement)
    return session.scalar(statement)


async def commit_session(session: AnySession) -> None:
    if isinstance(session, AsyncSession):
        await session.commit()
    else:
        session.commit()


async def rollback_session(session: AnySession) -> None:
    if isinstance(session, AsyncSession):
        await session.rollback()
    else:
        session.rollback()


__all__ = [
    "AnySession",
    "commit_session",
    "execute_in_session",
    "rollback_session",
    "scalar_in_session",
    "session_bind",
]
