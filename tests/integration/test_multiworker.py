"""The real thing: ``prefect server start``, two process workers, deployments/prefect.yaml.

On PostgreSQL and the suite's S3 server, as a production set-up would use them:

- the deployments of ``deployments/prefect.yaml`` deploy with ``prefect deploy``, and
  ``deployments/serve.py`` registers its own beside them, leaving theirs as deployed;
- eight ``compute-once`` flow runs are started at once, split over the two workers (one
  queue each in the one pool): six fold one sequence, two another, three and one per worker.
  The test holds both cache keys' locks until all eight task runs wait for them, so all eight
  are certainly identical concurrent cache misses under LaboxLockManager;
- every flow run ends Completed; each sequence was computed exactly once (one task run
  Completed, with exactly one record; the others Cached, with none of their own);
- each key's Cached task runs on the other worker resolved to the record written on the
  first one (Prefect's storage key of their result maps to that manifest);
- ``find_results`` finds the records by deployment and by flow run;
- the flow runs' connections (by their application_name in ``pg_stat_activity``) stay within
  runs x (LABOX_DB_POOL_SIZE + LABOX_DB_MAX_OVERFLOW + one lock).

Part of every run of the suite: about 75 s here (2 shared cores, load 5-7), of which
about 30 s set-up (server, ``prefect deploy``, workers) and 40-45 s per round of eight runs
(each flow run is a Python process). ``LABOX_TEST_MULTIWORKER_ROUNDS=N`` repeats the round
N times on the same set-up, with fresh sequences, to look for rare failures.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
import yaml
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.context import TaskRunContext
from prefect.deployments.runner import RunnerDeployment
from prefect.results import ResultRecordMetadata

from labox_prefect import LaboxLockManager, find_results
from labox_prefect.context import DEPLOYMENT_NAME, FLOW_RUN_ID, TASK_RUN_ID
from labox_prefect.locking import advisory_key
from labox_prefect.results import ResultRef
from labox_prefect.settings import current_settings
from labox_prefect.target import Target
from tests.integration._helpers import ConnectionSampler, dsn, result_key
from tests.integration._workers import (
    PATIENCE,
    ROOT,
    Server,
    Wanted,
    deploy,
    prefect_server,
    prepare_pool,
    process_workers,
    read_runs,
    scratch_database,
    start_runs,
    wait_for_runs,
)
from tests.integration.conftest import Backend
from tests.integration.test_flows import compute_once

pytestmark = [pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)]

QUEUES = ("a", "b")
DEPLOYMENT = "compute-once/compute-once"


def test_two_workers_eight_runs_compute_each_key_once(backend: Backend, tmp_path: Path) -> None:
    rounds = int(os.environ.get("LABOX_TEST_MULTIWORKER_ROUNDS", "1"))
    name = f"labox-mw-{uuid.uuid4().hex[:8]}"
    labox_env = {k: v for k, v in os.environ.items() if k.startswith(("LABOX_", "AWS_"))}
    labox_env["LABOX_DB_APPLICATION_NAME"] = name
    variables = {
        "labox_database_url": backend.database_url,
        "labox_storage_url": backend.storage_url,
    }
    with (
        scratch_database("prefect") as prefect_database,
        prefect_server(tmp_path / "prefect", prefect_database, labox_env) as server,
    ):
        prepare_pool(server, QUEUES, variables)
        with process_workers(server, {f"worker-{queue}": queue for queue in QUEUES}, limit=4):
            deploy(server)  # while the workers start
            _check_deployments(server, backend)
            for _ in range(rounds):
                _round(server, backend, name)


def _check_deployments(server: Server, backend: Backend) -> None:
    """prefect.yaml's deployments as deployed, also after serve.py registered its own."""
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    entrypoints = {entry["name"]: entry["entrypoint"] for entry in spec["deployments"]}
    with server.client() as client:
        served = _served_deployments()
        for runner_deployment in served:
            runner_deployment.apply()
        deployed = {
            f"{client.read_flow(deployment.flow_id).name}/{deployment.name}": deployment
            for deployment in client.read_deployments()
        }
    from_yaml = {
        full_name: deployment
        for full_name, deployment in deployed.items()
        if entrypoints.get(deployment.name) == deployment.entrypoint
    }
    served_names = {f"{deployment.flow_name}/{deployment.name}" for deployment in served}
    assert sorted(d.name for d in from_yaml.values()) == sorted(entrypoints)
    assert served_names <= deployed.keys()
    assert not served_names & from_yaml.keys(), "serve.py reuses names of prefect.yaml"
    for full_name, deployment in from_yaml.items():  # as prefect deploy left them
        assert deployment.work_pool_name == "labox-process", full_name
        env = (deployment.job_variables or {})["env"]
        assert env["LABOX_DATABASE_URL"] == backend.database_url, full_name
        assert env["LABOX_STORAGE_URL"] == backend.storage_url, full_name


