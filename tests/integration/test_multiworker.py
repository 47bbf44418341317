"""The real thing: a Prefect server, two process workers, deployments/prefect.yaml, 8 runs.

Opt-in (``LABOX_TEST_MULTIWORKER=1``): on a 2-core machine the server, two workers and
eight flow-run processes take longer than the suite's budget. What it checks, on
PostgreSQL and S3 as a production set-up would use them:

- the deployments of ``deployments/prefect.yaml`` deploy with ``prefect deploy``;
- eight ``compute-once`` flow runs started at once, six with one sequence and two with
  another, spread over both workers, all end Completed;
- ``fold`` computed exactly once per sequence (one record per cache key, under
  LaboxLockManager), and every run returned that record's value (the others were cache
  hits, some on the other worker);
- ``find_results`` finds the records by deployment and by flow run;
- the flow runs' connections (by their application_name in ``pg_stat_activity``) stay
  within runs x (LABOX_DB_POOL_SIZE + LABOX_DB_MAX_OVERFLOW + one lock).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from labox_prefect import find_results
from labox_prefect.context import DEPLOYMENT_NAME, FLOW_RUN_ID
from labox_prefect.target import Target
from tests.conftest import S3Server
from tests.integration.conftest import Backend
from tests.integration.test_connections import _Sampler

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 300.0
PREFECT = str(Path(sys.executable).with_name("prefect"))

pytestmark = [pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``prefect server start`` on loopback, its API URL and a client environment."""
    port = _free_port()
    home = tmp_path / "prefect-home"
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env={key: value for key, value in env.items() if key != "PREFECT_API_URL"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server never answered"
            time.sleep(0.5)
        yield api, env
    finally:
        _stop(server)
        log.close()


def _cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_two_workers_eight_runs_compute_each_key_once(
    backend: Backend,
    s3_server: S3Server,
    prefect_server: tuple[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    api, env = prefect_server
    env = {**env, **{k: v for k, v in os.environ.items() if k.startswith(("LABOX_", "AWS_"))}}
    name = f"labox-mw-{uuid.uuid4().hex[:8]}"
    env["LABOX_DB_APPLICATION_NAME"] = name
    _cli(env, "work-pool", "create", "labox-process", "--type", "process")
    _cli(env, "variable", "set", "labox_database_url", backend.database_url)
    _cli(env, "variable", "set", "labox_storage_url", backend.storage_url)
    _cli(env, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")

    workers = [
        subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "labox-process", "--limit", "4"],
            env=env,
            cwd=ROOT,
            stdout=(tmp_path / f"worker-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        sequences = [f"MKT{uuid.uuid4().hex[:10].upper()}", f"MKV{uuid.uuid4().hex[:10].upper()}"]
        wanted = [sequences[0]] * 6 + [sequences[1]] * 2
        with (
            temporary_settings(updates={PREFECT_API_URL: api}),
            _Sampler(backend.database_url, name) as sampler,
        ):
            runs = _start_and_wait(wanted)
    finally:
        for worker in workers:
            _stop(worker)

    assert [run.state.type.value for run in runs] == ["COMPLETED"] * 8, [
        (run.name, run.state.message) for run in runs
    ]
    assert 1 <= max(sampler.counts) <= len(runs) * (2 + 2 + 1)
    print(f"at most {max(sampler.counts)} connections for {len(runs)} flow runs")
    target = Target.from_settings()
    folded = {
        sequence: [
            ref
            for ref in find_results(task_name="fold", limit=None, block=target)
            if ref.load()["sequence"] == sequence
        ]
        for sequence in sequences
    }
    assert {sequence: len(refs) for sequence, refs in folded.items()} == {s: 1 for s in sequences}
    by_deployment = find_results(tags={DEPLOYMENT_NAME: "compute-once"}, limit=None, block=target)
    ids = {ref.manifest_id for refs in folded.values() for ref in refs}
    assert ids <= {ref.manifest_id for ref in by_deployment}
    computed_in = {ref.tags[FLOW_RUN_ID] for refs in folded.values() for ref in refs}
    for run in runs:
        mine = find_results(flow_run_id=run.id, limit=None, block=target)
        assert all(ref.tags[FLOW_RUN_ID] == str(run.id) for ref in mine)
        assert bool([r for r in mine if r.tags.get("prefect.task_name") == "fold"]) == (
            str(run.id) in computed_in
        )


def _start_and_wait(sequences: list[str]) -> list[Any]:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("compute-once/compute-once")
        created = [
            client.create_flow_run_from_deployment(deployment.id, parameters={"sequence": sequence})
            for sequence in sequences
        ]
        deadline = time.monotonic() + PATIENCE
        while True:
            runs = [client.read_flow_run(run.id) for run in created]
            if all(run.state is not None and run.state.is_final() for run in runs):
                return runs
            assert time.monotonic() < deadline, [(r.name, r.state_name) for r in runs]
            time.sleep(1)
