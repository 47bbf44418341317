"""Ordered tag indexes: the newest records of a flow run, a task, a flow, a flow's results.

Each is a btree on one tag key's value, then time, then id (the flow results index: only
of records tagged ``prefect.kind = flow``, on SQLite led by that key's value; on SQLite,
each only of the records carrying its key); see
``labox_prefect.core.database.ORDERED_TAG_INDEXES``, which this revision writes out as it
stood. Building them reads the whole manifests table once and blocks writes to it meanwhile
(about 10 s per index over 1M manifests on PostgreSQL).

On PostgreSQL it also keeps a 1,000-document sample of the tags (``SET STATISTICS 1000``,
ten times the default) for the planner's estimate of ``tags @> ...``: with 100, a rare pair
found in one sampled document was taken for 1 in 100 records, and such a query walked the
whole time index (2 of 1,000 rare tags over 1M manifests, 1.9 s each); with 1,000 none did.
ANALYZE of the table reads more rows for it (about 10 s over 1M manifests), and planning a
``tags @> ...`` query tests the larger sample: 0.50 ms instead of 0.14 ms (p50, loaded
machine; filters on the run keys of the ordered indexes take their estimate from those).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = (
    ("ix_labox_manifests_flow_run_id", "prefect.flow_run_id", None),
    ("ix_labox_manifests_task_name", "prefect.task_name", None),
    ("ix_labox_manifests_flow_results", "prefect.flow_name", ("prefect.kind", "flow")),
    ("ix_labox_manifests_flow_name", "prefect.flow_name", None),
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE labox_manifests ALTER COLUMN tags SET STATISTICS 1000")
    for name, key, only in INDEXES:
        if postgresql:
            columns: list[str | sa.TextClause] = [
                sa.text(f"(tags -> '{key}')"),
                sa.text("timezone('UTC', created_at)"),
                "id",
            ]
            where = None
            if only is not None:
                where = sa.text(f"(tags -> '{only[0]}') = '\"{only[1]}\"'::jsonb")
            op.create_index(
                name, "labox_manifests", columns, postgresql_where=where, if_not_exists=True
            )
        else:
            value = f"json_extract(tags, '$.\"{key}\"')"
            predicate = f"{value} IS NOT NULL"
            sqlite_columns: list[str | sa.TextClause] = [sa.text(value), "created_at", "id"]
            if only is not None:
                leading = f"json_extract(tags, '$.\"{only[0]}\"')"
                predicate = f"{leading} = '{only[1]}'"
                sqlite_columns.insert(0, sa.text(leading))
            op.create_index(
                name,
                "labox_manifests",
                sqlite_columns,
                sqlite_where=sa.text(predicate),
                if_not_exists=True,
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE labox_manifests ALTER COLUMN tags SET STATISTICS -1")
    for name, _, _ in INDEXES:
        op.drop_index(name, "labox_manifests")
