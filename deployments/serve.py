"""Serve the example flows from this machine: no work pool, no worker.

``prefect.serve`` registers one deployment per flow with the Prefect API and runs their
scheduled and triggered runs here, each in a subprocess that inherits this environment, so
LABOX_DATABASE_URL, LABOX_STORAGE_URL and any credentials (PGPASSWORD, AWS_*) come from the
shell that starts it. It needs a running API (``prefect server start``, or Prefect Cloud):

    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python deployments/serve.py

then trigger runs from the UI or with ``prefect deployment run 'labox-demo/demo-served'``.

Its deployments have names of their own (``<name>-served``): Prefect identifies a deployment
by its flow and name, so serving ``labox-demo/demo`` would re-register the deployment that
``prefect deploy`` made from prefect.yaml, without its work pool and job variables.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment

FLOWS = Path(__file__).resolve().parents[1] / "flows"
# The example flows, and the storables module they share, are plain scripts in flows/.
sys.path.insert(0, str(FLOWS))

from compute_once import fold_sequence  # noqa: E402
from dataframe_pipeline import pipeline  # noqa: E402
from demo import demo  # noqa: E402
from protein_folding import protein_folding  # noqa: E402
from report import report  # noqa: E402

SUFFIX = "-served"
"""Ends the name of every deployment here; no deployment of prefect.yaml has it."""


def deployments() -> list[RunnerDeployment]:
    """One deployment per example flow; the pipeline rebuilds daily, the report hourly."""
    return [
        _deployment(demo, name="demo", tags=["labox", "demo"]),
        _deployment(protein_folding, name="protein-folding", tags=["labox", "folding"]),
        _deployment(pipeline, name="dataframe-pipeline", tags=["labox"], cron="0 6 * * *"),
        _deployment(report, name="report", tags=["labox"], interval=timedelta(hours=1)),
        _deployment(fold_sequence, name="compute-once", tags=["labox", "compute-once"]),
    ]


def _deployment(flow: Flow[..., Any], name: str, **options: Any) -> RunnerDeployment:
    deployment = flow.to_deployment(name=f"{name}{SUFFIX}", **options)
    # to_deployment is typed for async callers too; called from sync code it returns this.
    assert isinstance(deployment, RunnerDeployment)
    return deployment


if __name__ == "__main__":
    serve(*deployments())
