"""The Prefect event ``labox.result.saved``, emitted for every saved result.

Automations trigger on it (``match: {"labox.tag.project": "x"}``). Its resource is

- ``prefect.resource.id``: ``labox.result.<manifest id>``;
- ``prefect.resource.name``: ``<flow>/<task>`` (or the flow's name for a flow's result);
- ``labox.tag.<key>``: ``<value>`` for every tag of the record (user and ``prefect.*``);
- ``labox.class``, ``labox.type`` (the value's own type), ``labox.size`` (bytes, decimal).

Labels are strings (prefect.events.schemas.events.Resource). Its related resources are those
Prefect's events worker attaches to an event emitted inside the task run
(prefect.events.related.related_resources_from_run_context): the flow run, the task run, the
flow, the deployment, work queue and work pool of a deployment's run, and every tag of the
flow run and task run (role ``tag``); outside a flow run, the task run alone.

Prefect's worker would work them out again for every event, from the run's context, which
costs about as much as the rest of the event. Here they are worked out by Prefect's own
function once per flow run, where no task run is current (``RunResources``; it reads the
flow, deployment, work queue and pool from the API, as the worker does), and per result only
the task run and its tags are added. The event is built in the run's scope (``RunScope``:
its settings and flow run), where Prefect's events worker for the run's settings is picked
(``EventsWorker.instance()``, which ``emit_event`` uses), and handed to that worker from
labox_prefect.publication's thread in a context where no run is current, so the worker
attaches nothing more. The worker sends it in the background and is drained at interpreter
exit; the task pays for none of this. A failure is logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext, SettingsContext, TaskRunContext
from prefect.events import Event, RelatedResource, Resource
from prefect.events.related import (
    object_as_related_resource,
    related_resources_from_run_context,
    tags_as_related_resources,
)
from prefect.events.worker import EventsWorker, should_emit_events
from prefect.settings import get_current_settings

from labox_prefect.api_clients import own_client
from labox_prefect.summary import ResultSummary

logger = logging.getLogger(__name__)

EVENT = "labox.result.saved"
RESOURCE_PREFIX = "labox.result."
TAG_LABEL_PREFIX = "labox.tag."
FLOW_RUNS_KEPT = 64
"""Flow runs whose shared related resources are kept (the newest)."""


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


def related_runs(summary: ResultSummary) -> list[RelatedResource]:
    """The task run and flow run the result came from: the related resources of a result
    saved outside a flow run (Prefect's worker attaches nothing there)."""
    related: list[dict[str, str]] = []
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
    return [RelatedResource(resource) for resource in related]


class RunResources:
    """The related resources a flow run's results share, worked out once per flow run.

    ``for_result()``, in a run's scope (``RunScope``) and given its task run, returns the
    list Prefect's events worker would attach in that task run, in its order: the flow run,
    the task run, the flow, the deployment, the work queue, the work pool, then the tags (of
    all of them). The flow run's share is Prefect's own list made where no task run is
    current; per result only the task run and its tags are added. Used from the publisher's
    thread only.
    """

    def __init__(self, kept: int = FLOW_RUNS_KEPT) -> None:
        self._kept = kept
        self._shared: OrderedDict[uuid.UUID, tuple[list[RelatedResource], set[str]]] = OrderedDict()

    def for_result(self, summary: ResultSummary, task_run: TaskRun | None) -> list[RelatedResource]:
        flow_run = getattr(FlowRunContext.get(), "flow_run", None)
        if flow_run is None:
            return related_runs(summary)
        shared = self._shared.get(flow_run.id)
        if shared is None:
            shared = self._shared[flow_run.id] = _flow_run_share()
            while len(self._shared) > self._kept:
                self._shared.popitem(last=False)
        objects, tags = shared
        if task_run is None:
            return [*objects, *tags_as_related_resources(tags)]
        own = object_as_related_resource("task-run", "task-run", task_run)
        return [
            *objects[:1],
            own,
            *objects[1:],
            *tags_as_related_resources(tags | set(task_run.tags)),
        ]


def _flow_run_share() -> tuple[list[RelatedResource], set[str]]:
    """Prefect's related resources of the current flow run, worked out where no task run is
    current: the objects (flow run, flow, deployment, work queue, work pool) and the tags."""
    context = _without(contextvars.copy_context(), TaskRunContext)
    related = context.run(asyncio.run, _prefect_related())
    objects = [resource for resource in related if resource.role != "tag"]
    tags = {
        resource.id.removeprefix("prefect.tag.") for resource in related if resource.role == "tag"
    }
    return objects, tags


async def _prefect_related() -> list[RelatedResource]:
    # A client of our own: the run's may be closed by the time the publisher gets here.
    async with own_client() as client:
        return await related_resources_from_run_context(client)


@dataclass(frozen=True)
class RunScope:
    """What announcing a result reads of the run that saved it, taken in that run (``of_caller``).

    ``context`` holds Prefect's settings and the flow run, the two context variables the
    event, its related resources and the catalog's API client read there; ``task_run`` is
    the task run (or None). Not a copy of the run's whole context: that held the task run's
    engine, parameters and result store until the publisher was done with the result (100 ms
    or more), so Python's young collections walked them again and again and could move them
    to its oldest generation, whose collections walk every object of the process (about
    0.3 s in a Prefect process of 380,000 objects). Measured in a flow of 200 small results
    (bench/prefect_flow.py --against, 7 rounds): 1.088x -> 0.983x of Prefect's default; the
    young collections took about 26 -> 23 ms a flow. The objects moved to the oldest
    generation varied from 18,000 to 21,500 a flow in repeated runs of either code, so that
    count did not tell them apart.
    """

    context: contextvars.Context
    task_run: TaskRun | None

    @classmethod
    def of_caller(cls) -> RunScope:
        context = contextvars.Context()
        settings, flow_run = SettingsContext.get(), FlowRunContext.get()
        if settings is not None:
            context.run(SettingsContext.__var__.set, settings)
        if flow_run is not None:
            context.run(FlowRunContext.__var__.set, flow_run)
        return cls(context, getattr(TaskRunContext.get(), "task_run", None))


@dataclass(frozen=True)
class Outgoing:
    """An event built in the run's context, for the events worker of the run's settings."""

    worker: EventsWorker
    event: Event


class Workers:
    """Prefect's events worker for the current settings (None: events are off), looked up
    once per settings for a batch of results.

    ``should_emit_events`` and ``EventsWorker.instance`` read five settings through Prefect's
    legacy accessor: 20 us a result, while every result of a flow run has the same settings.
    A new one serves each batch, as a worker may stop (Prefect drains them at exit) and
    ``EventsWorker.instance`` then makes another.
    """

    def __init__(self) -> None:
        # keyed by the settings' id; the settings are kept so that the id is not reused
        self._seen: dict[int, tuple[object, EventsWorker | None]] = {}

    def current(self) -> EventsWorker | None:
        settings = get_current_settings()
        seen = self._seen.get(id(settings))
        if seen is None:
            worker = EventsWorker.instance() if should_emit_events() else None
            seen = self._seen[id(settings)] = (settings, worker)
        return seen[1]


def send_all(outgoing: list[Outgoing]) -> None:
    """Hand each event to its worker, in order, in one context where no run is current
    (one per batch of results rather than one per event). Never raises: a failure is logged.
    """
    try:
        _without(contextvars.Context(), FlowRunContext, TaskRunContext).run(_send, outgoing)
    except Exception as error:
        logger.warning("labox: could not emit %s: %s", EVENT, error)


def _send(outgoing: list[Outgoing]) -> None:
    for item in outgoing:
        try:
            item.worker.send(item.event)
        except Exception as error:
            logger.warning("labox: could not emit %s: %s", EVENT, error)


def _without(
    context: contextvars.Context, *models: type[FlowRunContext] | type[TaskRunContext]
) -> contextvars.Context:
    """``context`` with no current run of the kinds ``models`` name (set to None through their
    ContextModel's variable, ``__var__``, which tests/integration/test_events.py pins).

    An event is sent from a context where neither run is current: Prefect's worker works out
    an event's related resources in the context it was sent from, laid over its own
    (prefect.utilities.context.temporary_context), and its own holds the run it was started
    from, which an empty context would let through.
    """
    for model in models:
        context.run(model.__var__.set, None)  # type: ignore[arg-type]
    return context


def result_saved(
    summary: ResultSummary, task_run: TaskRun | None, resources: RunResources, workers: Workers
) -> Outgoing | None:
    """``labox.result.saved`` for ``summary``, built in the run's scope (``RunScope.context``)
    for its ``task_run``; None (logged when it failed) when events are off or it cannot be
    built."""
    try:
        worker = workers.current()
        if worker is None:
            return None
        return Outgoing(worker, _built(summary, resources.for_result(summary, task_run)))
    except Exception as error:
        logger.warning("labox: could not emit %s for %s: %s", EVENT, summary.manifest_id, error)
        return None


def _built(summary: ResultSummary, related: list[RelatedResource]) -> Event:
    """The event, made without running Prefect's validators again.

    They read six Prefect settings per event through Prefect's legacy settings accessor:
    0.4 of the 0.5 ms it took to build one here, on the publisher's thread, which holds the
    GIL meanwhile. What they check holds by construction: the resource's labels are strings
    made here (``prefect.resource.id`` first), the related resources are Prefect's own,
    already validated. ``occurred`` and ``id`` are given, made by the Event's own default
    factories: left to ``model_construct``, pydantic inspects each factory's signature on every
    call (half the cost of building the event). The fields set are those ``Event(...)`` would
    record. tests/integration/test_events.py checks that validating the event gives it back
    unchanged.
    """
    return Event.model_construct(
        {"event", "resource", "related", "payload"},  # a set of its own: pydantic adds to it
        occurred=_OCCURRED(),
        id=_ID(),
        event=EVENT,
        resource=Resource.model_construct(result_resource(summary)),
        related=related,
        payload=_payload(summary),
    )


def _default_factory(field: str) -> Callable[[], Any]:
    """Prefect's default factory of the Event's ``field`` (both take no argument)."""
    return cast(Callable[[], Any], Event.model_fields[field].default_factory)


_OCCURRED = _default_factory("occurred")
_ID = _default_factory("id")


def _payload(summary: ResultSummary) -> dict[str, Any]:
    return {
        "database": summary.database,
        "shape": summary.shape,
        "contents": list(summary.content_keys),
    }


__all__ = [
    "EVENT",
    "RESOURCE_PREFIX",
    "TAG_LABEL_PREFIX",
    "Outgoing",
    "RunResources",
    "RunScope",
    "Workers",
    "related_runs",
    "result_resource",
    "result_saved",
    "send_all",
]
