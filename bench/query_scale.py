"""find_manifests by tag over a million manifests on PostgreSQL, timed as users see it.

Targets (issue 7): every query shape answers in p50 <= 5 ms and p99 <= 25 ms over 1M records
on PostgreSQL; on the embedded SQLite (``--sqlite``, 100k records), p50 <= 20 ms.
find_results is one find_manifest_rows call in one async session readied by
``results.lone_query`` (autocommit on PostgreSQL), so that is what is timed here
(``--records``: find_manifests, ORM records): each call opens a session from a pooled async
engine, runs the query and builds the detached records, from Python. A fresh database gets
the production schema (migrations.aupgrade, with the GIN index on tags), then manifests with
the tags a Prefect deployment writes (flow and task names, run ids, run tags, a deployment)
plus user tags, and one content record each, loaded with COPY; then VACUUM ANALYZE. Each
query shape is timed over many calls with varied values (p50, p95, p99), beside a bare
``SELECT 1`` through the same session path (the floor any query pays). "matches" is how many
manifests a filter matches in all (the median of a sample); "again" is the p50 of each call
repeated at once, its pages still in PostgreSQL's buffers; "db p50" and "db max" are
PostgreSQL's own planning + execution time (EXPLAIN ANALYZE) over a sample of the calls:
what the plan costs, apart from the round trips and Python's share, which a loaded machine
inflates most. EXPLAIN ANALYZE shows two typical plans and the plan of the slowest call
(EXPLAIN QUERY PLAN on SQLite).

``--sqlite`` runs the same shapes on a SQLite file made as the embedded default makes it
(``BaseRecord.create_all``, the runtime's inline connections and pragmas), loaded with the
same manifests (no content records), at 100,000 manifests unless ``--rows`` says otherwise.
Run: .venv/bin/python bench/query_scale.py [--rows N | --quick] [--sqlite] [--keep | --reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from labox_prefect.core.database import BaseRecord, ManifestRecord
from labox_prefect.core.migrations import aupgrade
from labox_prefect.core.query import _tags_contain, find_manifest_rows, find_manifests
from labox_prefect.results import lone_query
from labox_prefect.runtime import _tune_sqlite
from labox_prefect.sqlite_inline import create_inline_engine

SERVER_URL = "postgresql+asyncpg://labox:labox@127.0.0.1:5432/"
DATABASE = os.environ.get("LABOX_BENCH_DATABASE", "labox_bench")
"""The database made and queried (``LABOX_BENCH_DATABASE``: another, e.g. beside another run)."""
TARGET_P50_MS = 5.0
TARGET_P99_MS = 25.0
SQLITE_TARGET_P50_MS = 20.0
SQLITE_ROWS = 100_000
SQLITE_PATH = Path(tempfile.gettempdir()) / "labox_bench.sqlite"
QUICK_ROWS = 50_000
MATCH_SAMPLE = 20
COPY_BATCH = 50_000
CLASS_ID = uuid.UUID("5e5e5e5e-7a7a-7a7a-0000-000000000001")

FLOW_WORDS = ["etl", "train", "score", "report", "ingest", "fold", "align", "export"]
TASK_WORDS = ["extract", "clean", "fit", "predict", "summarise", "plot", "upload", "join"]
RUN_TAGS = ["prod", "staging", "nightly", "hourly", "backfill", "gpu", "team-a", "team-b"]
ADJECTIVES = ["amber", "brisk", "calm", "dusky", "eager", "fuzzy", "gentle", "hazy"]
ANIMALS = ["panda", "otter", "heron", "lynx", "moth", "orca", "yak", "wren"]


@dataclass
class Dataset:
    """What was loaded, kept so that queries ask for values that exist."""

    flows: list[str] = field(default_factory=list)
    tasks_by_flow: dict[str, list[str]] = field(default_factory=dict)
    flow_runs: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    rows: int = 0


def generate(rows: int, seed: int = 7) -> Iterator[tuple[list[tuple[Any, ...]], Dataset]]:
    """Manifest rows in batches, as flow runs of a deployment write them, oldest first.

    60 flows (a few run far more often than the rest), 4 to 12 tasks each; a flow run saves
    1 to 40 results, its last one the flow's own; runs carry 0 to 3 Prefect tags, most have
    a deployment; user tags give a project, a stage, an experiment (1 in 2,000) and a batch
    (1 in 100,000: a rare tag).
    """
    rng = random.Random(seed)
    data = Dataset()
    data.flows = [f"{rng.choice(FLOW_WORDS)}-{n:02d}" for n in range(60)]
    for flow in data.flows:
        count = rng.randint(4, 12)
        data.tasks_by_flow[flow] = [f"{rng.choice(TASK_WORDS)}_{n}" for n in range(count)]
    weights = [1 / (rank + 1) for rank in range(len(data.flows))]  # Zipf-like popularity
    deployments = {flow: str(uuid.UUID(int=rng.getrandbits(128))) for flow in data.flows}
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / rows
    batch: list[tuple[Any, ...]] = []
    while data.rows < rows:
        flow = rng.choices(data.flows, weights)[0]
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        data.flow_runs.append(run_id)
        run = {
            "prefect.flow_name": flow,
            "prefect.flow_run_id": run_id,
            "prefect.flow_run_name": f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}",
        }
        if rng.random() < 0.7:
            run["prefect.deployment_id"] = deployments[flow]
            run["prefect.deployment_name"] = f"{flow}-deployment"
        run.update({f"prefect.tag.{t}": "true" for t in rng.sample(RUN_TAGS, rng.randint(0, 3))})
        user = {"project": f"project-{data.flows.index(flow) % 15}"}
        user["experiment"] = f"exp-{rng.randrange(2_000)}"
        results = min(rng.randint(1, 40), rows - data.rows)
        for number in range(results):
            tags = dict(run)
            if number < results - 1:
                tags["prefect.kind"] = "task"
                tags["prefect.task_name"] = rng.choice(data.tasks_by_flow[flow])
                tags["prefect.task_run_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
            else:
                tags["prefect.kind"] = "flow"
            tags.update(user, stage=rng.choice(["raw", "clean", "features", "report"]))
            tags["batch"] = f"b{rng.randrange(100_000):05d}"
            if len(data.batches) < 1_000 and rng.random() < 0.01:
                data.batches.append(tags["batch"])
            at = start + step * data.rows + timedelta(milliseconds=rng.randrange(1_000))
            manifest_id = uuid.UUID(int=rng.getrandbits(128))
            batch.append((manifest_id, at, CLASS_ID, "labox.value@v1", json.dumps(tags)))
            data.rows += 1
        if len(batch) >= COPY_BATCH or data.rows >= rows:
            yield batch, data
            batch = []


def content_rows(manifests: list[tuple[Any, ...]], rng: random.Random) -> list[tuple[Any, ...]]:
    """One content record per manifest, as a small JSON value in a file storage writes it."""
    rows = []
    for manifest_id, at, *_ in manifests:
        digest = f"{rng.getrandbits(256):064x}"
        rows.append(
            (
                uuid.UUID(int=rng.getrandbits(128)),
                at,
                manifest_id,
                "value",
                "application/json",
                None,
                rng.randrange(50, 5_000),
                digest,
                "sha256",
                "labox.json@v1",
                "{}",
                "value",
                "labox.file@v1",
                json.dumps({"key": f"{digest[:2]}/{digest}"}),
            )
        )
    return rows


MANIFEST_COLUMNS = ["id", "created_at", "class_id", "unpacker_name", "tags"]
CONTENT_COLUMNS = [
    "id",
    "created_at",
    "manifest_id",
    "content_key",
    "content_type",
    "content_encoding",
    "content_size",
    "content_hash",
    "content_hash_algorithm",
    "serializer_name",
    "serializer_config",
    "serializer_type",
    "storage_name",
    "storage_config",
]


def asyncpg_dsn(database: str) -> str:
    url = make_url(SERVER_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def recreate_database() -> None:
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()


async def drop_database() -> None:
    admin = await asyncpg.connect(asyncpg_dsn("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


async def load(rows: int, contents: bool) -> Dataset:
    connection = await asyncpg.connect(asyncpg_dsn(DATABASE))
    rng = random.Random(11)
    data = Dataset()
    try:
        for batch, data in generate(rows):
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "labox_manifests", records=batch, columns=MANIFEST_COLUMNS
                )
                if contents:
                    await connection.copy_records_to_table(
                        "labox_contents",
                        records=content_rows(batch, rng),
                        columns=CONTENT_COLUMNS,
                    )
            if data.rows % 250_000 < COPY_BATCH or data.rows == rows:
                print(f"  loaded {data.rows:,} / {rows:,} manifests", flush=True)
        await connection.execute("VACUUM ANALYZE labox_manifests")
        await connection.execute("VACUUM ANALYZE labox_contents")
        await connection.execute("VACUUM ANALYZE labox_manifest_tags")
    finally:
        await connection.close()
    return data


async def load_sqlite(engine: AsyncEngine, rows: int) -> Dataset:
    """The same manifests into SQLite through SQLAlchemy (its own encoding of ids, times, JSON)."""
    data = Dataset()
    table = ManifestRecord.__table__
    for batch, data in generate(rows):
        values = [
            {
                "id": manifest_id,
                "created_at": at,
                "class_id": class_id,
                "unpacker_name": unpacker,
                "tags": json.loads(tags),
            }
            for manifest_id, at, class_id, unpacker, tags in batch
        ]
        async with engine.begin() as connection:
            await connection.execute(insert(table), values)
        print(f"  loaded {data.rows:,} / {rows:,} manifests", flush=True)
    async with engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    return data


@dataclass(frozen=True)
class Shape:
    """A query as find_results would make it, with a fresh value for every call."""

    name: str
    make: Callable[[random.Random], dict[str, Any]]


def shapes(data: Dataset) -> list[Shape]:
    popular = data.flows[:5]
    return [
        Shape(
            "flow name, limit 20",
            lambda r: {"tags": {"prefect.flow_name": r.choice(popular)}, "limit": 20},
        ),
        Shape(
            "rare user tag (batch), limit 100",
            lambda r: {"tags": {"batch": r.choice(data.batches)}, "limit": 100},
        ),
        Shape(
            "flow run id, limit 100",
            lambda r: {"tags": {"prefect.flow_run_id": r.choice(data.flow_runs)}, "limit": 100},
        ),
        Shape("task name + Prefect tag, limit 100", lambda r: task_and_tag(r, data)),
        Shape("task name + user tag, limit 100", lambda r: task_and_project(r, data)),
        Shape(
            "flow name + kind=flow, limit 100",
            lambda r: {
                "tags": {"prefect.flow_name": r.choice(data.flows), "prefect.kind": "flow"},
                "limit": 100,
            },
        ),
    ]


def task_and_tag(rng: random.Random, data: Dataset) -> dict[str, Any]:
    flow = rng.choice(data.flows[:20])
    tags = {
        "prefect.task_name": rng.choice(data.tasks_by_flow[flow]),
        f"prefect.tag.{rng.choice(RUN_TAGS)}": "true",
    }
    return {"tags": tags, "limit": 100}


def task_and_project(rng: random.Random, data: Dataset) -> dict[str, Any]:
    """A task name with a project: mostly another flow's project, whose results carry the
    same task name rarely or never (a pair common in all, rare among the task's results)."""
    flow = rng.choice(data.flows[:20])
    tags = {
        "prefect.task_name": rng.choice(data.tasks_by_flow[flow]),
        "project": f"project-{rng.randrange(15)}",
    }
    return {"tags": tags, "limit": 100}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def time_calls(
    calls: int, call: Callable[[int], Awaitable[int]]
) -> tuple[list[float], list[int]]:
    for number in range(min(10, calls)):  # warm the pool, caches and prepared statements
        await call(-1 - number)
    times, counts = [], []
    for number in range(calls):
        started = time.perf_counter()
        counts.append(await call(number))
        times.append((time.perf_counter() - started) * 1e3)
    return times, counts


async def time_repeats(calls: int, call: Callable[[int], Awaitable[int]]) -> list[float]:
    """Each call timed right after the same call ran: its pages are in the server's buffers."""
    times = []
    for number in range(calls):
        await call(number)
        started = time.perf_counter()
        await call(number)
        times.append((time.perf_counter() - started) * 1e3)
    return times


async def matches(engine: AsyncEngine, arguments: list[dict[str, Any]]) -> float:
    """Median number of manifests the filters match in all (what a sort by time must read)."""
    counts = []
    async with AsyncSession(engine) as session:
        for call in arguments[:MATCH_SAMPLE]:
            found = select(func.count()).select_from(ManifestRecord)
            count = await session.scalar(
                found.where(_tags_contain(engine.dialect.name, call["tags"]))
            )
            counts.append(int(count or 0))
    return statistics.median(counts)


@dataclass
class Results:
    """Each shape's p50 and p99, and the slowest call of all (to show its plan)."""

    percentiles: list[tuple[str, float, float]] = field(default_factory=list)
    slowest: tuple[float, dict[str, Any]] = (0.0, {})


async def measure(engine: AsyncEngine, data: Dataset, calls: int, records: bool) -> Results:
    """Time every query shape (find_manifest_rows, as find_results; ``records``:
    find_manifests, ORM records); print a line each."""
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    query = find_manifests if records else find_manifest_rows

    async def select_one(_: int) -> int:
        async with sessions() as session:
            await lone_query(session)
            return len((await session.execute(text("SELECT 1"))).all())

    times, _ = await time_calls(calls, select_one)
    print(
        f"{'query':<36}{'matches':>9}{'rows':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'again':>9}{'db p50':>8}{'db max':>8}"
    )
    print(
        f"{'SELECT 1 (session floor)':<36}{'':>9}{1:>7}{statistics.median(times):>9.2f}"
        f"{percentile(times, 0.95):>9.2f}{percentile(times, 0.99):>9.2f}{max(times):>9.2f}"
    )
    results = Results()
    for shape in shapes(data):
        rng = random.Random(shape.name)
        arguments = [shape.make(rng) for _ in range(calls + 10)]

        async def find(number: int, arguments: list[dict[str, Any]] = arguments) -> int:
            async with sessions() as session:  # as find_results opens it
                await lone_query(session)
                return len(await query(session, **arguments[number]))

        times, counts = await time_calls(calls, find)
        again = await time_repeats(calls, find)
        p50, p99 = statistics.median(times), percentile(times, 0.99)
        results.percentiles.append((shape.name, p50, p99))
        worst = max(range(calls), key=times.__getitem__)
        if times[worst] > results.slowest[0]:
            results.slowest = (times[worst], arguments[worst])
        server = ""
        if engine.dialect.name == "postgresql":
            plans = await server_times(engine, arguments)
            server = f"{statistics.median(plans):>8.2f}{max(plans):>8.2f}"
        print(
            f"{shape.name:<36}{await matches(engine, arguments):>9,.0f}"
            f"{statistics.mean(counts):>7.1f}{p50:>9.2f}{percentile(times, 0.95):>9.2f}"
            f"{p99:>9.2f}{max(times):>9.2f}{statistics.median(again):>9.2f}{server}",
            flush=True,
        )
    return results


async def statement_of(engine: AsyncEngine, arguments: dict[str, Any]) -> tuple[str, Any]:
    """The very statement find_manifests sends for these arguments, with its parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    sessions = async_sessionmaker(engine)
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with sessions() as session:
            await find_manifests(session, **arguments)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return captured[-1]


async def server_times(engine: AsyncEngine, arguments: list[dict[str, Any]]) -> list[float]:
    """PostgreSQL's own planning + execution time (EXPLAIN ANALYZE) of a sample of calls:
    what the plan costs, apart from the round trips and Python's share (ms)."""
    times = []
    for call in arguments[:MATCH_SAMPLE]:
        statement, parameters = await statement_of(engine, call)
        async with engine.connect() as connection:
            plan = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
            )
            [document] = plan.scalar_one()
        times.append(document["Planning Time"] + document["Execution Time"])
    return times


