"""Schema migrations of the whole labox-prefect database: the core's, then the integration's.

The integration's one table (``labox_prefect_results``, see labox_prefect.result_keys) has
its own Alembic scripts and its own version table, ``labox_prefect_alembic_version``, so the
core's history (``labox_alembic_version``) never hears of Prefect. ``upgrade(url)`` and
``aupgrade(url)`` bring both to their newest revision in one transaction; they are
idempotent. The connection handling (sync callers, async URLs, running loops) is the core's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from labox_prefect.core import migrations as core_migrations

VERSION_TABLE = "labox_prefect_alembic_version"
"""Where the integration's schema revision is kept."""

SCRIPT_LOCATION = Path(__file__).parent


def _upgrade_integration_on(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _upgrade_all_on(connection: Connection) -> None:
    core_migrations.upgrade_on(connection)
    _upgrade_integration_on(connection)


def _revisions_on(connection: Connection) -> tuple[str | None, str | None]:
    return core_migrations.revision_on(connection), core_migrations.revision_on(
        connection, VERSION_TABLE
    )


async def aupgrade_integration(engine: AsyncEngine) -> None:
    """Migrate only the integration's table (the core tables must exist)."""
    await core_migrations.arun_on_database(engine, _upgrade_integration_on)


async def aupgrade(url_or_engine: str | URL | AsyncEngine) -> None:
    """Migrate the core tables, then the integration's, on an async URL or engine."""
    await core_migrations.arun_on_database(url_or_engine, _upgrade_all_on)


def upgrade(url: str | URL) -> None:
    """``aupgrade`` for sync code (see labox_prefect.core.migrations for async URLs)."""
    core_migrations.run_on_database(url, _upgrade_all_on)


def current(url: str | URL) -> tuple[str | None, str | None]:
    """The core's and the integration's revisions of the database at ``url``."""
    return core_migrations.run_on_database(url, _revisions_on)


__all__ = [
    "SCRIPT_LOCATION",
    "VERSION_TABLE",
    "aupgrade",
    "aupgrade_integration",
    "current",
    "upgrade",
]
