"""SQLite's tag index: kept by SQLite's triggers whatever writes the manifests, made whole."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from labox_prefect.core import BaseRecord
from labox_prefect.core.sqlite_tags import TABLE, TRIGGERS, indexed
from tests.core._tag_index import INDEXED, TAGS

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def insert(engine: AsyncEngine, document: str, at: str = "2024-01-01 00:00:00.000000") -> str:
    """A manifest row written by plain SQL, as other code could write it; its id."""
    manifest_id = uuid.uuid4().hex
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO labox_manifests (id, created_at, class_id, unpacker_name, tags) "
                "VALUES (:id, :at, :class_id, 'u@v1', :tags)"
            ),
            {"id": manifest_id, "at": at, "class_id": uuid.uuid4().hex, "tags": document},
        )
    return manifest_id


async def entries(engine: AsyncEngine) -> set[tuple[str, str, str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(f"SELECT key, value, created_at, manifest_id FROM {TABLE}")
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


def pairs(found: set[tuple[str, str, str, str]]) -> set[tuple[str, str]]:
    return {(key, value) for key, value, _, _ in found}


def test_users_tags_and_prefect_run_tags_are_indexed_context_keys_are_not() -> None:
    for key in ("project", "prefect.tag.gpu", "", "Prefect.kind"):  # labels match exactly
        assert indexed(key), key
    for key in ("prefect.kind", "prefect.flow_name", "prefect.task_run_id"):
        assert not indexed(key), key


@sqlite_only
async def test_entries_follow_inserts_updates_and_deletes_of_any_writer(
    engine: AsyncEngine,
) -> None:
    manifest_id = await insert(engine, json.dumps(TAGS))
    found = await entries(engine)
    assert pairs(found) == INDEXED  # string values only; the run context's keys left out
    assert {(at, owner) for _, _, at, owner in found} == {
        ("2024-01-01 00:00:00.000000", manifest_id)
    }

    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE labox_manifests SET tags = :tags, created_at = :at WHERE id = :id"),
            {
                "tags": json.dumps({"project": "beta"}),
                "at": "2025-01-01 00:00:00.000000",
                "id": manifest_id,
            },
        )
    assert await entries(engine) == {("project", "beta", "2025-01-01 00:00:00.000000", manifest_id)}

    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM labox_manifests"))
    assert await entries(engine) == set()


@sqlite_only
@pytest.mark.parametrize("document", ['["a", "b"]', '"text"', "3", "null"])
async def test_a_document_that_is_no_json_object_is_saved_without_entries(
    engine: AsyncEngine, document: str
) -> None:
    manifest_id = await insert(engine, document)
    assert await entries(engine) == set()
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM labox_manifests WHERE id = :id"), {"id": manifest_id}
        )


async def drop_tag_index(engine: AsyncEngine, *, table: bool = True) -> None:
    """The tag index gone, as in a database made before it existed (``table``) or whose
    manifests table was made again (its triggers went with it)."""
    async with engine.begin() as connection:
        for trigger in TRIGGERS:
            await connection.execute(text(f"DROP TRIGGER {trigger}"))
        if table:
            await connection.execute(text(f"DROP TABLE {TABLE}"))


@sqlite_only
@pytest.mark.parametrize("table", [True, False], ids=["no index", "no triggers"])
async def test_create_all_makes_the_index_whole_with_the_existing_manifests(
    engine: AsyncEngine, table: bool
) -> None:
    kept = await insert(engine, json.dumps({"project": "old"}))
    await drop_tag_index(engine, table=table)
    unseen = await insert(engine, json.dumps({"project": "unseen"}))

    await BaseRecord.create_all(engine)
    await BaseRecord.create_all(engine)  # once made, left as it is

    assert {(key, value, owner) for key, value, _, owner in await entries(engine)} == {
        ("project", "old", kept),
        ("project", "unseen", unseen),
    }
    fresh = await insert(engine, json.dumps({"project": "new"}))
    assert ("project", "new") in pairs(await entries(engine))
    assert fresh
