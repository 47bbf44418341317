"""PostgreSQL's tag index: users' tags and Prefect run tags by key, value and time.

On PostgreSQL, a table ``labox_manifest_tags`` with one row per string-valued tag of each
manifest (keys outside ``prefect.``, and ``prefect.tag.*``), its primary key (key, value,
created_at, manifest_id), extended statistics on (key, value), and statement-level triggers
on ``labox_manifests`` that keep it; see ``labox_prefect.core.postgresql_tags``, which this
revision writes out as it stood. It is filled from the manifests already there (one pass
over them: about a minute for 1M manifests; writes to the manifests wait meanwhile). On
SQLite nothing changes (revision 0003 made its own).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

TRIGGERS = (
    "labox_manifest_tags_insert",
    "labox_manifest_tags_delete",
    "labox_manifest_tags_update",
)

PAIRS = (
    "SELECT tag.key, tag.value #>> '{{}}' AS value, m.created_at, m.id AS manifest_id "
    "FROM {rows} AS m, "
    "jsonb_each(CASE WHEN jsonb_typeof(m.tags) = 'object' THEN m.tags END) AS tag "
    "WHERE jsonb_typeof(tag.value) = 'string' "
    "AND (left(tag.key, 8) <> 'prefect.' OR left(tag.key, 12) = 'prefect.tag.')"
)
INSERT = (
    "INSERT INTO labox_manifest_tags (key, value, created_at, manifest_id) "
    + PAIRS
    + " ON CONFLICT DO NOTHING;"
)
DELETE = (
    "DELETE FROM labox_manifest_tags AS t USING ("
    + PAIRS
    + ") AS gone WHERE t.key = gone.key AND t.value = gone.value "
    "AND t.created_at = gone.created_at AND t.manifest_id = gone.manifest_id;"
)


def _function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body} RETURN NULL; END $$"
    )


def _drop() -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON labox_manifests")
    for function in TRIGGERS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute("DROP TABLE IF EXISTS labox_manifest_tags")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Made whole unless every trigger is there (tables made by this version's create_all).
    found = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid = 'labox_manifests'::regclass "
        "AND tgname IN ('labox_manifest_tags_insert', 'labox_manifest_tags_delete', "
        "'labox_manifest_tags_update')"
    )
    if found.scalar_one() == len(TRIGGERS):
        return
    _drop()
    op.execute(
        "CREATE TABLE labox_manifest_tags (key text NOT NULL, value text NOT NULL, "
        "created_at timestamptz NOT NULL, manifest_id uuid NOT NULL, "
        "PRIMARY KEY (key, value, created_at, manifest_id))"
    )
    op.execute(
        "CREATE STATISTICS labox_manifest_tags_pairs (mcv) ON key, value FROM labox_manifest_tags"
    )
    op.execute(_function(TRIGGERS[0], INSERT.format(rows="new_rows")))
    op.execute(_function(TRIGGERS[1], DELETE.format(rows="old_rows")))
    op.execute(
        _function(
            TRIGGERS[2], DELETE.format(rows="old_rows") + " " + INSERT.format(rows="new_rows")
        )
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON labox_manifests "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGERS[0]}()"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON labox_manifests "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGERS[1]}()"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE ON labox_manifests "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGERS[2]}()"
    )
    op.execute(
        "INSERT INTO labox_manifest_tags (key, value, created_at, manifest_id) "
        + PAIRS.format(rows="labox_manifests")
        + " ON CONFLICT DO NOTHING"
    )
    op.execute("ANALYZE labox_manifest_tags")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _drop()
