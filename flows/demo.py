"""The labox-prefect demo: a flow stores typed results, then finds them again by tag.

Run it with no server and no set-up (SQLite + local files under ~/.labox-prefect, Prefect's
ephemeral API):

    python flows/demo.py

Three labox_tasks return a DataFrame, a pydantic StorableModel and a plain dict. Each output
is saved as a Labox record (Parquet and JSON, never pickle) tagged with the flow, the flow
run, the task, the Prefect run tags and the user tags given here. After the flow, the demo
asks ``find_results`` for this run's records by tag and loads each one back.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

# An offline machine would log a failed telemetry call of the temporary server: skip it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pandas as pd
from example_storables import MODULE, SampleSummary
from prefect import flow
from prefect.runtime import flow_run
from rich.console import Console
from rich.table import Table

from labox_prefect import ResultRef, find_results, labox_task

PROJECT = "labox-demo"


@labox_task(tags={"project": PROJECT, "stage": "raw"}, prefect_tags=["demo"])
def measure(batch: str, samples: int) -> pd.DataFrame:
    """Measurements of one batch: stored as Parquet."""
    return pd.DataFrame(
        {
            "sample": [f"{batch}-{i:02d}" for i in range(samples)],
            "temperature": [20.0 + 0.5 * i for i in range(samples)],
            "yield_pct": [round(50 + (i * 37) % 41 * 1.1, 1) for i in range(samples)],
        }
    )


@labox_task(tags={"project": PROJECT, "stage": "summary"}, registry_modules=[MODULE])
def summarise(batch: str, measurements: pd.DataFrame) -> SampleSummary:
    """A typed summary: a pydantic StorableModel, stored as JSON."""
    best = measurements.nlargest(1, "yield_pct").iloc[0]
    return SampleSummary(
        batch=batch,
        samples=len(measurements),
        mean_yield=round(float(measurements["yield_pct"].mean()), 2),
        best_sample=str(best["sample"]),
    )


@labox_task(tags={"project": PROJECT, "stage": "config"})
def instrument_settings(batch: str) -> dict[str, Any]:
    """A plain dict: stored as JSON through the serializer the registry infers."""
    return {"batch": batch, "instrument": "spectrometer-2", "wavelength_nm": 488, "gain": 1.5}


@flow(name="labox-demo")
def demo(batch: str = "B7", samples: int = 12) -> str:
    """Measure a batch, summarise it, record the instrument settings; return the run id."""
    settings = instrument_settings(batch)
    measurements = measure(batch, samples)
    summary = summarise(batch, measurements)
    print(f"Flow stored: {summary!r} (and {len(measurements)} rows, {len(settings)} settings)")
    return str(flow_run.id)


def describe(value: Any) -> str:
    """One line about a loaded value."""
    if isinstance(value, pd.DataFrame):
        return f"DataFrame {value.shape[0]}x{value.shape[1]} columns={list(value.columns)}"
    text = repr(value)
    return text if len(text) <= 90 else f"{text[:87]}..."


def show(title: str, refs: list[ResultRef]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("record", "task", "user tags", "loaded value"):
        table.add_column(column, overflow="fold")
    for ref in refs:
        tags = ", ".join(f"{key}={value}" for key, value in sorted(ref.user_tags.items()))
        record = str(ref.manifest_id)[:8]  # as `labox-prefect results ls` shows it (and takes it)
        table.add_row(record, ref.task_name or "-", tags, describe(ref.load()))
    Console().print(table)  # fits the terminal: long cells fold within their column


def main() -> None:
    run_id = demo()
    print(f"\nFlow run {run_id} finished. Finding its results by tag...\n")

    mine = find_results(tags={"project": PROJECT}, flow_run_id=run_id)
    show(f"find_results(tags={{'project': {PROJECT!r}}}, flow_run_id=...)", mine)

    summaries = find_results(task_name="summarise", tags={"stage": "summary"}, limit=5)
    show("find_results(task_name='summarise', tags={'stage': 'summary'}, limit=5)", summaries)

    first = next(ref for ref in mine if ref.task_name == "measure")
    print(
        f"\nEvery record carries its run context, e.g. {first.manifest_id}:\n"
        f"  flow={first.flow_name} run={first.flow_run_name} task={first.task_name} "
        f"prefect_tags={list(first.prefect_tags)}\n"
        f"\nFound {len(mine)} results of this run. Try: labox-prefect results ls "
        f"--tag project={PROJECT} --flow-run {uuid.UUID(run_id)}"
    )


if __name__ == "__main__":
    main()
