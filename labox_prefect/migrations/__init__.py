"""Schema migrations of the whole labox-prefect database: the core's, then the integration's.

The integration's one table (``labox_prefect_results``, see labox_prefect.result_keys) has
its own Alembic scripts and its own version table, ``labox_prefect_alembic_version``, so the
core's history (``labox_alembic_version``) never hears of Prefect. ``upgrade(url)`` and
``aupgrade(url)`` bring both to their newest revision; they are idempotent.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from labox_prefect.core import migrations as core_migrations

VERSION_TABLE = "labox_prefect_alembic_version"
"""Where the integration's schema revision is kept."""

SCRIPT_LOCATION = Path(__file__).parent


def _upgrade_on(connection: Connection, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def aupgrade_integration(engine: AsyncEngine) -> None:
    """Migrate only the integration's table (the core tables must exist)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_on)


async def aupgrade(url_or_engine: str | URL | AsyncEngine) -> None:
    """Migrate the core tables, then the integration's, on an async URL or engine."""
    if isinstance(url_or_engine, AsyncEngine):
        await core_migrations.aupgrade(url_or_engine)
        await aupgrade_integration(url_or_engine)
        return
    engine = create_async_engine(url_or_engine)
    try:
        await core_migrations.aupgrade(engine)
        await aupgrade_integration(engine)
    finally:
        await engine.dispose()


def upgrade(url: str | URL) -> None:
    """``aupgrade`` for sync code; runs on a private loop in a private thread."""
    if not make_url(url).get_dialect().is_async:
        raise ValueError(
            f"{make_url(url).render_as_string(hide_password=True)} is not an async URL; use "
            f"postgresql+asyncpg://... or sqlite+aiosqlite:///..., as for LABOX_DATABASE_URL."
        )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labox-migrations") as thread:
        thread.submit(asyncio.run, aupgrade(url)).result()


__all__ = ["SCRIPT_LOCATION", "VERSION_TABLE", "aupgrade", "aupgrade_integration", "upgrade"]
