"""Alembic's environment for the integration's table, run by labox_prefect.migrations.

It migrates over the connection handed in ``config.attributes["connection"]`` and keeps its
revision in ``labox_prefect_alembic_version``, apart from the core's version table.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from labox_prefect.migrations import VERSION_TABLE
from labox_prefect.result_keys import metadata

connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(connection, Connection):
    raise RuntimeError(
        "The labox-prefect migrations run through labox_prefect.migrations.upgrade(url), not "
        "through the alembic command line."
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=lambda name, type_, parent: type_ != "table" or name == "labox_prefect_results",
)
with context.begin_transaction():
    context.run_migrations()
