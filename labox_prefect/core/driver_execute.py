"""One INSERT of one row on a sync SQLite ``Connection``, sent straight to the driver's cursor.

A save through a sync ``Connection`` (labox_prefect.core.sessions) writes a few single-row
INSERTs, and on an SQLite file each costs SQLite tens of microseconds. SQLAlchemy's
``Connection.execute`` around each costs about as much again: the statement's cache key,
an execution context, a result object. Here the statement is compiled once per set of
columns and dialect in each thread (SQLAlchemy's own compiler) and its parameters are
converted by SQLAlchemy's own bind processors of each column's type, so a row is stored
exactly as ``Connection.execute`` stores it; only the execution around the cursor is
skipped. Measured in a flow of 200 small results (bench/prefect_flow.py's flow, thread
CPU clocks): the INSERT calls took 82 ms of the task thread's CPU per flow, SQLite's own
work included, and take 58 ms.

Skipped with it: the engine's ``before_cursor_execute`` / ``after_cursor_execute`` events
for these statements. A driver error is raised as SQLAlchemy raises it
(``sqlalchemy.exc.DBAPIError.instance``: an ``IntegrityError`` for a duplicate key, an
``OperationalError`` for a locked database), within the connection's transaction, which
the caller commits or rolls back as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


@dataclass(frozen=True)
class _Prepared:
    """A compiled single-row statement: its SQL and, per positional parameter, its column's
    name and bind processor (None: the value is sent as is)."""

    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            row[name] if process is None else process(row[name]) for name, process in self.binds
        )


PREPARED_PER_THREAD = 64
"""Compiled statements a thread keeps (the saver's are three per database); past it they
are dropped and compiled again when used."""

_threads = threading.local()


def _prepared_for(
    statement: ClauseElement, dialect: Dialect, columns: frozenset[str]
) -> _Prepared | None:
    """``_prepare``, once per statement, dialect and column set in each thread.

    Kept per thread: a thread's lane on the embedded database has its own engines, so its
    own dialects, and what it compiled goes when the thread ends (a compiled statement's
    bind processors hold its dialect, so a table keyed by the dialect would keep it alive).
    """
    kept: dict[tuple[ClauseElement, Dialect, frozenset[str]], _Prepared | None]
    kept = _threads.__dict__.setdefault("prepared", {})
    key = (statement, dialect, columns)
    if key not in kept:
        if len(kept) >= PREPARED_PER_THREAD:
            kept.clear()
        kept[key] = _prepare(statement, dialect, columns)
    return kept[key]


def _prepare(
    statement: ClauseElement, dialect: Dialect, columns: frozenset[str]
) -> _Prepared | None:
    """``statement`` compiled for ``columns``; None when it needs more than its parameters
    (a Python-side default, RETURNING, an escaped or missing name): SQLAlchemy runs those."""
    compiled = statement.compile(dialect=dialect, column_keys=sorted(columns))
    if (
        not isinstance(compiled, SQLCompiler)
        or not compiled.positional
        or compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.effective_returning
        or compiled.escaped_bind_names
        or not set(compiled.positiontup) <= columns
    ):
        return None
    binds = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup
    )
    return _Prepared(compiled.string, binds)


def execute_row(connection: Connection, statement: Executable, row: Mapping[str, Any]) -> None:
    """Execute ``statement`` with one row's parameters in ``connection``'s transaction
    (begun if none is), on the driver's cursor when the connection is on SQLite and the
    statement needs nothing but the row (no Python-side default, no RETURNING, no schema
    translation); else through ``connection.execute``.

    Raises what ``connection.execute`` raises for the same statement: a
    ``sqlalchemy.exc.DBAPIError`` subclass wrapping the driver's error.
    """
    dialect = connection.dialect
    prepared = (
        _prepared_for(statement, dialect, frozenset(row))
        if dialect.name == "sqlite"
        and isinstance(statement, ClauseElement)
        and "schema_translate_map" not in connection.get_execution_options()
        else None
    )
    if prepared is None:
        connection.execute(statement, row)
        return
    values = prepared.values(row)
    if not connection.in_transaction():
        connection.begin()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(prepared.sql, values)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            prepared.sql, values, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    finally:
        cursor.close()


__all__ = ["execute_row"]