async def explain(engine: AsyncEngine, arguments: dict[str, Any]) -> None:
    """EXPLAIN ANALYZE (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) of find_manifests' statement."""
    statement, parameters = await statement_of(engine, arguments)
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN (ANALYZE, BUFFERS)"
    async with engine.connect() as connection:
        plan = await connection.exec_driver_sql(f"{prefix} {statement}", parameters)
        print(f"{prefix} of find_manifests(**{arguments}):")
        for row in plan:
            print(f"  {row[-1]}")


def report(results: Results, rows: int, sqlite: bool) -> None:
    """Which shapes meet the targets."""
    if sqlite:
        targets = f"p50 <= {SQLITE_TARGET_P50_MS:g} ms"
        missed = [name for name, p50, _ in results.percentiles if p50 > SQLITE_TARGET_P50_MS]
    else:
        targets = f"p50 <= {TARGET_P50_MS:g} ms and p99 <= {TARGET_P99_MS:g} ms"
        missed = [
            name
            for name, p50, p99 in results.percentiles
            if p50 > TARGET_P50_MS or p99 > TARGET_P99_MS
        ]
    total = len(results.percentiles)
    print(
        f"target {targets} over {rows:,} manifests: met by {total - len(missed)} of {total} "
        f"query shapes" + (f"; NOT met by: {', '.join(missed)}" if missed else "")
    )