def _round(server: Server, backend: Backend, name: str) -> None:
    sequences = [f"MKT{uuid.uuid4().hex[:10].upper()}", f"MKV{uuid.uuid4().hex[:10].upper()}"]
    wanted = [
        *(Wanted({"sequence": sequences[0]}, queue) for queue in QUEUES for _ in range(3)),
        *(Wanted({"sequence": sequences[1]}, queue) for queue in QUEUES),
    ]
    waiters = Counter(run.parameters["sequence"] for run in wanted)
    keys = {sequence: _cache_key(sequence) for sequence in sequences}
    started = datetime.now(UTC)
    with server.client() as client, ConnectionSampler(backend.database_url, name) as sampler:
        with _held(keys.values()):
            ids = start_runs(client, DEPLOYMENT, wanted)
            _wait_until_all_wait(server, client, ids, {keys[s]: waiters[s] for s in sequences})
        runs = wait_for_runs(client, ids)  # the locks are free: one computes, the others load
        folds = _fold_task_runs(client, runs)

    assert [run.state_name for run in runs] == ["Completed"] * len(runs), _failure(server, runs)
    assert Counter(run.work_queue_name for run in runs) == {"a": 4, "b": 4}
    settings = current_settings()
    bound = len(runs) * (settings.db_pool_size + settings.db_max_overflow + 1)
    print(f"at most {max(sampler.counts)} connections for {len(runs)} flow runs (bound {bound})")
    assert 1 <= max(sampler.counts) <= bound

    target = Target.from_settings()
    queue_of = {run.id: run.work_queue_name for run in runs}
    sequence_of = {run.id: run.parameters["sequence"] for run in runs}
    records: dict[str, list[ResultRef]] = {sequence: [] for sequence in sequences}
    for ref in find_results(task_name="fold", since=started, limit=None, block=target):
        records.setdefault(ref.load()["sequence"], []).append(ref)
    by_deployment = find_results(
        tags={DEPLOYMENT_NAME: DEPLOYMENT}, since=started, limit=None, block=target
    )
    for sequence in sequences:
        mine = [task for task in folds if sequence_of[_flow_run_id(task)] == sequence]
        assert Counter(task.state_name for task in mine) == {
            "Completed": 1,  # one computation...
            "Cached": waiters[sequence] - 1,
        }
        (record,) = records[sequence]  # ... one record
        (computed,) = [task for task in mine if task.state_name == "Completed"]
        assert record.tags[TASK_RUN_ID] == str(computed.id)
        assert record.tags[FLOW_RUN_ID] == str(computed.flow_run_id)
        cached = [task for task in mine if task.state_name == "Cached"]
        for task in cached:  # each Cached result is that record...
            assert _manifest_of(task) == record.manifest_id
        elsewhere = {queue_of[_flow_run_id(task)] for task in cached} - {
            queue_of[_flow_run_id(computed)]
        }
        assert elsewhere  # ... also on the worker that did not compute it
        assert record.manifest_id in {ref.manifest_id for ref in by_deployment}
    computing = {_flow_run_id(task) for task in folds if task.state_name == "Completed"}
    for run in runs:  # one record per completed task run, none for a cache hit
        found = find_results(flow_run_id=run.id, limit=None, block=target)
        assert [ref.tags[FLOW_RUN_ID] for ref in found] == [str(run.id)] * (run.id in computing)


