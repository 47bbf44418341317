"""What the tag indexes cost saves: with them (as shipped) against without.

``--index ordered`` (the default): the four ordered tag indexes. ``--index sqlite-tags``:
SQLite's tag index (``labox_prefect.core.sqlite_tags``: its table and triggers; SQLite only).
``--index postgresql-tags``: PostgreSQL's (``labox_prefect.core.postgresql_tags``: its table,
functions and triggers; PostgreSQL only). ``--index postgresql-task-index``: its index of the
entries of task results alone (``postgresql_tags.TASK_INDEX``; the rest kept; PostgreSQL only).
A bulk save (``new_saver``, one session) of ``--objects`` small values, each tagged as a
``labox_task`` result is (flow and task names, run ids, kind, a run tag, the result type)
plus a user tag, into a fresh database per round: the embedded SQLite file (the runtime's
inline connections and pragmas) and, unless ``--sqlite-only``, a PostgreSQL database
(``labox_bench_save`` on 127.0.0.1:5432 as role labox, created and dropped here).
``--single``: one ``save_one`` per value instead, each in a session of its own (one commit
each, as a task saves its result). "without" drops the measured indexes after the tables are
made. Rounds alternate A B A B; medians with min-max, and the ratio with / without. Nothing
is asserted.

Usage: ``python bench/tag_index_cost.py [--rounds 7] [--objects 1000] [--sqlite-only]
[--index ordered|sqlite-tags|postgresql-tags|postgresql-task-index] [--single]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from labox_prefect.core import BaseRecord, Registry, new_saver, postgresql_tags, save_one
from labox_prefect.core.builtin import MemoryStorage, StorableValue
from labox_prefect.core.database import ORDERED_TAG_INDEXES
from labox_prefect.core.sqlite_tags import TABLE, TRIGGERS
from labox_prefect.runtime import _tune_sqlite
from labox_prefect.sqlite_inline import create_inline_engine

SERVER = "postgresql://labox:labox@127.0.0.1:5432/"
DATABASE = "labox_bench_save"


def tags_of(number: int, run: str) -> dict[str, str]:
    return {
        "prefect.kind": "task",
        "prefect.flow_name": f"etl-{number % 7}",
        "prefect.flow_run_id": run,
        "prefect.flow_run_name": "brisk-otter",
        "prefect.task_name": f"clean_{number % 11}",
        "prefect.task_run_id": str(uuid.uuid4()),
        "prefect.tag.nightly": "true",
        "prefect.result_type": "builtins:dict",
        "project": "bench",
    }


def drops(index: str) -> list[str]:
    """The statements that remove the measured indexes."""
    if index == "ordered":
        return [f"DROP INDEX {ordered.name}" for ordered in ORDERED_TAG_INDEXES]
    if index == "postgresql-tags":
        return list(postgresql_tags.DROP)
    if index == "postgresql-task-index":
        return [f"DROP INDEX {postgresql_tags.TASK_INDEX}"]
    return [*(f"DROP TRIGGER {trigger}" for trigger in TRIGGERS), f"DROP TABLE {TABLE}"]


async def save_all(
    engine: AsyncEngine, objects: int, indexed: bool, index: str, single: bool
) -> float:
    await BaseRecord.create_all(engine)
    if not indexed:
        async with engine.begin() as connection:
            for statement in drops(index):
                await connection.execute(text(statement))
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    sessions = async_sessionmaker(engine)
    run = str(uuid.uuid4())
    values = [{"n": number, "name": f"value {number}"} for number in range(objects)]
    started = time.perf_counter()
    if single:
        for number, value in enumerate(values):
            async with sessions() as session:
                await save_one(
                    StorableValue(value),
                    session=session,
                    registry=registry,
                    tags=tags_of(number, run),
                )
        return time.perf_counter() - started
    async with sessions() as session, new_saver(session=session, registry=registry) as saver:
        for number, value in enumerate(values):
            saver.save_soon(StorableValue(value), tags_of(number, run))
    return time.perf_counter() - started


async def sqlite_round(objects: int, indexed: bool, index: str, single: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        url = make_url(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        engine = create_inline_engine(url)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        try:
            return await save_all(engine, objects, indexed, index, single)
        finally:
            await engine.dispose()


async def postgresql_round(objects: int, indexed: bool, index: str, single: bool) -> float:
    admin = await asyncpg.connect(SERVER + "postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
        engine = create_async_engine(f"postgresql+asyncpg://labox:labox@127.0.0.1:5432/{DATABASE}")
        try:
            return await save_all(engine, objects, indexed, index, single)
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.close()


def summary(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:.0f} ms ({low:.0f}-{high:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument(
        "--index",
        choices=["ordered", "sqlite-tags", "postgresql-tags", "postgresql-task-index"],
        default="ordered",
    )
    parser.add_argument("--single", action="store_true", help="one save_one per session")
    args = parser.parse_args()
    databases = {}
    if not args.index.startswith("postgresql-"):
        databases["SQLite"] = sqlite_round
    if not args.sqlite_only and args.index != "sqlite-tags":
        databases["PostgreSQL"] = postgresql_round
    for name, one_round in databases.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for indexed in (True, False):
                times[indexed].append(
                    asyncio.run(one_round(args.objects, indexed, args.index, args.single))
                )
        ratios = [w / wo for w, wo in zip(times[True], times[False], strict=True)]
        what = "one save_one per session" if args.single else "bulk save"
        print(
            f"{name}, {what} of {args.objects} tagged values, {args.rounds} rounds: "
            f"with the {args.index} tag indexes {summary(times[True])}, without "
            f"{summary(times[False])}; with / without "
            f"{statistics.median(times[True]) / statistics.median(times[False]):.2f}x "
            f"(per-round {min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
