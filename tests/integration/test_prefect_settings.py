"""A plain ``@task`` persists through Labox with Prefect's own settings alone (README section).

PREFECT_RESULTS_DEFAULT_SERIALIZER=labox and PREFECT_DEFAULT_RESULT_STORAGE_BLOCK naming a
saved LaboxResultStorage block: no labox_task, and one line of code (``import labox_prefect``,
which a worker does itself through the package's entry point). The flow runs in a fresh
interpreter with those variables, as a user's shell would start it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from prefect.settings import get_current_settings

from labox_prefect import LaboxResultStorage, find_results
from labox_prefect.context import RESULT_TYPE
from tests.integration.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]

_PLAIN_FLOW = """
import json, sys
from prefect import flow, task
import labox_prefect  # registers the labox serializer type with Prefect (workers need not)

@task(persist_result=True)
def measure(batch: str) -> dict:
    return {"batch": batch, "value": 1.5}

@flow(name=sys.argv[1])
def pipeline() -> dict:
    return measure("B7")

print(json.dumps(pipeline()))
"""


def test_a_plain_task_persists_through_prefects_own_settings(backend: Backend) -> None:
    LaboxResultStorage().save("default", overwrite=True)  # empty fields: the LABOX_* environment
    flow_name = f"plain-{uuid.uuid4().hex[:8]}"

    done = subprocess.run(
        [sys.executable, "-c", _PLAIN_FLOW, flow_name],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_API_URL": str(get_current_settings().api.url),  # the test harness's API
            "PREFECT_RESULTS_DEFAULT_SERIALIZER": "labox",
            "PREFECT_DEFAULT_RESULT_STORAGE_BLOCK": "labox-result-storage/default",
        },
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"batch": "B7", "value": 1.5}
    refs = find_results(flow_name=flow_name)
    assert {ref.task_name for ref in refs} == {"measure", None}  # the task's, the flow's
    task_ref = next(ref for ref in refs if ref.task_name == "measure")
    assert task_ref.tags[RESULT_TYPE] == "builtins:dict"
    assert task_ref.load() == {"batch": "B7", "value": 1.5}