def _flow_run_id(task_run: TaskRun) -> uuid.UUID:
    assert task_run.flow_run_id is not None
    return task_run.flow_run_id


def _fold_task_runs(client: SyncPrefectClient, runs: list[FlowRun]) -> list[TaskRun]:
    """The ``fold`` task runs of ``runs`` once the server recorded all of them as final
    (task runs reach the server as events, a moment after their flow run ended)."""
    wanted = FlowRunFilter(id=FlowRunFilterId(any_=[run.id for run in runs]))
    deadline_at = time.monotonic() + PATIENCE
    while True:
        task_runs = [
            task_run
            for task_run in client.read_task_runs(flow_run_filter=wanted)
            if task_run.name.startswith("fold-")
        ]
        if len(task_runs) == len(runs) and all(
            task_run.state is not None and task_run.state.is_final() for task_run in task_runs
        ):
            return task_runs
        assert time.monotonic() < deadline_at, [(t.name, t.state_name) for t in task_runs]
        time.sleep(0.5)


def _manifest_of(task_run: TaskRun) -> uuid.UUID | None:
    """The manifest Prefect's result of ``task_run`` resolves to, by its storage key."""
    assert task_run.state is not None
    data: Any = task_run.state.data
    metadata = ResultRecordMetadata.model_validate(data)
    assert metadata.storage_key is not None
    found = result_key(metadata.storage_key)
    return None if found is None else found.manifest_id


def _cache_key(sequence: str) -> str:
    """The cache key (so the lock key) of ``fold(sequence)``, as its policy computes it."""
    task_context = cast(TaskRunContext, None)  # the INPUTS policy reads only the inputs
    key = compute_once.ONCE.compute_key(task_context, {"sequence": sequence}, {})
    assert key is not None
    return key


@contextmanager
def _held(keys: Iterable[str]) -> Iterator[None]:
    """Hold the locks of ``keys`` in this process; released on exit."""
    locks = LaboxLockManager(Target.from_settings())
    held = list(keys)
    for key in held:
        assert locks.acquire_lock(key, "the-test", acquire_timeout=PATIENCE)
    try:
        yield
    finally:
        for key in held:
            locks.release_lock(key, "the-test")


def _wait_until_all_wait(
    server: Server, client: SyncPrefectClient, ids: list[uuid.UUID], waiters: dict[str, int]
) -> None:
    """Return once, for every key, ``waiters[key]`` sessions wait for its advisory lock;
    fail at once, with the runs' states and the logs, when a flow run ends before."""
    deadline = time.monotonic() + PATIENCE
    while True:
        waiting = _lock_waiters(Target.from_settings().database_url, list(waiters))
        if all(waiting[key] >= count for key, count in waiters.items()):
            return
        runs = read_runs(client, ids)
        assert not [run for run in runs if run.state and run.state.is_final()], _failure(
            server, runs
        )
        assert time.monotonic() < deadline, f"waiting for the locks: {waiting} of {waiters}"
        time.sleep(0.25)


def _lock_waiters(database_url: str, keys: list[str]) -> dict[str, int]:
    """How many sessions wait for the advisory lock of each key (pg_locks, not granted)."""

    async def count() -> dict[str, int]:
        connection = await asyncpg.connect(dsn(database_url))
        try:
            counts = {}
            for key in keys:
                lock_key = advisory_key(key) & 0xFFFFFFFFFFFFFFFF
                counts[key] = await connection.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
                    lock_key >> 32,
                    lock_key & 0xFFFFFFFF,
                )
            return counts
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as thread:  # not the test session's event loop
        return thread.submit(asyncio.run, count()).result()


def _failure(server: Server, runs: list[FlowRun]) -> str:
    states = [(run.name, run.work_queue_name, run.state_name) for run in runs]
    messages = [run.state.message for run in runs if run.state and run.state.message]
    return f"{states}\n{messages}\n{server.log_tails()}"


def _served_deployments() -> list[RunnerDeployment]:
    """The deployments of deployments/serve.py (a script, not a module of the package)."""
    spec = importlib.util.spec_from_file_location("serve", ROOT / "deployments" / "serve.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.deployments())
