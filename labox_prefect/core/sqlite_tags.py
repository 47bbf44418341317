"""SQLite's tag index: every string tag of every manifest, by key, value and time, kept by SQLite.

PostgreSQL answers ``tags @> {...}`` from the GIN index on tags. SQLite has no inverted
index, so a filter on a tag that no ordered tag index covers (a user's tag, a Prefect run
tag) read every manifest's JSON: 4-5 µs each, 0.4-1.7 s over 100k manifests for a rare tag.

``labox_manifest_tags`` holds one row per string-valued tag of each manifest:
``(key, value, created_at, manifest_id)``, which is also its primary key (a WITHOUT ROWID
table: the rows are the index). It answers "the newest manifests carrying key = value" by
reading that pair's rows newest first and stopping at the limit, however rare or common the
pair. ``created_at`` and ``manifest_id`` are copied as SQLite stores them in
``labox_manifests``, so they order and compare as that table's columns do.

SQLite keeps it itself, whatever code writes the manifests (this package's savers, an older
version's, a user's SQL): triggers insert a manifest's pairs after its row is inserted, and
delete them after it is deleted, both after an update of its id, time or tags. Python writes
nothing to it and a save sends no extra statement; each tag costs SQLite one b-tree insert.
Documents that are not JSON objects, and values that are not JSON strings, have no entries
(tags are strings; queries match strings only).

Entries are complete, and queries rely on that: every manifest that carries a string pair
has that pair's entry. They are not the last word: a query still checks every pair on the
manifest's own tags, and joins on the time too, so an entry left behind (an ``INSERT OR
REPLACE`` by other code deletes the old row without firing a trigger) never makes a
manifest match a pair it does not carry.

The table is not part of ``BaseRecord.metadata`` (PostgreSQL has no use for it):
``ensure_tag_index`` makes it on SQLite, for ``BaseRecord.create_all``, and migration 0003
makes the same for databases that Alembic manages.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

TABLE = "labox_manifest_tags"

TRIGGERS = (
    "labox_manifest_tags_insert",
    "labox_manifest_tags_delete",
    "labox_manifest_tags_update",
)

CONTEXT_PREFIX = "prefect."
"""Keys of the run context the Prefect integration writes on every record: not indexed here.

The core imports nothing of Prefect; it only knows these labels, as it knows the keys of
the ordered tag indexes. Those keys (flow, task, flow run) have their ordered index; the
others (kind, task run id, flow run name, deployment, result type) are no filter of
``find_results``, and a save would pay for each of their entries.
"""

RUN_TAG_PREFIX = "prefect.tag."
"""Prefect's run tags (``prefect_tags=`` of ``find_results``): indexed, like users' own tags."""

_INDEXED = (
    f"(substr(key, 1, {len(CONTEXT_PREFIX)}) <> '{CONTEXT_PREFIX}' "
    f"OR substr(key, 1, {len(RUN_TAG_PREFIX)}) = '{RUN_TAG_PREFIX}')"
)
"""``indexed(key)`` in SQL, on json_each's ``key``."""


def indexed(key: str) -> bool:
    """Whether the tag index holds the pairs of ``key`` (users' tags and Prefect run tags)."""
    return not key.startswith(CONTEXT_PREFIX) or key.startswith(RUN_TAG_PREFIX)


_OBJECT = "CASE WHEN json_type({tags}) = 'object' THEN {tags} END"
"""The document if it is a JSON object, else NULL (json_each of NULL is empty).

Malformed JSON is an error here, as it is in the ordered tag indexes' expressions: SQLite
refuses such a row.
"""


def _insert(row: str) -> str:
    return (
        f"INSERT OR IGNORE INTO {TABLE} (key, value, created_at, manifest_id) "
        f"SELECT key, value, {row}.created_at, {row}.id "
        f"FROM json_each({_OBJECT.format(tags=f'{row}.tags')}) WHERE type = 'text' AND {_INDEXED};"
    )


def _delete(row: str) -> str:
    return (
        f"DELETE FROM {TABLE} WHERE (key, value, created_at, manifest_id) IN ("
        f"SELECT key, value, {row}.created_at, {row}.id "
        f"FROM json_each({_OBJECT.format(tags=f'{row}.tags')}) WHERE type = 'text' AND {_INDEXED});"
    )


SCHEMA = (
    f"CREATE TABLE {TABLE} (key TEXT NOT NULL, value TEXT NOT NULL, "
    f"created_at DATETIME NOT NULL, manifest_id CHAR(32) NOT NULL, "
    f"PRIMARY KEY (key, value, created_at, manifest_id)) WITHOUT ROWID",
    f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON labox_manifests BEGIN {_insert('NEW')} END",
    f"CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON labox_manifests BEGIN {_delete('OLD')} END",
    f"CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE OF id, created_at, tags ON labox_manifests "
    f"BEGIN {_delete('OLD')} {_insert('NEW')} END",
)
"""The table and its triggers, in the order to create them."""

BACKFILL = (
    f"INSERT OR IGNORE INTO {TABLE} (key, value, created_at, manifest_id) "
    f"SELECT tag.key, tag.value, m.created_at, m.id "
    f"FROM labox_manifests AS m, json_each({_OBJECT.format(tags='m.tags')}) AS tag "
    f"WHERE tag.type = 'text' AND {_INDEXED.replace('key', 'tag.key')}"
)
"""The entries of the manifests that exist when the index is made (one pass over them)."""


def ensure_tag_index(connection: Connection) -> None:
    """Make the tag index on a SQLite database whose manifests table exists, if it lacks it.

    It is made whole (table, triggers, entries of the existing manifests) when any of its
    triggers is missing: a manifests table made again (its triggers go with it) gets a new
    index rather than one that misses its rows. Filling it reads every manifest once (4.5 s
    for 100k manifests with 5-6 indexed tags each). Runs in the connection's transaction;
    nothing on other databases.
    """
    if connection.dialect.name != "sqlite":
        return
    found = connection.execute(
        text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (:a, :b, :c)"),
        dict(zip("abc", TRIGGERS, strict=True)),
    ).scalar_one()
    if found == len(TRIGGERS):
        return
    for trigger in TRIGGERS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    connection.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
    for statement in SCHEMA:
        connection.execute(text(statement))
    connection.execute(text(BACKFILL))


__all__ = ["BACKFILL", "SCHEMA", "TABLE", "TRIGGERS", "ensure_tag_index"]
