"""Compute a cached result once, however many flow runs miss the cache at the same moment.

    python flows/compute_once.py            # four identical flow runs at once: one computes

``fold`` is cached by its inputs. Without a lock manager, flow runs that start together with
the same inputs all miss the cache, all compute, and all write a record. With
``LaboxLockManager`` and ``isolation_level="SERIALIZABLE"``, the first run takes the lock of
the cache key in the Labox database (a PostgreSQL advisory lock, or a lock file next to the
SQLite file), computes and saves; the others wait for the lock, then find its record. This
holds across threads, processes, workers and machines that share the database.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

# An offline machine would log a failed telemetry call of the temporary server: skip it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow
from prefect.cache_policies import INPUTS

from labox_prefect import LaboxLockManager, find_results, labox_task

ONCE = INPUTS.configure(lock_manager=LaboxLockManager(), isolation_level="SERIALIZABLE")


@labox_task(tags={"project": "compute-once"}, cache_policy=ONCE)
def fold(sequence: str) -> dict[str, object]:
    """A slow computation worth doing once per sequence."""
    time.sleep(1.0)
    return {"sequence": sequence, "energy": -float(len(sequence)), "folded_at": time.time()}


@flow(name="compute-once")
def fold_sequence(sequence: str) -> dict[str, object]:
    return fold(sequence)


def main(runs: int = 4) -> int:
    """Start ``runs`` identical flow runs together; return how many records ``fold`` wrote."""
    sequence = f"MKT{uuid.uuid4().hex[:12].upper()}"
    with ThreadPoolExecutor(max_workers=runs) as pool:
        results = list(pool.map(fold_sequence, [sequence] * runs))
    assert all(result == results[0] for result in results), "every run got the same result"
    records = [
        ref
        for ref in find_results(task_name="fold", tags={"project": "compute-once"}, limit=None)
        if ref.load()["sequence"] == sequence
    ]
    print(f"{runs} flow runs, {len(records)} computation(s) of fold({sequence!r})")
    return len(records)


if __name__ == "__main__":
    main()