async def main(args: argparse.Namespace) -> None:
    if args.sqlite:
        await main_sqlite(args)
        return
    url = make_url(SERVER_URL).set(database=DATABASE)
    print(f"{args.rows:,} manifests on PostgreSQL ({url.render_as_string()})")
    if not args.reuse:
        await recreate_database()
    engine = create_async_engine(url, pool_size=2)
    try:
        started = time.perf_counter()
        await aupgrade(engine)  # a kept database gets the newest schema too
        if args.reuse:
            data = regenerate(args.rows)
            print(f"  migrated: {time.perf_counter() - started:.0f} s")
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE labox_manifests, labox_manifest_tags"))
        else:
            data = await load(args.rows, contents=not args.no_contents)
            print(f"  schema, load and VACUUM ANALYZE: {time.perf_counter() - started:.0f} s")
        async with engine.connect() as connection:
            size = (
                await connection.execute(
                    text(
                        "SELECT pg_size_pretty(pg_total_relation_size('labox_manifests')) "
                        "|| ', the tag index ' || "
                        "pg_size_pretty(pg_total_relation_size('labox_manifest_tags'))"
                    )
                )
            ).scalar_one()
            buffers = (await connection.execute(text("SHOW shared_buffers"))).scalar_one()
        print(
            f"  labox_manifests with its indexes: {size}; {len(data.flow_runs):,} flow runs; "
            f"server shared_buffers {buffers}"
        )
        await measure_and_explain(engine, data, args)
    finally:
        await engine.dispose()
        if args.keep or args.reuse:
            print(f"kept database {DATABASE}")
        else:
            await drop_database()


