"""Where results go and are read from: a ``Target`` (one database, one blob storage).

One rule, for saving and reading alike (``labox_task``, ``LaboxSerializer``,
``find_results``, ``ResultRef``, the CLI), first match wins:

1. code: a block given explicitly (``find_results(block="name")``, ``labox-prefect --block
   NAME``, a ``LaboxResultStorage`` passed as a task's or flow's ``result_storage``);
2. the running task's or flow's result storage, when it is a ``LaboxResultStorage``;
3. the saved ``LaboxResultStorage`` block named ``default``, when one exists (``labox_task``
   saves it on first use, with empty fields) and a Prefect API is configured
   (``PREFECT_API_URL``): without one, asking would start Prefect's ephemeral server, which
   costs a reader (the CLI, a notebook) seconds, so readers there go on to rule 4;
4. the ``LABOX_*`` environment (labox_prefect.settings).

A block's empty field means the environment's value, so one saved block serves machines
configured by environment. The registry modules are not part of a target: see
``labox_prefect.persistence.registry_modules``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import get_current_settings
from pydantic import SecretStr
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from labox_prefect.core import Storage
from labox_prefect.core.builtin import FileStorage, MemoryStorage, S3Storage
from labox_prefect.errors import InvalidSettingError, ResultTargetError
from labox_prefect.pointer import BLOCK_TYPE_SLUG
from labox_prefect.settings import LaboxSettings, current_settings

DEFAULT_BLOCK_NAME = "default"
"""The block ``labox_task`` saves when no result storage is given, and readers look for."""


ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
"""The SQLAlchemy async driver labox-prefect ships and runs on, by database."""


def database_url_problem(url: str) -> str | None:
    """What is wrong with a database URL, as one sentence naming the fix; None if nothing.

    Labox talks to its database through SQLAlchemy's asyncio extension, which needs an async
    driver in the URL (``postgresql+asyncpg://``, ``sqlite+aiosqlite:///``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return (
            "The database URL cannot be parsed; write it as "
            "postgresql+asyncpg://user:password@host/database or sqlite+aiosqlite:///path "
            "(LABOX_DATABASE_URL or the block's database_url)."
        )
    backend = parsed.get_backend_name()
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        return (
            f"{backend!r} databases are not supported; use PostgreSQL "
            f"(postgresql+asyncpg://...) or SQLite (sqlite+aiosqlite:///...) in "
            f"LABOX_DATABASE_URL or the block's database_url."
        )
    if parsed.drivername != f"{backend}+{driver}":
        fixed = parsed.set(drivername=f"{backend}+{driver}")
        return (
            f"The database URL {parsed.render_as_string(hide_password=True)} names no async "
            f"driver; write {fixed.render_as_string(hide_password=True)} "
            f"(LABOX_DATABASE_URL or the block's database_url)."
        )
    return None


STORAGE_SCHEMES = ("s3", "file", "memory")
"""The URL schemes a storage URL may have (or none: a folder path)."""


def storage_url_problem(url: str) -> str | None:
    """What is wrong with a storage URL, as one sentence naming the fix; None if nothing.

    A storage URL is a folder path, ``file:///folder``, ``s3://bucket/prefix`` or
    ``memory://``. The message names the scheme only: the URL may hold a password.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in STORAGE_SCHEMES or len(scheme) <= 1:  # a one-letter "scheme" is a drive
        return None
    return (
        f"The storage URL's scheme {scheme!r} is not one Labox stores to; use a folder path, "
        f"file:///folder, s3://bucket/prefix or memory:// (LABOX_STORAGE_URL or the block's "
        f"storage_url)."
    )


@dataclass(frozen=True)
class Target:
    """Where results are saved: one database and one blob storage (and its credentials).

    Secrets never appear in a repr; ``database_label`` names the database without them.
    """

    database_url: str = field(repr=False)
    storage_url: str
    s3_endpoint_url: str | None = None
    s3_key: str | None = field(default=None, repr=False)
    s3_secret: str | None = field(default=None, repr=False)

    @cached_property
    def database_label(self) -> str:
        """The database URL with its password hidden: safe for records, logs and errors."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @classmethod
    def from_settings(cls, settings: LaboxSettings | None = None) -> Target:
        """The environment's target (rule 4)."""
        settings = settings or current_settings()
        return remember(
            _made(
                settings.resolved_database_url(),
                settings.resolved_storage_url(),
                settings.s3_endpoint_url,
            )
        )

    def storage(self) -> Storage:
        """The core storage the storage URL names: a folder, ``s3://bucket/prefix``, ``memory://``.

        Raises InvalidSettingError for a URL of another scheme (``storage_url_problem``).
        """
        url = self.storage_url
        problem = storage_url_problem(url)
        if problem is not None:
            raise InvalidSettingError(problem)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "s3":
            return S3Storage(
                parts.netloc,
                parts.path.strip("/"),
                endpoint_url=self.s3_endpoint_url,
                key=self.s3_key,
                secret=self.s3_secret,
            )
        if scheme == "memory":
            return MemoryStorage()
        if scheme == "file":
            return FileStorage(parts.path)
        return FileStorage(url)


