"""A DataFrame pipeline whose steps are cached across flow runs by their inputs.

Every step is a labox_task with an inputs-based cache policy: Prefect keys each result by
the hash of the task's inputs and stores it through Labox (Parquet in the blob storage, a
tagged record in the database). The script runs the flow twice: the second run finds every
key already stored, so each step is a cache hit that loads the Labox record instead of
computing again, and no new record is written. Run the script again later: even the first
run is then a hit, because the cache lives in the database, not in the process.

Prefect's ``INPUTS`` hashes a DataFrame by pickling its columns, and pickled bytes depend on
memory layout: a filtered Arrow-backed string column pickles differently from its own copy,
or from the same frame loaded back from storage. So the steps that take DataFrames use
``FRAME_INPUTS``, which is ``INPUTS`` with each DataFrame hashed by its content.

    python flows/dataframe_pipeline.py
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

# An offline machine would log a failed telemetry call of the temporary server: skip it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import numpy as np
import pandas as pd
from prefect import flow
from prefect.cache_policies import INPUTS, Inputs
from prefect.context import TaskRunContext
from prefect.runtime import flow_run

from labox_prefect import find_results, labox_task

PIPELINE_TAGS = {"pipeline": "regional-sales"}


def fingerprint(frame: pd.DataFrame) -> str:
    """A hash of a DataFrame's content (values, index, columns, dtypes), not of its layout."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(repr([(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]).encode())
    return digest.hexdigest()


@dataclass
class FrameInputs(Inputs):
    """``INPUTS``, hashing every DataFrame input by its content."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        stable = {
            name: fingerprint(value) if isinstance(value, pd.DataFrame) else value
            for name, value in inputs.items()
        }
        return super().compute_key(task_ctx, stable, flow_parameters, **kwargs)


FRAME_INPUTS = FrameInputs()


@labox_task(cache_policy=INPUTS, tags={**PIPELINE_TAGS, "step": "extract"})
def extract(rows: int, seed: int) -> pd.DataFrame:
    """Raw sales lines (generated here; a real flow would read them from a source)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "product": rng.choice(["A", "B", "C"], rows),
            "units": rng.integers(1, 20, rows),
            "unit_price": rng.choice([9.5, 12.0, 30.25], rows),
        }
    )


@labox_task(cache_policy=FRAME_INPUTS, tags={**PIPELINE_TAGS, "step": "transform"})
def transform(raw: pd.DataFrame) -> pd.DataFrame:
    """Revenue per line; lines with a single unit are dropped as returns noise."""
    clean = raw[raw["units"] > 1].copy()
    clean["revenue"] = clean["units"] * clean["unit_price"]
    return clean.reset_index(drop=True)


@labox_task(cache_policy=FRAME_INPUTS, tags={**PIPELINE_TAGS, "step": "aggregate"})
def aggregate(lines: pd.DataFrame) -> pd.DataFrame:
    """Revenue and units per region and product."""
    return (
        lines.groupby(["region", "product"], as_index=False)[["units", "revenue"]]
        .sum()
        .sort_values("revenue", ascending=False, ignore_index=True)
    )


@flow(name="dataframe-pipeline")
def pipeline(rows: int = 200_000, seed: int = 7) -> dict[str, str]:
    """Extract, transform, aggregate; return each step's final state ("Cached" on a hit)."""
    raw = extract(rows, seed, return_state=True)
    lines = transform(raw.result(), return_state=True)
    summary = aggregate(lines.result(), return_state=True)
    print(summary.result().head(4).to_string(index=False))
    return {
        "run": str(flow_run.id),
        "extract": str(raw.name),
        "transform": str(lines.name),
        "aggregate": str(summary.name),
    }


def main() -> None:
    for attempt in (1, 2):
        states = pipeline()
        written = find_results(tags=PIPELINE_TAGS, flow_run_id=states["run"])
        steps = ", ".join(
            f"{step}={states[step]}" for step in ("extract", "transform", "aggregate")
        )
        print(f"Run {attempt}: {steps}; new Labox records: {len(written)}\n")


if __name__ == "__main__":
    main()
