"""Prefect storage keys of Labox results.

Revision ID: p0001
Revises:
Create Date: 2025-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "p0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "labox_prefect_results",
        sa.Column("storage_key", sa.String(1024), primary_key=True),
        sa.Column("manifest_id", sa.Uuid(), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["labox_manifests.id"],
            name="fk_labox_prefect_results_manifest_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_labox_prefect_results_manifest_id", "labox_prefect_results", ["manifest_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_labox_prefect_results_manifest_id", "labox_prefect_results")
    op.drop_table("labox_prefect_results")
