"""PostgreSQL's tag index: users' tags and Prefect run tags by key, value and time, via triggers.

The GIN index on tags answers ``tags @> {...}`` but gives no order: the newest manifests
carrying a user's tag were found by collecting every match and sorting them, or by walking
the time index testing each manifest, whichever the planner guessed cheaper from a sample
of 1,000 documents. The guess decides between a fraction of a millisecond and a walk of the
whole table (1.9 s over 1M manifests for a rare tag taken for a common one), and testing the
sample costs 0.7-0.9 ms of planning per query.

``labox_manifest_tags`` mirrors SQLite's tag index (``sqlite_tags``; same table name, same
keys indexed: keys outside ``prefect.``, and ``prefect.tag.*``): one row per string-valued
tag of each manifest, ``(key, value, created_at, manifest_id)``, which is also its primary
key. A query reads one pair's rows newest first and stops at the limit, however rare or
common the pair: the plan has no other order to take, and the planner estimates a pair from
the table's column statistics (the most common pairs are listed in them), not from a sample
of documents.

Each entry also carries its manifest's task name (``TASK_NAME_KEY``, when a JSON string;
null otherwise), and a second index (``TASK_INDEX``: task name, key, value, time, id; task
results only) reads the entries of one pair among one task's results newest first: a task
name with a user's tag or a Prefect run tag is one range scan of exactly the matching
entries, however rare the pair is among the task's results. Without it, the task name's
ordered index was walked testing each result for the pair: over 1M manifests, about 500
results read for 100 matches of a run tag carried by one run in five, and for a project
that the task's results rarely carry, all of them (tens of thousands: 18 ms p50, 87 ms
p99). It costs its size (600 MB over the 5.5M entries of 1M manifests, beside the table's
450 MB and primary key's 570 MB) and one more b-tree insert per entry of a task result.

PostgreSQL keeps it itself, whatever code writes the manifests: statement-level triggers
(with transition tables: one ``INSERT ... SELECT`` per statement, however many rows it
writes) insert a manifest's pairs after its row is inserted, delete them after it is
deleted, and do both after an update. Python writes nothing to it. Documents that are not
JSON objects, and values that are not JSON strings, have no entries.

Entries are complete and carry their manifest's time, and queries rely on that: the
triggers run for every statement that writes the manifests (only a user who disables them,
or writes as a replica, could leave an entry behind). They are not the last word on what
matches: a query checks every pair on the manifest's own tags.

The table is not part of ``BaseRecord.metadata``: ``ensure_tag_index`` makes it on
PostgreSQL, for ``BaseRecord.create_all``; migration 0004 made it for databases that Alembic
manages, and 0005 makes it again with the task names and their index.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from labox_prefect.core.sqlite_tags import CONTEXT_PREFIX, RUN_TAG_PREFIX, TABLE

FUNCTIONS = (
    "labox_manifest_tags_insert",
    "labox_manifest_tags_delete",
    "labox_manifest_tags_update",
)
"""The trigger functions, each named as its trigger."""

TRIGGERS = FUNCTIONS

TASK_NAME_KEY = "prefect.task_name"
"""The tag whose value each entry carries as ``task_name``: the Prefect integration's label
of a task's results (the core imports nothing of Prefect; it knows the label, as it knows
the keys of the ordered tag indexes)."""

TASK_INDEX = "ix_labox_manifest_tags_task_name"
"""The index of the entries of task results: (task_name, key, value, created_at, manifest_id)."""

STATISTICS = "labox_manifest_tags_pairs"
"""Extended statistics on (key, value): the planner's estimate of a pair, not of each apart.