class TargetBlock(Protocol):
    """The fields of a LaboxResultStorage block (None: the environment's value)."""

    database_url: SecretStr | None
    storage_url: str | None
    s3_endpoint_url: str | None
    aws_access_key_id: SecretStr | None
    aws_secret_access_key: SecretStr | None


def target_of_block(block: TargetBlock) -> Target:
    """Where ``block`` stores results, with empty fields filled from the environment."""
    settings = current_settings()
    return remember(
        _made(
            _secret(block.database_url) or settings.resolved_database_url(),
            block.storage_url or settings.resolved_storage_url(),
            block.s3_endpoint_url or settings.s3_endpoint_url,
            _secret(block.aws_access_key_id),
            _secret(block.aws_secret_access_key),
        )
    )


@lru_cache(maxsize=256)
def _made(
    database_url: str,
    storage_url: str,
    s3_endpoint_url: str | None = None,
    s3_key: str | None = None,
    s3_secret: str | None = None,
) -> Target:
    """One Target per set of fields, so its database label is rendered once per process
    (every task run resolves its target, some several times)."""
    return Target(database_url, storage_url, s3_endpoint_url, s3_key, s3_secret)


def is_labox_block(storage: object) -> bool:
    """Whether ``storage`` is a LaboxResultStorage (known by its Prefect block type slug)."""
    return getattr(type(storage), "_block_type_slug", None) == BLOCK_TYPE_SLUG


def run_block() -> TargetBlock | None:
    """The running task's (else flow's) result storage, if it is a LaboxResultStorage."""
    for context in (TaskRunContext.get(), FlowRunContext.get()):
        storage = getattr(getattr(context, "result_store", None), "result_storage", None)
        if is_labox_block(storage):
            return cast(TargetBlock, storage)
    return None


def is_embedded_default(target: Target) -> bool:
    """Whether ``target`` saves to the embedded default: no LABOX_DATABASE_URL is set, and
    its database is the SQLite file under LABOX_HOME."""
    settings = current_settings()
    return not settings.database_url and target.database_url == settings.resolved_database_url()


def resolve_target(block: str | TargetBlock | Target | None = None) -> Target:
    """The target by the module's rule: ``block`` (a saved block's name, a block, or a
    Target as it is), the running task's or flow's Labox block, the saved ``default`` block,
    the environment.

    Raises ResultTargetError when a named block does not exist or is not a Labox block.
    """
    if isinstance(block, Target):
        return block
    if isinstance(block, str):
        return target_of_block(load_block(block))
    chosen = block if block is not None else run_block()
    if chosen is None and api_configured():
        chosen = saved_block_or_none(DEFAULT_BLOCK_NAME)
    return Target.from_settings() if chosen is None else target_of_block(chosen)


async def aresolve_target(block: str | TargetBlock | Target | None = None) -> Target:
    """``resolve_target`` for async code: block documents are read with Prefect's async client."""
    if isinstance(block, Target):
        return block
    if isinstance(block, str):
        return target_of_block(await aload_block(block))
    chosen = block if block is not None else run_block()
    if chosen is None and api_configured():
        chosen = await asaved_block_or_none(DEFAULT_BLOCK_NAME)
    return Target.from_settings() if chosen is None else target_of_block(chosen)


