"""PostgreSQL's tag index: kept by its triggers whatever writes the manifests, made whole."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from labox_prefect.core import BaseRecord
from labox_prefect.core.postgresql_tags import DROP, TABLE
from tests.core._tag_index import INDEXED, TAGS

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 1, tzinfo=UTC)


async def insert(engine: AsyncEngine, *documents: str, at: datetime = T0) -> list[uuid.UUID]:
    """Manifest rows written by one plain SQL statement, as other code could write them."""
    ids = [uuid.uuid4() for _ in documents]
    values: dict[str, Any] = {"at": at, "class_id": uuid.uuid4()}
    rows = []
    for number, (manifest_id, document) in enumerate(zip(ids, documents, strict=True)):
        values[f"id{number}"], values[f"tags{number}"] = manifest_id, document
        rows.append(f"(:id{number}, :at, :class_id, 'u@v1', CAST(:tags{number} AS jsonb))")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO labox_manifests (id, created_at, class_id, unpacker_name, tags) "
                f"VALUES {', '.join(rows)}"
            ),
            values,
        )
    return ids


async def entries(engine: AsyncEngine) -> set[tuple[str, str, datetime, uuid.UUID]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(f"SELECT key, value, created_at, manifest_id FROM {TABLE}")
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


def pairs(found: set[tuple[str, str, datetime, uuid.UUID]]) -> set[tuple[str, str]]:
    return {(key, value) for key, value, _, _ in found}


async def test_entries_follow_inserts_updates_and_deletes_of_any_writer(
    engine: AsyncEngine,
) -> None:
    [manifest_id] = await insert(engine, json.dumps(TAGS))
    found = await entries(engine)
    assert pairs(found) == INDEXED  # string values only; the run context's keys left out
    assert {(at, owner) for _, _, at, owner in found} == {(T0, manifest_id)}

    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE labox_manifests SET tags = CAST(:tags AS jsonb), created_at = :at "
                "WHERE id = :id"
            ),
            {"tags": json.dumps({"project": "beta"}), "at": T1, "id": manifest_id},
        )
    assert await entries(engine) == {("project", "beta", T1, manifest_id)}

    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM labox_manifests"))
    assert await entries(engine) == set()


async def test_one_statement_of_many_rows_gets_every_rows_entries(engine: AsyncEngine) -> None:
    ids = await insert(engine, *(json.dumps({"batch": f"b{n}", "n": "x"}) for n in range(50)))
    assert {(key, value, owner) for key, value, _, owner in await entries(engine)} == {
        *((("batch", f"b{n}", owner)) for n, owner in enumerate(ids)),
        *(("n", "x", owner) for owner in ids),
    }


async def task_names(engine: AsyncEngine) -> dict[tuple[str, uuid.UUID], str | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT key, manifest_id, task_name FROM {TABLE}"))
        return {(key, owner): task_name for key, owner, task_name in rows}


async def test_entries_carry_their_manifests_task_name_when_a_string(engine: AsyncEngine) -> None:
    task, no_string, none = await insert(
        engine,
        json.dumps({"prefect.task_name": "fit", "project": "p", "prefect.tag.gpu": "true"}),
        json.dumps({"prefect.task_name": ["fit"], "project": "p"}),
        json.dumps({"project": "p"}),
    )
    assert await task_names(engine) == {
        ("project", task): "fit",
        ("prefect.tag.gpu", task): "fit",
        ("project", no_string): None,
        ("project", none): None,
    }

    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE labox_manifests SET tags = CAST(:tags AS jsonb) WHERE id = :id"),
            {"tags": json.dumps({"prefect.task_name": "plot", "project": "p"}), "id": task},
        )
    assert (await task_names(engine))[("project", task)] == "plot"
    assert ("prefect.tag.gpu", task) not in await task_names(engine)


@pytest.mark.parametrize("document", ['["a", "b"]', '"text"', "3", "null"])
async def test_a_document_that_is_no_json_object_is_saved_without_entries(
    engine: AsyncEngine, document: str
) -> None:
    await insert(engine, document)
    assert await entries(engine) == set()


async def drop_tag_index(engine: AsyncEngine, *, table: bool = True) -> None:
    """The tag index gone, as in a database made before it existed (``table``) or with its
    triggers dropped."""
    async with engine.begin() as connection:
        for statement in DROP if table else DROP[:1]:
            await connection.execute(text(statement))


@pytest.mark.parametrize("table", [True, False], ids=["no index", "a trigger missing"])
async def test_create_all_makes_the_index_whole_with_the_existing_manifests(
    engine: AsyncEngine, table: bool
) -> None:
    [kept] = await insert(engine, json.dumps({"project": "old"}))
    await drop_tag_index(engine, table=table)
    [unseen] = await insert(engine, json.dumps({"project": "unseen"}))

    await BaseRecord.create_all(engine)
    await BaseRecord.create_all(engine)  # once made, left as it is

    assert {(key, value, owner) for key, value, _, owner in await entries(engine)} == {
        ("project", "old", kept),
        ("project", "unseen", unseen),
    }
    await insert(engine, json.dumps({"project": "new"}))
    assert ("project", "new") in pairs(await entries(engine))
