"""PostgreSQL's tag index by task: each entry carries its manifest's task name, indexed.

On PostgreSQL, ``labox_manifest_tags`` (revision 0004) gets a column ``task_name`` (the
manifest's ``prefect.task_name`` when a JSON string, else null) and an index
``ix_labox_manifest_tags_task_name`` (task_name, key, value, created_at, manifest_id) of the
entries of task results, and its triggers write the task names; see
``labox_prefect.core.postgresql_tags``, which this revision writes out as it stood. The
index is made again whole and filled from the manifests already there (one pass over them:
262 s for 1M manifests on a loaded machine; writes to the manifests wait meanwhile), unless
it is whole already (made by this version's ``create_all``). A downgrade drops the column
and its index and restores revision 0004's trigger functions. On SQLite nothing changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

TRIGGERS = (
    "labox_manifest_tags_insert",
    "labox_manifest_tags_delete",
    "labox_manifest_tags_update",
)

TASK_INDEX = "ix_labox_manifest_tags_task_name"

TASK_NAME = (
    "CASE WHEN jsonb_typeof(m.tags -> 'prefect.task_name') = 'string' "
    "THEN m.tags ->> 'prefect.task_name' END"
)


def pairs(task_name: bool) -> str:
    """The entries of the manifests of ``{rows}``, with their task names if ``task_name``."""
    return (
        "SELECT tag.key, tag.value #>> '{{}}' AS value, m.created_at, m.id AS manifest_id"
        + (f", {TASK_NAME} AS task_name" if task_name else "")
        + " FROM {rows} AS m, "
        "jsonb_each(CASE WHEN jsonb_typeof(m.tags) = 'object' THEN m.tags END) AS tag "
        "WHERE jsonb_typeof(tag.value) = 'string' "
        "AND (left(tag.key, 8) <> 'prefect.' OR left(tag.key, 12) = 'prefect.tag.')"
    )


def insert(task_name: bool) -> str:
    columns = "key, value, created_at, manifest_id" + (", task_name" if task_name else "")
    return (
        f"INSERT INTO labox_manifest_tags ({columns}) "
        + pairs(task_name)
        + " ON CONFLICT DO NOTHING;"
    )


def delete(task_name: bool) -> str:
    return (
        "DELETE FROM labox_manifest_tags AS t USING ("
        + pairs(task_name)
        + ") AS gone WHERE t.key = gone.key AND t.value = gone.value "
        "AND t.created_at = gone.created_at AND t.manifest_id = gone.manifest_id;"
    )


def function(name: str, body: str, *, replace: bool) -> str:
    return (
        f"CREATE {'OR REPLACE ' if replace else ''}FUNCTION {name}() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$"
    )


def functions(task_name: bool, *, replace: bool) -> list[str]:
    """The three trigger functions, in the order of TRIGGERS."""
    new_rows = insert(task_name).format(rows="new_rows")
    old_rows = delete(task_name).format(rows="old_rows")
    return [
        function(TRIGGERS[0], new_rows, replace=replace),
        function(TRIGGERS[1], old_rows, replace=replace),
        function(TRIGGERS[2], old_rows + " " + new_rows, replace=replace),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Left alone when whole (made by this version's create_all): every trigger, the task index.
    triggers = bind.exec_driver_sql(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid = 'labox_manifests'::regclass "
        "AND tgname IN ('labox_manifest_tags_insert', 'labox_manifest_tags_delete', "
        "'labox_manifest_tags_update')"
    ).scalar_one()
    task_index = bind.exec_driver_sql(
        f"SELECT to_regclass('{TASK_INDEX}') IS NOT NULL"
    ).scalar_one()
    if triggers == len(TRIGGERS) and task_index:
        return
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON labox_manifests")
    for name in TRIGGERS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute("DROP TABLE IF EXISTS labox_manifest_tags")
    op.execute(
        "CREATE TABLE labox_manifest_tags (key text NOT NULL, value text NOT NULL, "
        "created_at timestamptz NOT NULL, manifest_id uuid NOT NULL, task_name text, "
        "PRIMARY KEY (key, value, created_at, manifest_id))"
    )
    op.execute(
        f"CREATE INDEX {TASK_INDEX} ON labox_manifest_tags "
        "(task_name, key, value, created_at, manifest_id) WHERE task_name IS NOT NULL"
    )
    op.execute(
        "CREATE STATISTICS labox_manifest_tags_pairs (mcv) ON key, value FROM labox_manifest_tags"
    )
    for statement in functions(task_name=True, replace=False):
        op.execute(statement)
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
    op.execute(insert(task_name=True).format(rows="labox_manifests").removesuffix(";"))
    op.execute("ANALYZE labox_manifest_tags")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in functions(task_name=False, replace=True):
        op.execute(statement)
    op.execute(f"DROP INDEX IF EXISTS {TASK_INDEX}")
    op.execute("ALTER TABLE labox_manifest_tags DROP COLUMN IF EXISTS task_name")
