"""The fault suite's ``labox_task`` scenario (issue 8, item 5): kill -9 of flow processes.

Each round starts a process that runs a flow of many small ``labox_task`` outputs (dicts,
and a DataFrame every fifth task) on this test's Prefect API (the session's harness) and
its own SQLite database and blob folder (LABOX_DATABASE_URL, LABOX_STORAGE_URL). The
process prints each result's manifest id once its task has completed; the test SIGKILLs it
after a seeded random delay. After each round: every record loads (``find_results`` +
``ref.load()``) and verifies, every id printed before the kill is there (lost = 0), garbage
collection with no grace removes the orphans, and a dry run then finds none. The figures
(rounds, records, lost, orphans collected) go to the terminal summary, with those of
tests/core/test_faults.py.

Short rounds by default; ``LABOX_FAULT_ROUNDS=N`` runs N. Waits are bounded, the process is
always reaped, nothing is timed. Only SQLite + files: a flow process on PostgreSQL + S3
costs the same seconds again, and the core scenarios already kill savers there.
"""

from __future__ import annotations

import os
import random
import select as io_select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL

from labox_prefect import find_results
from labox_prefect.core import collect_garbage, verify_manifests
from labox_prefect.core.lifecycle import GarbageReport, VerifyReport
from labox_prefect.persistence import registry_for
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target
from tests.core.test_faults import NO_GRACE, PROCESS_TIMEOUT, figures, rounds
from tests.integration.conftest import Backend

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
STEPS = 1000
"""Tasks per flow run: more than a round lasts, so the kill lands mid-flow."""


@dataclass
class FlowProcess:
    """A flow process started by the test; what it printed, line by line."""

    process: subprocess.Popen[bytes]
    log: Path
    committed: set[uuid.UUID] = field(default_factory=set)
    pending: bytes = b""

    def _read_more(self) -> bytes:
        """Bytes it printed since the last read (b"" once it is dead), waiting a bounded time."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = io_select.select([fd], [], [], PROCESS_TIMEOUT)
        assert ready, f"the flow said nothing for {PROCESS_TIMEOUT:.0f} s: {self.log}"
        return os.read(fd, 1 << 16)

    def read_line(self) -> str:
        while b"\n" not in self.pending:
            more = self._read_more()
            assert more, f"the flow died ({self.process.poll()}): {self.log.read_text()[-2000:]}"
            self.pending += more
        line, self.pending = self.pending.split(b"\n", 1)
        self.take(line.decode())
        return line.decode().strip()

    def take(self, lines: str) -> None:
        """Note the manifest ids among ``lines`` (Prefect may print other lines)."""
        for line in lines.splitlines():
            manifest_id = _uuid_or_none(line.strip())
            if manifest_id is not None:
                self.committed.add(manifest_id)

    def wait_for(self, wanted: Any) -> None:
        while not wanted(self.read_line()):
            pass

    def kill(self) -> None:
        """SIGKILL it, read what it printed before, and reap it."""
        os.killpg(self.process.pid, signal.SIGKILL)
        while more := self._read_more():
            self.pending += more
        self.take(self.pending.decode())
        self.pending = b""
        self.process.wait(PROCESS_TIMEOUT)
        assert self.process.returncode == -signal.SIGKILL


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@pytest.fixture
def start_flow(backend: Backend, tmp_path: Path) -> Iterator[Any]:
    """Start flow processes on this test's Prefect API and Labox settings; each one is
    killed (its whole process group) and reaped when the test ends."""
    env = {
        **os.environ,
        "LABOX_DATABASE_URL": backend.database_url,
        "LABOX_STORAGE_URL": backend.storage_url,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    started: list[FlowProcess] = []

    def start(seed: int) -> FlowProcess:
        log = tmp_path / f"flow-{len(started)}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration._task_fault_flow", str(seed), str(STEPS)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own process group: killpg reaches all of it
            )
        flow = FlowProcess(process, log)
        started.append(flow)
        return flow

    yield start
    for flow in started:
        if flow.process.poll() is None:
            os.killpg(flow.process.pid, signal.SIGKILL)
        flow.process.wait(PROCESS_TIMEOUT)
        assert flow.process.stdout is not None
        flow.process.stdout.close()


# --- checks after each round ----------------------------------------------------------------


async def _verify(target: Target) -> VerifyReport:
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        return await verify_manifests(session, registry_for(target))


async def _collect(target: Target, *, dry_run: bool) -> GarbageReport:
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        return await collect_garbage(session, registry_for(target), grace=NO_GRACE, dry_run=dry_run)


def audit(target: Target) -> set[uuid.UUID]:
    """Every record loads back and verifies; their manifest ids."""
    refs = find_results(limit=None, block=target)
    for ref in refs:
        ref.load()
    report = get_runtime().run(_verify(target))
    assert report.ok, report.problems[:3]
    return {ref.manifest_id for ref in refs}


def settle_round(target: Target, committed: set[uuid.UUID]) -> tuple[int, int]:
    """The checks after a round: (records, orphans collected). Raises on any loss."""
    before = audit(target)
    assert committed <= before, f"lost: {sorted(committed - before)[:3]}"
    collected = get_runtime().run(_collect(target, dry_run=False))
    assert collected.errors == []
    after = audit(target)
    assert after == before
    left = get_runtime().run(_collect(target, dry_run=True))
    assert left.unreferenced + left.temporary == 0
    return len(after), collected.deleted + collected.temporary


def test_labox_task_flows_killed_at_random_moments_lose_nothing(
    fault_figures: list[str], backend: Backend, start_flow: Any
) -> None:
    target = Target(database_url=backend.database_url, storage_url=backend.storage_url)
    rng = random.Random(f"kill labox_task flows {backend.name}")
    count = rounds(2)
    committed: set[uuid.UUID] = set()
    records = orphans = 0
    for _ in range(count):
        flow = start_flow(rng.randrange(2**31))
        flow.wait_for(lambda line: line == "ready")
        flow.wait_for(lambda line: _uuid_or_none(line) is not None)  # a first result is in
        time.sleep(rng.uniform(0.0, 2.0))
        flow.kill()
        committed |= flow.committed
        records, collected = settle_round(target, committed)
        orphans += collected
    lost = len(committed - audit(target))
    figures(
        fault_figures,
        f"kill -9 of labox_task flows ({backend.name}+files)",
        rounds=count,
        records=records,
        lost=lost,
        orphans=orphans,
    )
    assert lost == 0
    assert records >= len(committed) >= count
