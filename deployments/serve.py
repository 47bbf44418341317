"""Serve the example flows from this machine: no work pool, no worker.

``prefect.serve`` registers one deployment per flow with the Prefect API and runs their
scheduled and triggered runs here, each in a subprocess that inherits this environment, so
LABOX_DATABASE_URL, LABOX_STORAGE_URL and any credentials (PGPASSWORD, AWS_*) come from the
shell that starts it. It needs a running API (``prefect server start``, or Prefect Cloud):

    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python deployments/serve.py

then trigger runs from the UI or with ``prefect deployment run 'labox-demo/demo'``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

FLOWS = Path(__file__).resolve().parents[1] / "flows"
# The example flows, and the storables module they share, are plain scripts in flows/.
sys.path.insert(0, str(FLOWS))

from dataframe_pipeline import pipeline  # noqa: E402
from demo import demo  # noqa: E402
from protein_folding import protein_folding  # noqa: E402
from report import report  # noqa: E402


def deployments() -> list[RunnerDeployment]:
    """One deployment per example flow; the pipeline rebuilds daily, the report hourly."""
    return [
        demo.to_deployment(name="demo", tags=["labox", "demo"]),
        protein_folding.to_deployment(name="protein-folding", tags=["labox", "folding"]),
        pipeline.to_deployment(
            name="dataframe-pipeline", tags=["labox", "pipeline"], cron="0 6 * * *"
        ),
        report.to_deployment(name="report", tags=["labox", "report"], interval=timedelta(hours=1)),
    ]


if __name__ == "__main__":
    serve(*deployments())
