"""Database failures a user can meet, as LaboxErrors, and bounded retries of transient ones.

A closed connection (a restarted server, a terminated backend, a pooled connection that
died while idle), a refused or timed-out connect, or a server at its connection limit is
*transient*: the same statement may succeed a moment later on a fresh connection. Such
failures are retried ``MAX_ATTEMPTS`` times in all, waiting ``BACKOFF`` seconds times four
per attempt, each time after a rollback (which also returns the dead connection to the
pool as invalid, so the next attempt reconnects); then they raise DatabaseUnavailableError
naming the database and the fix. Every other database error is left as it is.

PostgreSQL's SQLSTATE codes come from its manual, appendix A "PostgreSQL Error Codes":
class 08 (connection exception), 53300 (too_many_connections), 57P01-57P03 (admin or crash
shutdown, cannot connect now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from labox_prefect.core.errors import DatabaseUnavailableError, LaboxError

T = TypeVar("T")

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Tries of one unit of work when the database fails transiently (so two retries)."""

BACKOFF = 0.2
"""Seconds before the first retry; each next wait is four times longer (0.2 s, 0.8 s)."""

_TRANSIENT_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})
_CLOSED_MESSAGES = ("connection is closed", "connection was closed", "connection refused")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the connection failed, not the statement."""
    if isinstance(error, LaboxError):
        return False  # already explained (a storage that is down is not the database)
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    chain = [error, *_causes(error)]
    for link in chain:
        state = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if isinstance(state, str) and (state.startswith("08") or state in _TRANSIENT_SQLSTATES):
            return True
        if isinstance(link, ConnectionError | TimeoutError):
            return True
    if isinstance(error, InterfaceError | OperationalError):
        text = str(error).lower()
        return any(message in text for message in _CLOSED_MESSAGES)
    return False


def unavailable(error: BaseException, database: str) -> DatabaseUnavailableError:
    """The LaboxError for a transient failure that outlived its retries."""
    state = sqlstate(error)
    if state == "53300":
        problem = "refuses new connections: it is at its connection limit"
        fix = (
            "lower the number of concurrent workers or the pool size, or raise the server's "
            "max_connections; the work can be retried as it is"
        )
    else:
        problem = "cannot be reached or closed the connection"
        fix = "check that the server runs and the URL, network and credentials are right"
    cause = getattr(error, "orig", None) or error
    return DatabaseUnavailableError(
        f"The database {database} {problem} ({type(cause).__name__}: "
        f"{_first_line(str(cause))}), after {MAX_ATTEMPTS} attempts; {fix}. Nothing of "
        f"this unit of work was committed."
    )


async def retrying(
    work: Callable[[], Awaitable[T]],
    *,
    database: str,
    reset: Callable[[], Awaitable[None]],
) -> T:
    """Run ``work``; on a transient failure, ``reset()`` (a rollback) and try again."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await work()
        except Exception as error:
            if not is_transient(error):
                raise
            try:
                await reset()
            except Exception as reset_error:  # the connection is gone: the pool replaces it
                logger.debug("reset after a transient failure failed: %r", reset_error)
            if attempt == MAX_ATTEMPTS:
                raise unavailable(error, database) from error
            logger.warning(
                "database %s failed transiently (%s); retry %d of %d",
                database,
                type(error).__name__,
                attempt,
                MAX_ATTEMPTS - 1,
            )
            await asyncio.sleep(BACKOFF * 4 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    link = getattr(error, "orig", None) or error.__cause__
    while link is not None and len(found) < 5:
        found.append(link)
        link = link.__cause__ or link.__context__
    return found


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE code of a database error (or of the driver error it wraps), if any."""
    for link in [error, *_causes(error)]:
        state = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


__all__ = ["BACKOFF", "MAX_ATTEMPTS", "is_transient", "retrying", "sqlstate", "unavailable"]
