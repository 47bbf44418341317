"""The Prefect event ``labox.result.saved``, emitted for every saved result.

Automations trigger on it (``match: {"labox.tag.project": "x"}``). Its resource is

- ``prefect.resource.id``: ``labox.result.<manifest id>``;
- ``prefect.resource.name``: ``<flow>/<task>`` (or the flow's name for a flow's result);
- ``labox.tag.<key>``: ``<value>`` for every tag of the record (user and ``prefect.*``);
- ``labox.class``, ``labox.type`` (the value's own type), ``labox.size`` (bytes, decimal);

related to the task run (role ``task-run``) and the flow run (role ``flow-run``) as Prefect
names them (``prefect.task-run.<id>``, ``prefect.flow-run.<id>``). Labels are strings
(prefect.events.schemas.events.Resource).

It is emitted from labox_prefect.publication's thread, so the task pays neither for
building it nor for ``emit_event``, which validates the event and puts it on Prefect's
events worker (a background queue that sends it and is drained at interpreter exit). A
failure is logged, never raised.
"""

from __future__ import annotations

import logging

from prefect.events import emit_event

from labox_prefect.summary import ResultSummary

logger = logging.getLogger(__name__)

EVENT = "labox.result.saved"
RESOURCE_PREFIX = "labox.result."
TAG_LABEL_PREFIX = "labox.tag."


def result_resource(summary: ResultSummary) -> dict[str, str]:
    """The event's resource: the record's id and every tag as a label."""
    resource = {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{summary.manifest_id}",
        "labox.class": summary.class_name,
        "labox.type": summary.value_type,
        "labox.size": str(summary.size),
    }
    name = "/".join(part for part in (summary.flow_name, summary.task_name) if part)
    if name:
        resource["prefect.resource.name"] = name
    resource.update((f"{TAG_LABEL_PREFIX}{key}", value) for key, value in summary.tags.items())
    return resource


def related_runs(summary: ResultSummary) -> list[dict[str, str]]:
    """The task run and flow run the result came from, as related resources."""
    related = []
    if summary.task_run_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.task-run.{summary.task_run_id}",
                "prefect.resource.role": "task-run",
            }
        )
    if summary.flow_run_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{summary.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return related


def emit_result_saved(summary: ResultSummary) -> None:
    """Emit ``labox.result.saved`` for ``summary``; never raises."""
    try:
        emit_event(
            EVENT,
            resource=result_resource(summary),
            related=related_runs(summary),
            payload={
                "database": summary.database,
                "shape": summary.shape,
                "contents": list(summary.content_keys),
            },
        )
    except Exception as error:
        logger.warning("labox: could not emit %s for %s: %s", EVENT, summary.manifest_id, error)


__all__ = [
    "EVENT",
    "RESOURCE_PREFIX",
    "TAG_LABEL_PREFIX",
    "emit_result_saved",
    "related_runs",
    "result_resource",
]
