"""The fault suite's skeleton: savers killed with SIGKILL at random moments lose nothing.

Short rounds run by default; ``LABOX_FAULT_ROUNDS=N`` runs N (the long rounds). Each round
starts a process that saves batches of random blobs (SQLite + files) in a loop, collects
garbage with the default grace period while it saves, kills it with SIGKILL at a random
moment, then checks: every manifest loads and verifies, garbage
collection removes the orphans the kill left (blobs written before their records, and
temporary files of the interrupted write), and every manifest still loads and verifies
after it. The figures (rounds, records, orphans collected, lost) are printed.

Still to come (issue 8, item 5): streams and ``labox_task`` flows, PostgreSQL + S3, S3
stopped mid-save, terminated backends, 4 x 16 concurrent identical outputs, tampering,
hypothesis over ids and stored pointers.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from labox_prefect.core import (
    BaseRecord,
    ManifestRecord,
    Registry,
    collect_garbage,
    new_loader,
    verify_manifests,
)
from labox_prefect.core.builtin import FileStorage
from labox_prefect.core.lifecycle import DEFAULT_GRACE

ROUNDS = int(os.environ.get("LABOX_FAULT_ROUNDS", "2"))

SAVER = """
import asyncio, os, sys
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from labox_prefect.core import Registry, new_saver
from labox_prefect.core.builtin import FileStorage, StorableValue

async def main(database, folder):
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    registry = Registry(modules=["labox_prefect.core.builtin"], inline_max_size=0,
                        default_storage=FileStorage(folder))
    sessions = async_sessionmaker(engine)
    first = True
    while True:
        async with sessions() as session, new_saver(session=session, registry=registry) as saver:
            for _ in range(20):
                saver.save_soon(StorableValue(os.urandom(int.from_bytes(os.urandom(2)) + 1)))
        if first:
            print("ready", flush=True)
            first = False

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def kill_a_saver_at_random(
    database: Path, folder: Path, registry: Registry, rng: random.Random
) -> None:
    """Run a saver, collect garbage (default grace) while it saves, then SIGKILL it."""
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(database), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert saver.stdout is not None
    assert saver.stdout.readline().strip() == "ready"
    asyncio.run(collect(database, registry, grace=DEFAULT_GRACE))
    time.sleep(rng.uniform(0.0, 0.5))
    saver.send_signal(signal.SIGKILL)
    saver.wait()


async def check_everything_loads(database: Path, registry: Registry) -> int:
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with async_sessionmaker(engine)() as session:
            ids = list(await session.scalars(select(ManifestRecord.id)))
            report = await verify_manifests(session, registry)
            assert report.ok, report.problems[:3]
            async with new_loader(session=session, registry=registry) as loader:
                futures = [loader.load_soon(manifest_id) for manifest_id in ids]
            assert all(isinstance(f.value.value, bytes) for f in futures)
            return len(ids)
    finally:
        await engine.dispose()


async def collect(database: Path, registry: Registry, *, grace: timedelta) -> int:
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with async_sessionmaker(engine)() as session:
            report = await collect_garbage(session, registry, grace=grace)
            assert report.errors == []
            return report.deleted + report.temporary
    finally:
        await engine.dispose()


async def count(database: Path) -> int:
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with async_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(ManifestRecord)) or 0)
    finally:
        await engine.dispose()


def test_savers_killed_at_random_moments_lose_nothing(tmp_path: Path) -> None:
    database, folder = tmp_path / "faults.db", tmp_path / "blobs"
    registry = Registry(
        modules=["labox_prefect.core.builtin"],
        inline_max_size=0,
        default_storage=FileStorage(folder),
    )

    async def create() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        await BaseRecord.create_all(engine)
        await engine.dispose()

    asyncio.run(create())
    rng = random.Random(8)
    collected = lost = records = 0
    for _ in range(ROUNDS):
        kill_a_saver_at_random(database, folder, registry, rng)
        before = asyncio.run(check_everything_loads(database, registry))
        collected += asyncio.run(collect(database, registry, grace=timedelta(0)))
        records = asyncio.run(check_everything_loads(database, registry))
        lost += before - records
        assert asyncio.run(count(database)) == records
    print(
        f"\nfault rounds: {ROUNDS} (kill -9 of a bulk saver during gc, SQLite + files); records: "
        f"{records}; orphans collected: {collected}; lost: {lost}"
    )
    assert lost == 0
    assert records >= 20 * ROUNDS
