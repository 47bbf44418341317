"""The tags both databases' tag index tests save, and the pairs each index must hold."""

from __future__ import annotations

from typing import Any

TAGS: dict[str, Any] = {
    "project": "alpha",
    "ünï": "çødé",
    "prefect.tag.gpu": "true",
    "prefect.kind": "task",
    "prefect.flow_name": "etl",
    "prefect.task_run_id": "1b2c",
    "count": 5,
    "flag": True,
    "list": ["raw"],
}
# String values only: users' tags and Prefect run tags; the run context's keys left out.
INDEXED = {("project", "alpha"), ("ünï", "çødé"), ("prefect.tag.gpu", "true")}
