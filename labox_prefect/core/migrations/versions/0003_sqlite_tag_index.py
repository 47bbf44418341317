"""SQLite's tag index: users' tags and Prefect run tags by key, value and time, kept by triggers.

On SQLite, a table ``labox_manifest_tags`` with one row per string-valued tag of each
manifest (keys outside ``prefect.``, and ``prefect.tag.*``), its primary key (key, value,
created_at, manifest_id), kept by triggers on ``labox_manifests``; see
``labox_prefect.core.sqlite_tags``, which this revision writes out as it stood. It is filled
from the manifests already there (one pass over them). On PostgreSQL nothing changes: the
GIN index on tags answers the same filters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TRIGGERS = (
    "labox_manifest_tags_insert",
    "labox_manifest_tags_delete",
    "labox_manifest_tags_update",
)

OBJECT = "CASE WHEN json_type({tags}) = 'object' THEN {tags} END"
INDEXED = "(substr({key}, 1, 8) <> 'prefect.' OR substr({key}, 1, 12) = 'prefect.tag.')"


def _insert(row: str) -> str:
    return (
        f"INSERT OR IGNORE INTO labox_manifest_tags (key, value, created_at, manifest_id) "
        f"SELECT key, value, {row}.created_at, {row}.id "
        f"FROM json_each({OBJECT.format(tags=f'{row}.tags')}) "
        f"WHERE type = 'text' AND {INDEXED.format(key='key')};"
    )


def _delete(row: str) -> str:
    return (
        f"DELETE FROM labox_manifest_tags WHERE (key, value, created_at, manifest_id) IN ("
        f"SELECT key, value, {row}.created_at, {row}.id "
        f"FROM json_each({OBJECT.format(tags=f'{row}.tags')}) "
        f"WHERE type = 'text' AND {INDEXED.format(key='key')});"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Made whole unless every trigger is there (tables made by this version's create_all).
    found = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?, ?)",
        TRIGGERS,
    )
    if found.scalar_one() == len(TRIGGERS):
        return
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS labox_manifest_tags")
    op.execute(
        "CREATE TABLE labox_manifest_tags (key TEXT NOT NULL, value TEXT NOT NULL, "
        "created_at DATETIME NOT NULL, manifest_id CHAR(32) NOT NULL, "
        "PRIMARY KEY (key, value, created_at, manifest_id)) WITHOUT ROWID"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON labox_manifests BEGIN {_insert('NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON labox_manifests BEGIN {_delete('OLD')} END"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE OF id, created_at, tags ON labox_manifests "
        f"BEGIN {_delete('OLD')} {_insert('NEW')} END"
    )
    op.execute(
        "INSERT OR IGNORE INTO labox_manifest_tags (key, value, created_at, manifest_id) "
        "SELECT tag.key, tag.value, m.created_at, m.id "
        f"FROM labox_manifests AS m, json_each({OBJECT.format(tags='m.tags')}) AS tag "
        f"WHERE tag.type = 'text' AND {INDEXED.format(key='tag.key')}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS labox_manifest_tags")