# --- saved blocks ---------------------------------------------------------------------------

_saved: dict[tuple[str, str], TargetBlock | None] = {}
_saved_lock = threading.Lock()


def load_block(name: str) -> TargetBlock:
    """The saved LaboxResultStorage block ``name``; ResultTargetError if there is none."""
    found = saved_block_or_none(name)
    if found is None:
        raise _missing(name)
    return found


async def aload_block(name: str) -> TargetBlock:
    found = await asaved_block_or_none(name)
    if found is None:
        raise _missing(name)
    return found


def saved_block_or_none(name: str) -> TargetBlock | None:
    """The saved LaboxResultStorage block ``name`` on the current Prefect API, or None.

    Asked of the API once per name, API and process (blocks are read far more than saved;
    ``remember_block`` records one this process saves).
    """
    key = _key(name)
    with _saved_lock:
        if key in _saved:
            return _saved[key]
    try:
        loaded: Any = Block.load(f"{BLOCK_TYPE_SLUG}/{name}", _sync=True)  # type: ignore[call-arg]
    except ValueError:  # Prefect's "Unable to find block document"
        loaded = None
    return _keep(key, loaded)


async def asaved_block_or_none(name: str) -> TargetBlock | None:
    key = _key(name)
    with _saved_lock:
        if key in _saved:
            return _saved[key]
    try:
        loaded: Any = await Block.aload(f"{BLOCK_TYPE_SLUG}/{name}")
    except ValueError:
        loaded = None
    return _keep(key, loaded)


def remember_block(name: str, block: TargetBlock) -> None:
    """Note a block this process saved (or loaded) under ``name`` on the current API."""
    _keep(_key(name), block)


def api_configured() -> bool:
    """Whether Prefect has an API to ask (PREFECT_API_URL) without starting its ephemeral
    server (which costs seconds, and holds no block a reader could mean)."""
    return bool(get_current_settings().api.url)


def _key(name: str) -> tuple[str, str]:
    if not isinstance(name, str) or not name:
        raise TypeError(f"A block name is a non-empty string, not {name!r}.")
    return str(get_current_settings().api.url), name


def _keep(key: tuple[str, str], loaded: Any) -> TargetBlock | None:
    if loaded is not None and not is_labox_block(loaded):
        raise ResultTargetError(
            f"The block {key[1]!r} is a {type(loaded).__name__}, not a LaboxResultStorage: "
            f"give the name of a LaboxResultStorage block."
        )
    with _saved_lock:
        _saved[key] = loaded
    found: TargetBlock | None = loaded
    return found


def _missing(name: str) -> ResultTargetError:
    return ResultTargetError(
        f"No LaboxResultStorage block named {name!r} is saved on the Prefect API "
        f"{get_current_settings().api.url or '(ephemeral)'}: save one with "
        f"LaboxResultStorage(...).save({name!r}), or check PREFECT_API_URL."
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# --- targets by database label --------------------------------------------------------------

_by_label: dict[str, Target] = {}
_by_label_lock = threading.Lock()


def remember(target: Target) -> Target:
    """Note a target in use, so a pointer naming its database label finds it again."""
    with _by_label_lock:
        _by_label[target.database_label] = target
    return target


def target_for_label(database_label: str) -> Target | None:
    """The target last used for the database of this label, if this process used one."""
    with _by_label_lock:
        return _by_label.get(database_label)


__all__ = [
    "ASYNC_DRIVERS",
    "BLOCK_TYPE_SLUG",
    "DEFAULT_BLOCK_NAME",
    "Target",
    "TargetBlock",
    "api_configured",
    "aresolve_target",
    "database_url_problem",
    "is_embedded_default",
    "is_labox_block",
    "load_block",
    "remember",
    "remember_block",
    "resolve_target",
    "run_block",
    "saved_block_or_none",
    "storage_url_problem",
    "target_for_label",
    "target_of_block",
]
