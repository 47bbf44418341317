"""LABOX_* settings, read from the environment when a result is saved or loaded.

This is the one place the integration reads the environment (``AWS_ENDPOINT_URL``
included, as the fallback S3 endpoint); everything else asks ``current_settings()``. They
are read at the moment of use, not at import, so a worker, a test or a deployment can
change them without reimporting anything. Everything defaults to an embedded set-up that
needs no server: a SQLite file and a folder of blobs under ``LABOX_HOME``.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from labox_prefect.errors import InvalidSettingError

DEFAULT_HOME = Path("~/.labox-prefect")

CORE_REGISTRY_MODULES = (
    "labox_prefect.core.builtin",
    "labox_prefect.core.extra.pydantic",
    "labox_prefect.core.extra.pandas",
    "labox_prefect.core.extra.pyarrow",
    "labox_prefect.core.extra.numpy",
)
"""What every registry of the integration knows: built-in, pydantic, pandas and pyarrow types."""


class LaboxSettings(BaseSettings):
    """Where results go and what the registry knows, from ``LABOX_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="LABOX_", extra="ignore")

    home: Path = Field(
        default=DEFAULT_HOME,
        description="Folder of the embedded defaults (database file and blob folder).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user:pass@host/db. "
        "Default: sqlite+aiosqlite under LABOX_HOME.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where blobs go: a folder path or file://..., s3://bucket/prefix, or "
        "memory:// (this process only). Default: LABOX_HOME/storage.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LABOX_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        description="Endpoint of an S3-compatible server (falls back to AWS_ENDPOINT_URL).",
    )
    registry_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated modules whose storables and serializers are registered.",
    )
    artifacts: bool = Field(
        default=True,
        description="Publish a Prefect table artifact for every persisted result.",
    )
    require_configured: bool = Field(
        default=False,
        description="Refuse to save to the embedded default (no LABOX_DATABASE_URL and no "
        "block database) in a flow run of a deployment, instead of warning once.",
    )
    # Connections to a server database (PostgreSQL); the embedded SQLite ignores them.
    db_pool: Literal["queue", "null"] = Field(
        default="queue",
        description="'queue': keep up to LABOX_DB_POOL_SIZE connections open per process; "
        "'null': open one per unit of work and close it after (behind PgBouncer).",
    )
    db_pool_size: int = Field(
        default=2, ge=1, description="Connections a process keeps open (SQLAlchemy pool_size)."
    )
    db_max_overflow: int = Field(
        default=2,
        ge=0,
        description="Connections a process may open beyond the pool size under load.",
    )
    db_pool_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a unit of work waits for a pooled connection."
    )
    db_pool_pre_ping: bool = Field(
        default=True, description="Test a pooled connection before use (one round trip)."
    )
    db_pool_recycle: float = Field(
        default=1800.0,
        description="Seconds after which a pooled connection is replaced (-1: never); keep "
        "it below any idle timeout of a proxy or firewall.",
    )
    db_application_name: str = Field(
        default="labox-prefect",
        description="application_name of every connection, as pg_stat_activity shows it.",
    )
    db_connect_wait: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a new connection waits, retrying, while the server refuses it "
        "for being at its connection limit, before the failure is reported.",
    )

    @field_validator("registry_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def home_path(self) -> Path:
        return self.home.expanduser()

    def resolved_database_url(self) -> str:
        """The database URL, with the embedded SQLite file under LABOX_HOME as default."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{_under(self.home, 'labox.db')}"

    def resolved_storage_url(self) -> str:
        """The storage URL, with a folder under LABOX_HOME as default."""
        if self.storage_url:
            return self.storage_url
        return _under(self.home, "storage")


def _under(home: Path, name: str) -> str:
    """The absolute path of ``name`` under ``home``; a relative ``home`` is taken from the
    working directory of the moment.

    Asked several times per task run: the working directory is read only for a relative
    ``home`` (the default, ``~/.labox-prefect``, is not), because ``os.getcwd`` releases the
    GIL and, while another thread of the process runs Python, getting it back can cost the
    task's thread a switch interval (5 ms, sys.getswitchinterval).
    """
    if home.is_absolute() or str(home).startswith("~"):
        return _joined(home, name, "")
    return _joined(home, name, os.getcwd())


@lru_cache(maxsize=64)
def _joined(home: Path, name: str, cwd: str) -> str:
    return (Path(cwd) / home.expanduser() / name).as_posix()


_ENV_NAMES = (*(f"LABOX_{name.upper()}" for name in LaboxSettings.model_fields), "AWS_ENDPOINT_URL")
_cached: tuple[tuple[Any, ...], LaboxSettings] | None = None
_cache_lock = threading.Lock()


def _environment_key() -> tuple[Any, ...]:
    """The values of the variables the settings read, read as cheaply as they can be.

    ``os.environ.get`` raises and catches a KeyError for every variable that is not set (most
    LABOX_* variables), about 3 us each: 50 us per call, more than the rest of a small
    result's bookkeeping. CPython's ``os.environ`` keeps the encoded environment in its
    ``_data`` dict, which is read here directly (tests/integration/test_settings.py fails if
    it goes; the public reading stays as the fallback).
    """
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict) and os.name == "posix":
        return tuple(map(data.get, _ENV_NAMES_B))
    return tuple(os.environ.get(name) for name in _ENV_NAMES)


_ENV_NAMES_B = tuple(os.fsencode(name) for name in _ENV_NAMES)


def current_settings() -> LaboxSettings:
    """The settings as the environment says right now.

    Parsing settings costs about half a millisecond and every result reads them several
    times, so the parsed settings are reused while the LABOX_* variables stay the same.

    Raises InvalidSettingError naming the first variable whose value is not allowed.
    """
    global _cached
    key = _environment_key()
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        settings = LaboxSettings()
    except ValidationError as invalid:
        raise InvalidSettingError(_problem(invalid)) from None
    with _cache_lock:
        _cached = (key, settings)
    return settings


_BOOLEAN_VALUES = "true or false (also 1/0, yes/no, on/off)"


def _problem(invalid: ValidationError) -> str:
    """The first error of ``invalid`` as a sentence naming the variable, its value (none for
    a URL, which may hold a password) and what is allowed."""
    error = invalid.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = field if field.isupper() else f"LABOX_{field.upper()}"
    value = os.environ.get(variable)
    shown = "its value" if value is None or "URL" in variable else repr(value)
    said = error["msg"].partition(", ")[0]  # "Input should be X, unable to parse ...": X
    allowed = _BOOLEAN_VALUES if error["type"] == "bool_parsing" else said.lower()
    allowed = allowed.removeprefix("input should be ")
    return (
        f"{variable}={shown} is not allowed: it should be {allowed}. Fix or unset "
        f"{variable} (environment variable)."
    )


__all__ = ["CORE_REGISTRY_MODULES", "DEFAULT_HOME", "LaboxSettings", "current_settings"]
