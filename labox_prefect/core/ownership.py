"""Which databases write to a storage, and the proof garbage collection needs before deleting.

A storage may be shared: two databases (a Prefect results database and a user's own, say)
can save to one folder or bucket, and blobs are content-addressed, so one blob can back
records of both. A database can only ever see its own references, so a blob that looks
unreferenced from one database may be in use by another. Hence:

- before the first blob a process writes to a storage for a database, the saver records the
  database as an owner of the storage (``Storage.add_owner``, with the label of
  ``database_label``: no user name, password or query, so no credential is ever written);
- a blob is deleted only when the storage's owners are exactly the database whose
  references were read; otherwise ``require_sole_owner`` raises StorageOwnershipError
  naming the databases it cannot see.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import URL

from labox_prefect.core.errors import StorageOwnershipError
from labox_prefect.core.sessions import AnySession, session_bind
from labox_prefect.core.storage import Storage

_claimed: weakref.WeakKeyDictionary[Storage, set[str]] = weakref.WeakKeyDictionary()
"""Owners this process already recorded, per storage: one ``add_owner`` per process."""


@lru_cache(maxsize=64)  # every save asks it of its session's URL
def database_label(url: URL) -> str:
    """A database's identity without credentials: backend, host, port and database name.

    SQLite files are named by their absolute path. ``postgresql+asyncpg://u:p@h:5432/db``
    becomes ``postgresql://h:5432/db``; the driver, user, password and query are dropped.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ":memory:"
        if database != ":memory:":
            database = Path(database).expanduser().absolute().as_posix()
        return f"sqlite:///{database}"
    bare = URL.create(backend, host=url.host, port=url.port, database=url.database)
    return bare.render_as_string(hide_password=False)


def session_database(session: AnySession) -> str:
    """The label of the database a session (or connection) works on."""
    return database_label(session_bind(session).engine.url)


async def claim(storage: Storage, database: str) -> None:
    """Record ``database`` as an owner of ``storage``, once per process."""
    seen = _claimed.setdefault(storage, set())
    if database in seen:
        return
    await storage.add_owner(database)
    seen.add(database)


async def require_sole_owner(
    storage: Storage, database: str, *, ignoring: Collection[str] = ()
) -> None:
    """Raise StorageOwnershipError unless ``database`` is the only recorded owner of ``storage``.

    ``ignoring``: owners to disregard (databases that no longer exist, being forgotten).
    """
    listed = await storage.list_owners()
    owners = None if listed is None else [owner for owner in listed if owner not in ignoring]
    fix = (
        "Collect garbage from a process that sees every database using this storage, or give "
        "each database a storage of its own; if a database named here no longer exists, "
        "forget it with forget_owners=[label] (CLI: --forget-owner LABEL); pass claim=True "
        "(CLI: --claim) once if you know that no other database uses it."
    )
    if owners is None:
        raise StorageOwnershipError(
            f"{storage.name}: this storage cannot record which databases use it, so no blob "
            f"of it can be proven unused by {database}. Nothing was deleted. {fix}"
        )
    others = sorted(set(owners) - {database})
    if others:
        raise StorageOwnershipError(
            f"{storage.name}: the database(s) {', '.join(others)} also write to this storage "
            f"and are not visible from {database}, so a blob unreferenced here may be in use "
            f"there. Nothing was deleted. {fix}"
        )
    if not owners:
        raise StorageOwnershipError(
            f"{storage.name}: no database has recorded itself as an owner of this storage (its "
            f"blobs predate owner markers), so blobs unreferenced by {database} may belong to "
            f"another database. Nothing was deleted. {fix}"
        )


__all__ = ["claim", "database_label", "require_sole_owner", "session_database"]
