"""Alembic's environment for the Labox tables, run by labox_prefect.core.migrations.

It migrates over the connection that ``upgrade`` hands it (``config.attributes["connection"]``)
and keeps its revision in its own version table, so a project's own Alembic history and
ours never meet. There is no offline (SQL script) mode: migrations run against a database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from labox_prefect.core.database import BaseRecord
from labox_prefect.core.migrations import context_options


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=BaseRecord.metadata,
        **context_options(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(connection, Connection):
    raise RuntimeError(
        "The Labox migrations run through labox_prefect.core.migrations.upgrade(url) (or "
        "`labox-prefect db upgrade`), not through the alembic command line."
    )
run_migrations(connection)
