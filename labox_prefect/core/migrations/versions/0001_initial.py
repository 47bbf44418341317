"""The Labox tables: manifests and their contents.

Revision ID: 0001
Revises:
Create Date: 2024-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "labox_manifests",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("class_id", sa.Uuid(), nullable=False),
        sa.Column("unpacker_name", sa.String(255), nullable=False),
        sa.Column("tags", JSON, nullable=False),
    )
    op.create_index("ix_labox_manifests_created_at", "labox_manifests", ["created_at"])
    op.create_index("ix_labox_manifests_class_id", "labox_manifests", ["class_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_labox_manifests_tags",
            "labox_manifests",
            ["tags"],
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )
    op.create_table(
        "labox_contents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "manifest_id",
            sa.Uuid(),
            sa.ForeignKey("labox_manifests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("content_key", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content_encoding", sa.String(64), nullable=True),
        sa.Column("content_size", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("content_hash_algorithm", sa.String(32), nullable=False),
        sa.Column("serializer_name", sa.String(255), nullable=False),
        sa.Column("serializer_config", JSON, nullable=False),
        sa.Column("serializer_type", sa.String(16), nullable=False),
        sa.Column("storage_name", sa.String(255), nullable=False),
        sa.Column("storage_config", JSON, nullable=False),
        sa.UniqueConstraint("manifest_id", "content_key", name="uq_labox_contents_manifest_key"),
    )
    op.create_index("ix_labox_contents_manifest_id", "labox_contents", ["manifest_id"])
    op.create_index("ix_labox_contents_content_hash", "labox_contents", ["content_hash"])


def downgrade() -> None:
    op.drop_table("labox_contents")
    op.drop_table("labox_manifests")
