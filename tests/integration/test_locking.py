"""LaboxLockManager: identical concurrent cache misses compute once, in threads and processes.

Each concurrency test makes the overlap certain instead of hoping for it: without a lock
manager, the computations meet at a barrier (so all N run at once); with one, the first
computation waits until every task run has asked for the lock, so the others are waiting
on it while the first computes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.cache_policies import INPUTS
from prefect.settings import get_current_settings
from prefect.task_runners import ThreadPoolTaskRunner

from labox_prefect import LaboxLockManager, labox_task
from labox_prefect.locking import advisory_key
from labox_prefect.target import Target
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend

RUNS = 4
PATIENCE = 120.0  # seconds a test waits for something that must happen, before it fails


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


class CountingLocks(LaboxLockManager):
    """Counts the lock requests, so a computation can wait until every run asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self._count = threading.Lock()

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        with self._count:
            self.asked += 1
        return super().acquire_lock(key, holder, acquire_timeout, hold_timeout)


def _run_together(task: Any, salt: str) -> list[Any]:
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=RUNS))
    def together() -> list[Any]:
        futures = [task.submit(7, salt) for _ in range(RUNS)]
        return [future.result() for future in futures]

    results: list[Any] = together()
    return results


def test_without_a_lock_manager_every_identical_miss_computes(backend: Backend) -> None:
    salt = uuid.uuid4().hex
    computed: list[int] = []
    all_in = threading.Barrier(RUNS, timeout=PATIENCE)

    @labox_task(tags={"lock-test": salt}, cache_policy=INPUTS)
    def expensive(x: int, salt: str) -> dict[str, Any]:
        all_in.wait()  # every run is computing at once: all of them missed the cache
        computed.append(x)
        return {"x": x, "salt": salt}

    results = _run_together(expensive, salt)

    assert results == [{"x": 7, "salt": salt}] * RUNS
    assert len(computed) == RUNS
    assert len(manifests(**{"lock-test": salt})) == RUNS


def test_under_the_lock_manager_identical_misses_compute_once(backend: Backend) -> None:
    salt = uuid.uuid4().hex
    computed: list[int] = []
    locks = CountingLocks()
    policy = INPUTS.configure(lock_manager=locks, isolation_level="SERIALIZABLE")

    @labox_task(tags={"lock-test": salt}, cache_policy=policy)
    def expensive(x: int, salt: str) -> dict[str, Any]:
        _wait_until(lambda: locks.asked >= RUNS, "every run asked for the lock")
        computed.append(x)
        return {"x": x, "salt": salt}

    results = _run_together(expensive, salt)

    assert results == [{"x": 7, "salt": salt}] * RUNS
    assert computed == [7]
    assert len(manifests(**{"lock-test": salt})) == 1


_FLOW_RUN = """
import sys, time
from pathlib import Path
from prefect import flow
from prefect.cache_policies import INPUTS
from labox_prefect import LaboxLockManager, labox_task

shared, salt = Path(sys.argv[1]), sys.argv[2]

class Announcing(LaboxLockManager):
    def acquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None):
        with open(shared / "asked", "a") as log:
            log.write("asked\\n")
        return super().acquire_lock(key, holder, acquire_timeout, hold_timeout)

policy = INPUTS.configure(lock_manager=Announcing(), isolation_level="SERIALIZABLE")

@labox_task(tags={"lock-test": salt}, cache_policy=policy)
def expensive(salt: str) -> dict:
    deadline = time.monotonic() + 120
    while (shared / "asked").read_text().count("asked") < 2:
        assert time.monotonic() < deadline, "the other process never asked for the lock"
        time.sleep(0.02)
    with open(shared / "computed", "a") as log:
        log.write("computed\\n")
    return {"salt": salt}

@flow
def one(salt: str) -> dict:
    return expensive(salt)

print("result", one(salt)["salt"])
"""


