"""find_results' query of this checkout against another checkout's, on query_scale's database.

For each query shape of ``query_scale.py``: rounds alternate A (``--against``'s
``labox_prefect/core/query.py`` find_manifests, in a session as that version's find_results
opened it: a transaction; ``--rows``: its find_manifest_rows, in a session as B's) and B
(this checkout's find_manifest_rows, in a session as find_results opens it now:
``results.lone_query``),
``--calls`` calls each with varied values; each round's p50 and p99. Printed: medians of the
rounds' p50 with min-max, the ratio A / B (median, per-round min-max), and the load average.

Needs the database ``query_scale.py --keep`` made (PostgreSQL, 1M manifests; ``--sqlite``:
its SQLite file). Run: ``python bench/query_ab.py --against ../main [--rounds 5] [--sqlite]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).parent))
import query_scale as scale

from labox_prefect.core.query import find_manifest_rows
from labox_prefect.results import lone_query
from labox_prefect.runtime import _tune_sqlite
from labox_prefect.sqlite_inline import create_inline_engine


def other_query(checkout: Path) -> ModuleType:
    """The other checkout's query module, importing this checkout's other modules."""
    path = checkout / "labox_prefect" / "core" / "query.py"
    spec = importlib.util.spec_from_file_location("labox_prefect.core._query_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def timed(
    sessions: async_sessionmaker[AsyncSession],
    find: Callable[..., Awaitable[list[Any]]],
    lone: bool,
    arguments: list[dict[str, Any]],
) -> list[float]:
    times = []
    for call in arguments:
        started = time.perf_counter()
        async with sessions() as session:
            if lone:
                await lone_query(session)
            await find(session, **call)
        times.append((time.perf_counter() - started) * 1e3)
    return times


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


async def main(args: argparse.Namespace) -> None:
    other = other_query(args.against)
    before = other.find_manifest_rows if args.rows else other.find_manifests
    if args.sqlite:
        engine = create_inline_engine(make_url(f"sqlite+aiosqlite:///{scale.SQLITE_PATH}"))
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        rows = scale.SQLITE_ROWS
    else:
        url = make_url(scale.SERVER_URL).set(database=scale.DATABASE)
        engine = create_async_engine(url, pool_size=2)
        rows = 1_000_000
    data = scale.regenerate(rows)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    try:
        for shape in scale.shapes(data):
            rng = random.Random(shape.name)
            arguments = [shape.make(rng) for _ in range(args.calls)]
            await timed(sessions, before, args.rows, arguments[:10])  # warm both
            await timed(sessions, find_manifest_rows, True, arguments[:10])
            p50s: dict[str, list[float]] = {"A": [], "B": []}
            p99s: dict[str, list[float]] = {"A": [], "B": []}
            loads = []
            for _ in range(args.rounds):
                loads.append(os.getloadavg()[0])
                for name, find, lone in (
                    ("A", before, args.rows),
                    ("B", find_manifest_rows, True),
                ):
                    times = await timed(sessions, find, lone, arguments)
                    p50s[name].append(statistics.median(times))
                    p99s[name].append(scale.percentile(times, 0.99))
            ratios = [a / b for a, b in zip(p50s["A"], p50s["B"], strict=True)]
            print(
                f"{shape.name}: p50 A {spread(p50s['A'])} ms, B {spread(p50s['B'])} ms; "
                f"A / B {statistics.median(p50s['A']) / statistics.median(p50s['B']):.2f}x "
                f"(per round {min(ratios):.2f}-{max(ratios):.2f}); p99 A {spread(p99s['A'])}, "
                f"B {spread(p99s['B'])}; load average {min(loads):.1f}-{max(loads):.1f}",
                flush=True,
            )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="timed calls per round")
    parser.add_argument("--sqlite", action="store_true", help="the SQLite file of --sqlite --keep")
    parser.add_argument(
        "--rows",
        action="store_true",
        help="A: the other checkout's find_manifest_rows in a session as find_results opens "
        "it now (lone_query), as B: only the query differs",
    )
    asyncio.run(main(parser.parse_args()))
