"""The storage a registry made without ``default_storage`` saves to: one per database.

A registry reads no environment and picks no folder. When it has no default storage, the
saver, loader and maintenance functions bind it to the database of their session:

- a SQLite file ``/path/mine.db`` gets ``FileStorage("/path/mine.db-blobs")`` (named
  ``labox.file@v1``), a sidecar folder like SQLite's own ``-wal`` file: the blobs of a
  database live beside it, and two databases never share a folder unless told to;
- any other database (PostgreSQL, in-memory SQLite) gets none: saving a content that does
  not fit in its record raises StorageNotConfiguredError naming the fix (pass
  ``Registry(default_storage=...)``). Small JSON bodies still go into their records.
"""

from __future__ import annotations

import os
import weakref
from functools import lru_cache
from pathlib import Path

from labox_prefect.core.registry import Registry
from labox_prefect.core.sessions import AnySession, session_bind

SIDECAR_SUFFIX = "-blobs"
"""Appended to a SQLite database file's name to name its blob folder."""

_bound: weakref.WeakKeyDictionary[Registry, dict[str, Registry]] = weakref.WeakKeyDictionary()


def registry_for_session(registry: Registry, session: AnySession) -> Registry:
    """``registry`` if it has a default storage, else its binding to the session's database."""
    if registry.has_default_storage:
        return registry
    url = session_bind(session).engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return registry
    if not os.path.isabs(database):  # relative to the working directory, or to ~
        database = Path(database).expanduser().absolute().as_posix()
    folder = _sidecar_folder(database)
    bindings = _bound.setdefault(registry, {})
    bound = bindings.get(folder)
    if bound is None:
        from labox_prefect.core.builtin.storages.file import FileStorage  # a battery, on demand

        bound = bindings[folder] = registry.with_default_storage(FileStorage(folder))
    return bound


@lru_cache(maxsize=64)  # every save asks it of its session's database
def _sidecar_folder(database: str) -> str:
    """The blob folder beside the SQLite file at the absolute path ``database``."""
    path = Path(database)
    return path.with_name(path.name + SIDECAR_SUFFIX).as_posix()


__all__ = ["SIDECAR_SUFFIX", "registry_for_session"]
