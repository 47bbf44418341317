"""A report flow: find earlier results by tag, load them, and publish a summary.

It reads what flows/demo.py stored (run that first): every ``SampleSummary`` tagged
``project=labox-demo`` in the last week, newest first, with the flow run that made it. The
report is a markdown table, published as a Prefect artifact (visible in the UI under the
flow run's Artifacts), printed, and itself stored as a Labox record tagged
``report=sample-summaries``: reports are results too.

    python flows/demo.py && python flows/report.py
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

# An offline machine would log a failed telemetry call of the temporary server: skip it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from example_storables import MODULE, SampleSummary
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from labox_prefect import find_results, labox_task

COLUMNS = ("finished", "flow run", "batch", "samples", "mean yield %", "best sample", "record")


@task
def collect(project: str, days: float, limit: int) -> list[dict[str, Any]]:
    """One row per stored SampleSummary of the project, newest first.

    Loading needs SampleSummary in the registry: ``registry_modules=[MODULE]`` on ``render``
    below registers its module for this whole process (LABOX_REGISTRY_MODULES would too).
    """
    rows = []
    refs = find_results(
        tags={"project": project}, task_name="summarise", since=timedelta(days=days), limit=limit
    )
    for ref in refs:
        summary = ref.load()
        if not isinstance(summary, SampleSummary):
            continue  # another task of the same name: not ours to report
        rows.append(
            {
                "finished": ref.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "flow run": ref.flow_run_name or "-",
                "batch": summary.batch,
                "samples": summary.samples,
                "mean yield %": summary.mean_yield,
                "best sample": summary.best_sample,
                "record": str(ref.manifest_id),
            }
        )
    return rows


@labox_task(tags={"report": "sample-summaries"}, registry_modules=[MODULE])
def render(project: str, rows: list[dict[str, Any]]) -> str:
    """The report as markdown (stored as a Labox text record, since it is a result too)."""
    if not rows:
        return (
            f"# Sample summaries of `{project}`\n\nNo results yet: run `python flows/demo.py` "
            f"first, then this report again."
        )
    best = max(rows, key=lambda row: row["mean yield %"])
    lines = [
        f"# Sample summaries of `{project}`",
        "",
        f"{len(rows)} summaries found by tag. Best mean yield: **{best['mean yield %']}%** "
        f"(batch {best['batch']}, run {best['flow run']}).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(str(row[column]) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


@flow(name="labox-report")
def report(project: str = "labox-demo", days: float = 7, limit: int = 50) -> str:
    """Collect, render and publish the report; return its markdown."""
    markdown = render(project, collect(project, days, limit))
    create_markdown_artifact(markdown, key="labox-sample-summaries", description=project)
    return markdown


if __name__ == "__main__":
    print("\n" + report())
