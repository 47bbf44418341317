"""Every saved result emits ``labox.result.saved``, which an automation can match on a tag.

The test subscribes to the harness server's event stream exactly as a Prefect automation
sees events: filtered by event name and by the ``labox.tag.project`` resource label.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import ssl
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prefect import State, flow, tags, task
from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import DeploymentEventTrigger, Event
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ResourceSpecification
from prefect.events.worker import EventsWorker, should_emit_events
from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

from labox_prefect import events, labox_task
from labox_prefect.context import FLOW_NAME, FLOW_RUN_ID, TASK_NAME, TASK_RUN_ID
from labox_prefect.events import EVENT
from labox_prefect.publication import flush_publications
from labox_prefect.summary import ResultSummary
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend

_PATIENCE = 120  # seconds: a guard against hanging, not a timing assertion


@labox_task(tags={"project": "x"})
def tagged() -> list[int]:
    return [1, 2, 3]


@labox_task(tags={"project": "y"})
def other() -> list[int]:
    return [4]


@flow(name="events-demo")
def pipeline() -> tuple[State[Any], State[Any]]:
    return other(return_state=True), tagged(return_state=True)


async def _first_matching_event() -> tuple[Any, tuple[State[Any], State[Any]]]:
    wanted = EventFilter(
        event=EventNameFilter(name=[EVENT]),
        resource=EventResourceFilter(labels=ResourceSpecification({"labox.tag.project": "x"})),
    )
    async with get_events_subscriber(filter=wanted) as subscriber:
        states = await asyncio.to_thread(pipeline)
        event = await asyncio.wait_for(anext(aiter(subscriber)), _PATIENCE)
    return event, states


def test_a_saved_result_is_seen_by_an_event_subscriber(backend: Backend) -> None:
    event, (_, state) = asyncio.run(_first_matching_event())

    task_run_id = state.state_details.task_run_id
    flow_run_id = state.state_details.flow_run_id
    (record,) = manifests(project="x", **{"prefect.task_run_id": str(task_run_id)})
    assert event.event == "labox.result.saved"
    assert event.resource.id == f"labox.result.{record.id}"
    assert event.resource["labox.tag.project"] == "x"  # never the project=y result
    assert event.resource["labox.tag.prefect.task_name"] == "tagged"
    assert event.resource["labox.tag.prefect.flow_name"] == "events-demo"
    assert event.resource["labox.type"] == "list"
    assert int(event.resource["labox.size"]) > 0
    assert event.resource["prefect.resource.name"] == "events-demo/tagged"
    related = {resource.role: resource.id for resource in event.related}
    assert related["task-run"] == f"prefect.task-run.{task_run_id}"
    assert related["flow-run"] == f"prefect.flow-run.{flow_run_id}"


def _readme_trigger() -> dict[str, Any]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(deployments:.*?)```", readme, flags=re.DOTALL)
    (deployment,) = yaml.safe_load(block)["deployments"]
    (trigger,) = deployment["triggers"]
    return cast(dict[str, Any], trigger)


def test_the_readme_automation_fires_on_the_tagged_result(backend: Backend) -> None:
    trigger = DeploymentEventTrigger.model_validate(_readme_trigger())

    event, _ = asyncio.run(_first_matching_event())

    assert EventNameFilter(name=sorted(trigger.expect)).includes(event)
    assert EventResourceFilter(labels=trigger.match).includes(event)
    assert trigger.parameters == {"resource_id": "{{ event.resource.id }}"}


@labox_task(tags={"project": "related"}, prefect_tags=["gpu"])
def tagged_run(number: int) -> int:
    return number


@flow(name="events-related")
def related_pipeline() -> list[State[Any]]:
    return [
        tagged_run.with_options(prefect_tags=["gpu", f"n{number}"])(number, return_state=True)
        for number in range(2)
    ]


def _nightly_run() -> list[State[Any]]:
    with tags("nightly"):  # the flow run's tag
        return related_pipeline()


async def _result_and_prefect_events() -> tuple[list[Any], list[Any], list[State[Any]]]:
    """Our events and the Completed events Prefect's worker built for the same task runs."""
    wanted = EventFilter(event=EventNameFilter(name=[EVENT, "prefect.task-run.Completed"]))
    ours: list[Any] = []
    prefect: list[Any] = []
    async with get_events_subscriber(filter=wanted) as subscriber:
        states = await asyncio.to_thread(_nightly_run)
        task_runs = {f"prefect.task-run.{state.state_details.task_run_id}" for state in states}
        while len(ours) < 2 or len(prefect) < 2:
            event = await asyncio.wait_for(anext(aiter(subscriber)), _PATIENCE)
            if event.event == EVENT and event.resource["labox.tag.project"] == "related":
                ours.append(event)
            elif event.resource.id in task_runs:
                prefect.append(event)
    return ours, prefect, states