async def main_sqlite(args: argparse.Namespace) -> None:
    rows = args.rows if args.rows_given else SQLITE_ROWS
    args.rows = rows
    print(f"{rows:,} manifests on SQLite ({SQLITE_PATH})")
    if not args.reuse:
        SQLITE_PATH.unlink(missing_ok=True)
    engine = create_inline_engine(make_url(f"sqlite+aiosqlite:///{SQLITE_PATH}"))
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    try:
        started = time.perf_counter()
        await BaseRecord.create_all(engine)  # as the embedded default makes its tables
        if args.reuse:
            data = regenerate(rows)
        else:
            data = await load_sqlite(engine, rows)
            print(f"  schema, load and ANALYZE: {time.perf_counter() - started:.0f} s")
        print(f"  file: {SQLITE_PATH.stat().st_size / 2**20:.0f} MiB")
        await measure_and_explain(engine, data, args)
    finally:
        await engine.dispose()
        if args.keep or args.reuse:
            print(f"kept {SQLITE_PATH}")
        else:
            SQLITE_PATH.unlink(missing_ok=True)


def regenerate(rows: int) -> Dataset:
    data = next(data for _, data in generate(rows) if data.rows == rows)
    print(f"  reusing the loaded database; values regenerated ({data.rows:,} rows)")
    return data