They list the 100 most common pairs (the default target): a pair outside the list is
estimated as rarer than those, and a plan that sorts a pair's entries instead of reading
them in order is chosen only for such a pair. A list of 1,000 tripled the planning time of
a query (0.2-0.3 ms to 0.8-1.2 ms over 1M manifests).
"""

_INDEXED = (
    f"(left(tag.key, {len(CONTEXT_PREFIX)}) <> '{CONTEXT_PREFIX}' "
    f"OR left(tag.key, {len(RUN_TAG_PREFIX)}) = '{RUN_TAG_PREFIX}')"
)

_TASK_NAME = (
    f"CASE WHEN jsonb_typeof(m.tags -> '{TASK_NAME_KEY}') = 'string' "
    f"THEN m.tags ->> '{TASK_NAME_KEY}' END"
)

_PAIRS = (
    "SELECT tag.key, tag.value #>> '{{}}' AS value, m.created_at, m.id AS manifest_id, "
    f"{_TASK_NAME} AS task_name "
    "FROM {rows} AS m, "
    "jsonb_each(CASE WHEN jsonb_typeof(m.tags) = 'object' THEN m.tags END) AS tag "
    f"WHERE jsonb_typeof(tag.value) = 'string' AND {_INDEXED}"
)
"""The entries of the manifests of ``rows``."""

_COLUMNS = "(key, value, created_at, manifest_id, task_name)"

_INSERT = f"INSERT INTO {TABLE} {_COLUMNS} {_PAIRS} ON CONFLICT DO NOTHING;"

_DELETE = (
    f"DELETE FROM {TABLE} AS t USING ({_PAIRS}) AS gone WHERE t.key = gone.key "
    "AND t.value = gone.value AND t.created_at = gone.created_at "
    "AND t.manifest_id = gone.manifest_id;"
)


def _function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body} RETURN NULL; END $$"
    )


SCHEMA = (
    f"CREATE TABLE {TABLE} (key text NOT NULL, value text NOT NULL, "
    f"created_at timestamptz NOT NULL, manifest_id uuid NOT NULL, task_name text, "
    f"PRIMARY KEY (key, value, created_at, manifest_id))",
    f"CREATE INDEX {TASK_INDEX} ON {TABLE} (task_name, key, value, created_at, manifest_id) "
    f"WHERE task_name IS NOT NULL",
    f"CREATE STATISTICS {STATISTICS} (mcv) ON key, value FROM {TABLE}",
    _function(FUNCTIONS[0], _INSERT.format(rows="new_rows")),
    _function(FUNCTIONS[1], _DELETE.format(rows="old_rows")),
    _function(
        FUNCTIONS[2], _DELETE.format(rows="old_rows") + " " + _INSERT.format(rows="new_rows")
    ),
    f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON labox_manifests "
    f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTIONS[0]}()",
    f"CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON labox_manifests "
    f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTIONS[1]}()",
    f"CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE ON labox_manifests "
    f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTIONS[2]}()",
)
"""The table, its task index, its statistics, the trigger functions and the triggers, in the
order to create them.

An update's trigger runs for any update (PostgreSQL allows no column list with transition
tables); manifests are written once and rarely updated.
"""

DROP = (
    *(f"DROP TRIGGER IF EXISTS {trigger} ON labox_manifests" for trigger in TRIGGERS),
    *(f"DROP FUNCTION IF EXISTS {function}()" for function in FUNCTIONS),
    f"DROP TABLE IF EXISTS {TABLE}",
)
"""Remove the index whole (its statistics go with the table)."""

BACKFILL = (
    f"INSERT INTO {TABLE} {_COLUMNS} {_PAIRS.format(rows='labox_manifests')} ON CONFLICT DO NOTHING"
)
"""The entries of the manifests that exist when the index is made (one pass over them)."""


def ensure_tag_index(connection: Connection) -> None:
    """Make the tag index on a PostgreSQL database whose manifests table exists, if it lacks it.

    It is made whole (table, task index, statistics, functions, triggers, entries of the
    existing manifests) when any of its triggers or its task index is missing (an older
    version made it without task names). Filling it reads every manifest once
    (4-5 minutes for 1M manifests with 5-6 indexed tags each, loaded machine), then
    ANALYZEs the table. Runs in the connection's transaction; nothing on other databases.
    """
    if connection.dialect.name != "postgresql":
        return
    if is_whole(connection):
        return
    for statement in (*DROP, *SCHEMA, BACKFILL, f"ANALYZE {TABLE}"):
        connection.execute(text(statement))


def is_whole(connection: Connection) -> bool:
    """Whether a PostgreSQL database has every trigger of the index, and its task index."""
    found = connection.execute(
        text(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid = 'labox_manifests'::regclass AND tgname = ANY(:names)"
        ),
        {"names": list(TRIGGERS)},
    ).scalar_one()
    task_index = connection.execute(
        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": TASK_INDEX}
    ).scalar_one()
    return bool(found == len(TRIGGERS) and task_index)


__all__ = [
    "BACKFILL",
    "DROP",
    "FUNCTIONS",
    "SCHEMA",
    "STATISTICS",
    "TABLE",
    "TASK_INDEX",
    "TASK_NAME_KEY",
    "TRIGGERS",
    "ensure_tag_index",
    "is_whole",
]