def test_the_event_carries_the_related_resources_prefects_worker_attaches(
    backend: Backend,
) -> None:
    """They are worked out once per flow run (events.RunResources), not by the worker for
    each event: the same resources, per task run, as Prefect's own task-run events carry."""
    ours, prefect, states = asyncio.run(_result_and_prefect_events())

    def resources(event: Any) -> dict[str, dict[str, str]]:
        return {resource.id: dict(resource.root) for resource in event.related}

    completed = {event.resource.id: resources(event) for event in prefect}
    for state in states:
        task_run = f"prefect.task-run.{state.state_details.task_run_id}"
        (event,) = [e for e in ours if e.resource["labox.tag.prefect.task_run_id"] in task_run]
        related = resources(event)
        assert related.pop(task_run)["prefect.resource.role"] == "task-run"
        assert related == completed[task_run]  # flow run, flow, tags: as Prefect's worker made
        roles = sorted(resource["prefect.resource.role"] for resource in related.values())
        assert roles == ["flow", "flow-run", "tag", "tag", "tag"]  # the flow run's, the task's


def _summary(run_ids: dict[str, str]) -> ResultSummary:
    tags = {FLOW_NAME: "f", TASK_NAME: "t", "project": "x", **run_ids}
    return ResultSummary(uuid.uuid4(), tags, "x.StorableValue", "int", None, 1, "", "db")


def test_the_event_built_without_prefects_validators_is_what_they_would_make(
    backend: Backend,
) -> None:
    """events._built skips Prefect's validators (they read six settings per event) and makes
    ``occurred`` and ``id`` with the Event's own factories: inside a flow run and outside one,
    validating the event gives it back unchanged, with the fields set Event(...) records."""
    built: list[Event] = []

    def build() -> None:
        context = TaskRunContext.get()
        run_ids = {}
        if context is not None:
            run_ids = {
                TASK_RUN_ID: str(context.task_run.id),
                FLOW_RUN_ID: str(context.task_run.flow_run_id),
            }
        task_run = context.task_run if context is not None else None
        outgoing = events.result_saved(
            _summary(run_ids), task_run, events.RunResources(), events.Workers()
        )
        assert outgoing is not None
        built.append(outgoing.event)

    flow(name="events-built")(task(build))()
    build()

    inside, outside = built
    assert {resource.role for resource in inside.related} >= {"flow-run", "task-run", "flow"}
    assert {resource.role for resource in outside.related} == set()  # no run ids: none
    made = Event(event=EVENT, resource={"prefect.resource.id": "x"}, related=[], payload={})
    for event in built:
        assert Event.model_validate(event.model_dump()) == event
        assert event.resource["labox.tag.project"] == "x"
        assert event.model_fields_set == made.model_fields_set
        assert (type(event.occurred), type(event.id)) == (type(made.occurred), type(made.id))
        assert made.occurred - timedelta(minutes=1) < event.occurred <= made.occurred
    assert inside.id != outside.id
    assert inside.model_fields_set is not outside.model_fields_set  # pydantic adds to it


def test_the_publisher_makes_no_tls_context_per_flow_run(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow run's related resources are read through an API client of the publisher's
    own; Prefect's client would load a CA bundle for each (16 ms of CPU), though the API
    (Prefect's ephemeral server here) speaks plain HTTP."""
    made: list[str] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(threading.current_thread().name)
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    for _ in range(3):
        assert related_pipeline()
        assert flush_publications()
    assert made.count("labox-prefect-publisher") == 0


def test_the_current_runs_are_unset_through_the_context_models_variables() -> None:
    """events._without sets FlowRunContext.__var__ and TaskRunContext.__var__ (Prefect's)."""
    context = contextvars.copy_context()
    events._without(context, FlowRunContext, TaskRunContext)
    assert context.run(FlowRunContext.get) is None
    assert context.run(TaskRunContext.get) is None
    assert isinstance(FlowRunContext.__var__, contextvars.ContextVar)


def test_a_batch_picks_prefects_events_worker_once_per_settings(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """should_emit_events and EventsWorker.instance read five settings each: looked up once
    per settings for a batch, the worker is the one Prefect's emit_event would use."""
    asked: list[bool] = []

    def should_emit() -> bool:
        asked.append(should_emit_events())
        return asked[-1]

    monkeypatch.setattr(events, "should_emit_events", should_emit)
    workers = events.Workers()
    assert workers.current() is workers.current() is EventsWorker.instance()
    assert asked == [True]
    with temporary_settings({PREFECT_API_URL: None, PREFECT_API_KEY: "key"}):
        assert workers.current() is None  # events are off for these settings
    assert asked == [True, False]
    assert workers.current() is EventsWorker.instance()
    assert asked == [True, False]