def _environment(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),  # the test harness's API
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **extra,
    }


def test_identical_misses_in_two_processes_compute_once(backend: Backend, tmp_path: Path) -> None:
    salt = uuid.uuid4().hex
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _FLOW_RUN, str(tmp_path), salt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=4 * PATIENCE) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == [f"result {salt}"] * 2
    assert (tmp_path / "computed").read_text().count("computed") == 1
    assert len(manifests(**{"lock-test": salt})) == 1


_HOLDER = """
import sys, time
from labox_prefect import LaboxLockManager

locks = LaboxLockManager()
assert locks.acquire_lock(sys.argv[1], "doomed")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_lock_whose_holder_dies_is_released(backend: Backend) -> None:
    key = f"dying-{uuid.uuid4()}"
    locks = LaboxLockManager(Target.from_settings())
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, key],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_API_URL": ""},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        assert locks.is_locked(key)
        assert not locks.acquire_lock(key, "me", acquire_timeout=0)
    finally:
        holder.kill()
        holder.wait()

    assert locks.acquire_lock(key, "me", acquire_timeout=PATIENCE)
    locks.release_lock(key, "me")
    assert not locks.is_locked(key)


def test_acquire_timeouts_holders_and_waiting(backend: Backend) -> None:
    key = f"timeouts-{uuid.uuid4()}"
    locks = LaboxLockManager(Target.from_settings())
    assert not locks.is_locked(key)
    assert locks.wait_for_lock(key, 0)

    assert locks.acquire_lock(key, "a")
    assert locks.acquire_lock(key, "a")  # its holder may ask again
    assert locks.is_locked(key)
    assert locks.is_lock_holder(key, "a")
    assert not locks.is_lock_holder(key, "b")
    assert not locks.acquire_lock(key, "b", acquire_timeout=0)
    assert not locks.acquire_lock(key, "b", acquire_timeout=0.2)
    assert not locks.wait_for_lock(key, timeout=0.2)

    locks.release_lock(key, "b")  # not b's: left alone
    assert locks.is_lock_holder(key, "a")
    locks.release_lock(key, "a")
    assert not locks.is_locked(key)
    assert locks.wait_for_lock(key, timeout=0)
    assert locks.acquire_lock(key, "b", acquire_timeout=0)
    locks.release_lock(key, "b")


def test_a_hold_timeout_lets_the_next_holder_in(backend: Backend) -> None:
    key = f"hold-{uuid.uuid4()}"
    locks = LaboxLockManager(Target.from_settings())
    assert locks.acquire_lock(key, "a", hold_timeout=0.3)

    assert locks.acquire_lock(key, "b", acquire_timeout=PATIENCE)  # once a's hold ran out
    assert locks.is_lock_holder(key, "b")
    assert not locks.is_lock_holder(key, "a")
    locks.release_lock(key, "a")  # too late: a no-op, b keeps it
    assert locks.is_lock_holder(key, "b")
    locks.release_lock(key, "b")
    assert not locks.is_locked(key)


async def test_the_async_interface_waits_for_the_lock(backend: Backend) -> None:
    key = f"async-{uuid.uuid4()}"
    locks = LaboxLockManager(Target.from_settings())
    assert await locks.aacquire_lock(key, "a")
    assert not await locks.aacquire_lock(key, "b", acquire_timeout=0)
    assert not await locks.await_for_lock(key, timeout=0.1)
    locks.release_lock(key, "a")
    assert await locks.await_for_lock(key)
    assert await locks.aacquire_lock(key, "b", acquire_timeout=0)
    locks.release_lock(key, "b")


@pytest.mark.parametrize("key", ["", "a", "cache-key-" + "x" * 500])
def test_advisory_keys_are_signed_64_bit(key: str) -> None:
    value = advisory_key(key)
    assert -(2**63) <= value < 2**63
    assert advisory_key(key) == value
    assert advisory_key(key + "!") != value