async def measure_and_explain(engine: AsyncEngine, data: Dataset, args: argparse.Namespace) -> None:
    results = await measure(engine, data, args.calls, args.records)
    rng = random.Random(3)
    await explain(engine, {"tags": {"batch": rng.choice(data.batches)}, "limit": 100})
    await explain(engine, {"tags": {"prefect.flow_name": data.flows[0]}, "limit": 20})
    milliseconds, arguments = results.slowest
    print(f"slowest call of all: {milliseconds:.1f} ms; its plan now:")
    await explain(engine, arguments)
    report(results, args.rows, engine.dialect.name == "sqlite")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, help="manifests to load (1,000,000; 100,000 SQLite)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} manifests")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per query")
    parser.add_argument("--keep", action="store_true", help=f"keep database {DATABASE}")
    parser.add_argument("--no-contents", action="store_true", help="load manifests only")
    parser.add_argument(
        "--records", action="store_true", help="time find_manifests (ORM records) instead"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="query a database kept by --keep (same --rows)"
    )
    arguments = parser.parse_args()
    arguments.rows_given = arguments.rows is not None
    if arguments.rows is None:
        arguments.rows = 1_000_000
    if arguments.quick:
        arguments.rows = QUICK_ROWS
    asyncio.run(main(arguments))
