"""The flow that tests/integration/test_task_faults.py kills: many small ``labox_task`` outputs.

Run as ``python -m tests.integration._task_fault_flow SEED COUNT`` with the test's Prefect
API and LABOX_* settings in the environment. It prints ``ready`` when the flow starts, then
the manifest id of each task's result as soon as that task has completed (found by the
result's own Labox tag), one per line, flushed: what it printed was committed.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import pandas as pd
from prefect import flow

from labox_prefect import find_results, labox_task

STEP_TAG = "fault_step"


@labox_task
def step(index: int, seed: int) -> Any:
    """A small output: every fifth (from the second) a DataFrame, the others a dict of a
    seeded size."""
    rng = random.Random(seed * 100_003 + index)
    if index % 5 == 1:
        return pd.DataFrame({"index": range(index), "value": [rng.random() for _ in range(index)]})
    return {"index": index, "seed": seed, "text": "x" * rng.randrange(1, 4000)}


@flow(name="labox-task-faults")
def many_steps(seed: int, count: int) -> None:
    print("ready", flush=True)
    for index in range(count):
        mark = f"{seed}-{index}"
        step.with_options(tags={STEP_TAG: mark})(index, seed)
        for ref in find_results(tags={STEP_TAG: mark}, limit=None):
            print(ref.manifest_id, flush=True)


if __name__ == "__main__":
    many_steps(int(sys.argv[1]), int(sys.argv[2]))
