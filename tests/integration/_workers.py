"""A real Prefect set-up on loopback: ``prefect server start``, a process work pool, the
deployments of deployments/prefect.yaml, process workers, and flow runs started together.

Shared by tests/integration/test_multiworker.py and bench/workers_scale.py. Everything runs
as its own process, as in production: the server, ``prefect deploy``, each worker and each
flow run (a process the worker starts). Only the work pool, its queues and the Prefect
variables are created through the API from the calling process (the CLI would cost a Python
start each).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import VariableCreate, WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, WorkerStatus
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker
from sqlalchemy import make_url

from tests.conftest import DEFAULT_DATABASE_URL, _execute

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
PREFECT_FILE = "deployments/prefect.yaml"
POOL = "labox-process"
PATIENCE = 300.0  # seconds anything here may take before it is a failure

# Server services that no step here needs: off, so the 2 cores go to the flow runs. The task
# run recorder stays on: it is what writes task runs (reported as events) to the database.
_IDLE_SERVICES = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "TRIGGERS", "EVENT_PERSISTER")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Server:
    """A running ``prefect server start``: its API and the environment of its clients."""

    api_url: str
    env: dict[str, str]
    workdir: Path

    def log_tails(self, characters: int = 3000) -> str:
        """The end of the server's and every worker's log, for a failure message."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-characters:]}"
            for log in sorted(self.workdir.glob("*.log"))
        )

    @contextlib.contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        """A sync client of this server (whatever API the calling process is set up for)."""
        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            yield client


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database ``<prefix>_<random>`` on the suite's server
    (``LABOX_TEST_DATABASE_URL``, default the one of .ci/run), dropped on exit; its URL."""
    base = os.environ.get("LABOX_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _execute(base, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        _execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def prefect_server(
    workdir: Path, database_url: str, labox_env: Mapping[str, str]
) -> Iterator[Server]:
    """``prefect server start`` on a free loopback port, its own PREFECT_HOME, and its
    database at ``database_url`` (PostgreSQL: under eight concurrent flow runs on 2 cores,
    SQLite's write lock made the server answer 503 to a worker, which lost the run).

    ``labox_env``: the LABOX_* and AWS_* variables of the clients (the workers hand them on
    to their flow runs, as a production worker's environment would).
    """
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    common = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "LABOX_", "AWS_"))
    }
    common |= {
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server_env = {
        **common,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_UI_ENABLED": "false",
        **{f"PREFECT_API_SERVICES_{name}_ENABLED": "false" for name in _IDLE_SERVICES},
    }
    client_env = {
        **common,
        **labox_env,
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "30",
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + PATIENCE
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"prefect server start exited:\n{log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the Prefect server never answered /api/health")
                time.sleep(0.2)
            yield Server(api, client_env, workdir)
        finally:
            _stop(server)


def prepare_pool(server: Server, queues: Sequence[str], variables: Mapping[str, str]) -> None:
    """The process work pool of prefect.yaml with ``queues``, and the Prefect variables its
    job variables name (what the first lines of deployments/prefect.yaml do with the CLI)."""
    with server.client() as client:
        client.create_work_pool(
            WorkPoolCreate(
                name=POOL,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
        for queue in queues:
            client.create_work_queue(name=queue, work_pool_name=POOL)
        for name, value in variables.items():
            client.create_variable(VariableCreate(name=name, value=value))


def deploy(server: Server) -> None:
    """``prefect --no-prompt deploy --all`` of deployments/prefect.yaml, from the repository
    root, as its header says; RuntimeError with the CLI's output if it fails."""
    done = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def process_workers(
    server: Server, workers: Mapping[str, str | None], limit: int | None = None
) -> Iterator[None]:
    """One ``prefect worker start`` on the pool per name in ``workers``, polling the queue it
    maps to (None: every queue of the pool), each running at most ``limit`` flow runs at once
    (None: no limit); each logs to ``<workdir>/<name>.log``; all stopped on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, queue in workers.items():
            command = [PREFECT, "worker", "start", "--pool", POOL, "--name", name]
            command += ["--work-queue", queue] if queue is not None else []
            command += ["--limit", str(limit)] if limit is not None else []
            with (server.workdir / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, env=server.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        yield
    finally:
        for process in processes:
            _stop(process)


def wait_for_workers(client: SyncPrefectClient, names: Sequence[str]) -> None:
    """Return once every worker of ``names`` reported itself online to the pool."""
    deadline = time.monotonic() + PATIENCE
    while True:
        online = {
            worker.name
            for worker in client.read_workers_for_work_pool(POOL)
            if worker.status == WorkerStatus.ONLINE
        }
        if set(names) <= online:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers never online: {sorted(set(names) - online)}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Wanted:
    """One flow run to start: its parameters and the queue (so the worker) that runs it."""

    parameters: dict[str, Any]
    queue: str


def start_runs(
    client: SyncPrefectClient, deployment: str, runs: Sequence[Wanted]
) -> list[uuid.UUID]:
    """Create every flow run of ``deployment`` (``flow/deployment``) at once; their ids."""
    deployment_id = client.read_deployment_by_name(deployment).id
    return [
        client.create_flow_run_from_deployment(
            deployment_id, parameters=run.parameters, work_queue_name=run.queue
        ).id
        for run in runs
    ]


def read_runs(client: SyncPrefectClient, ids: Sequence[uuid.UUID]) -> list[FlowRun]:
    """The flow runs ``ids`` that the server has, in that order."""
    wanted = FlowRunFilter(id=FlowRunFilterId(any_=list(ids)))
    found = {run.id: run for run in client.read_flow_runs(flow_run_filter=wanted)}
    return [found[run_id] for run_id in ids if run_id in found]


def wait_for_runs(
    client: SyncPrefectClient, ids: Sequence[uuid.UUID], patience: float = PATIENCE
) -> list[FlowRun]:
    """The flow runs ``ids``, in that order, once every one is in a final state.

    RuntimeError naming the runs still going when ``patience`` seconds have passed.
    """
    deadline = time.monotonic() + patience
    while True:
        runs = read_runs(client, ids)
        if len(runs) == len(ids) and all(run.state and run.state.is_final() for run in runs):
            return runs
        if time.monotonic() > deadline:
            going = [(run.name, run.state_name) for run in runs]
            raise RuntimeError(f"flow runs not final after {patience:.0f} s: {going}")
        time.sleep(0.5)
