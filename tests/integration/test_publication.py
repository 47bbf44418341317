"""The saved-result event and the catalog artifact are made off the task's thread, flushes may
overlap, and nothing is lost at exit."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import subprocess
import sys
import textwrap
import threading
import types
import uuid
import weakref
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import get_current_settings

from labox_prefect import labox_task, publication
from labox_prefect import summary as summary_module
from labox_prefect.context import FLOW_NAME, FLOW_RUN_ID, TASK_NAME
from labox_prefect.core import ManifestRecord
from labox_prefect.events import EVENT
from labox_prefect.publication import flush_publications
from labox_prefect.summary import ResultSummary
from tests.integration.conftest import Backend

_PATIENCE = 120  # seconds: a guard against hanging, not a timing assertion


@labox_task(tags={"suite": "publication"})
def numbers() -> dict[str, int]:
    return {"a": 1}


def test_the_task_only_queues_its_result_and_the_publisher_tells_it(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    threads: dict[str, str] = {}
    summarize, build = publication.summarize, publication.result_saved

    def summarize_seen(*args: Any, **kwargs: Any) -> Any:
        threads["summary"] = threading.current_thread().name
        return summarize(*args, **kwargs)

    def build_seen(*args: Any) -> Any:
        threads["event"] = threading.current_thread().name
        return build(*args)

    monkeypatch.setattr(publication, "summarize", summarize_seen)
    monkeypatch.setattr(publication, "result_saved", build_seen)

    @flow
    def pipeline() -> str:
        numbers()
        return threading.current_thread().name

    task_thread = pipeline()
    assert flush_publications()
    assert threads == {"summary": "labox-prefect-publisher", "event": "labox-prefect-publisher"}
    assert task_thread != "labox-prefect-publisher"


def test_without_artifacts_the_event_is_told_and_no_preview_is_made(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview line is for the artifact only."""
    monkeypatch.setenv("LABOX_ARTIFACTS", "false")
    told: list[Any] = []
    previews: list[Any] = []
    monkeypatch.setattr(publication, "result_saved", lambda summary, *_: told.append(summary))
    monkeypatch.setattr(summary_module, "preview_line", previews.append)

    @flow
    def pipeline() -> None:
        numbers()

    pipeline()
    assert flush_publications()
    assert [summary.tags["suite"] for summary in told] == ["publication"]
    assert told[0].preview == ""
    assert previews == []


def test_threading_still_has_the_exit_hooks_prefect_drains_its_services_in() -> None:
    # publication registers its exit flush there, to run before Prefect's events queue stops.
    assert callable(threading._register_atexit)  # type: ignore[attr-defined]


_SCRIPT = """
from prefect import flow
from labox_prefect import labox_task

@labox_task(tags={{"run": "{run}"}})
def last_words() -> str:
    return "goodbye"

@flow(name="exits-at-once")
def pipeline() -> None:
    last_words()

pipeline()
"""


async def _event_of_a_script_that_exits(script: Path, run: str) -> Any:
    wanted = EventFilter(
        event=EventNameFilter(name=[EVENT]),
        resource=EventResourceFilter(labels=ResourceSpecification({"labox.tag.run": run})),
    )
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    env["LABOX_ARTIFACTS"] = "true"
    async with get_events_subscriber(filter=wanted) as subscriber:
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, str(script)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return await asyncio.wait_for(anext(aiter(subscriber)), _PATIENCE)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_script_that_exits_right_after_its_flow_loses_neither_event_nor_artifact(
    backend: Backend, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex
    script = tmp_path / "short.py"
    script.write_text(textwrap.dedent(_SCRIPT.format(run=run)), encoding="utf-8")

    event = asyncio.run(_event_of_a_script_that_exits(script, run))

    assert event.resource["labox.tag.run"] == run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["labox-exits-at-once"]))
        )
    assert any(f"run={run}" in (artifact.data or "") for artifact in artifacts)


def test_the_publisher_keeps_no_value_once_it_is_announced(backend: Backend) -> None:
    frame = pd.DataFrame({"a": range(3)})
    gone = weakref.ref(frame)
    manifest = ManifestRecord(id=uuid.uuid4(), tags={}, class_id=uuid.uuid4(), unpacker_name="x")
    publication.announce(frame, manifest, [], "StorableValue", "sqlite", artifacts=False)
    assert flush_publications()
    del frame
    gc.collect()
    assert gone() is None


def test_a_queued_result_holds_its_runs_scope_not_the_task_runs_whole_context(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a result waits for the publisher, the queue holds Prefect's settings, the flow
    run and the task run (events.RunScope), not the task run's context, which reaches its
    engine, parameters and result store: held that long, they would all outlive Python's
    young collections and move to its oldest generation, whose collections are the costly
    ones."""
    publisher = publication.ArtifactPublisher(linger=10 * _PATIENCE)
    monkeypatch.setattr(publication, "publisher", publisher)

    @flow
    def pipeline() -> uuid.UUID:
        numbers()
        return uuid.uuid4()

    pipeline()
    with publisher._state:
        queued = list(publisher._items)
    assert len(queued) == 1
    reached = _reachable(queued, depth=6)
    assert not [obj for obj in reached if isinstance(obj, TaskRunContext)]
    assert [obj for obj in reached if isinstance(obj, FlowRunContext)]  # the flow run's scope
    assert [obj for obj in reached if isinstance(obj, TaskRun) and obj.name.startswith("numbers")]
    assert publisher.flush(timeout=_PATIENCE)


def _reachable(root: object, depth: int) -> list[object]:
    """Objects reachable from ``root`` in at most ``depth`` references (classes, modules and
    functions are not followed: they lead everywhere)."""
    seen = {id(root)}
    found, frontier = [root], [root]
    for _ in range(depth):
        following = []
        for obj in frontier:
            for referent in gc.get_referents(obj):
                if id(referent) in seen or isinstance(referent, (type, types.ModuleType)):
                    continue
                if callable(referent) and not hasattr(referent, "__dict__"):
                    continue
                seen.add(id(referent))
                found.append(referent)
                following.append(referent)
        frontier = following
    return found


def test_results_queued_together_are_published_in_one_batch_and_a_flush_does_not_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The publisher wakes once for a burst of tasks' results, not once per result."""
    batches: list[int] = []
    monkeypatch.setattr(publication, "_tell_all", lambda batch, *_: batches.append(len(batch)))
    publisher = publication.ArtifactPublisher(linger=10 * _PATIENCE)
    manifest = ManifestRecord(id=uuid.uuid4(), tags={}, class_id=uuid.uuid4(), unpacker_name="x")
    for number in range(5):
        publisher.put(publication._Saved(number, manifest, [], "StorableValue", "sqlite", False))
    assert publisher.flush(timeout=_PATIENCE)  # flushing cuts the linger short
    assert batches == [5]


def test_a_flush_keeps_the_publisher_hurrying_while_another_flush_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flush that ends (here: at once, timed out) must not make another one wait a linger."""
    working, go_on = threading.Event(), threading.Event()

    def summarize(value: Any, *_: Any, **__: Any) -> None:
        if value == "first":
            working.set()
            go_on.wait(_PATIENCE)

    monkeypatch.setattr(publication, "summarize", summarize)
    publisher = publication.ArtifactPublisher(linger=10 * _PATIENCE)
    manifest = ManifestRecord(id=uuid.uuid4(), tags={}, class_id=uuid.uuid4(), unpacker_name="x")
    publisher.put(publication._Saved("first", manifest, [], "StorableValue", "sqlite", False))
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(publisher.flush(timeout=_PATIENCE)))
    waiter.start()
    assert working.wait(_PATIENCE)  # the waiting flush cut the linger short
    publisher.put(publication._Saved("second", manifest, [], "StorableValue", "sqlite", False))
    assert not publisher.flush(timeout=0)  # another flush, over at once
    go_on.set()
    waiter.join()
    assert waited == [True]  # "second" was published without a linger


def test_catalogs_are_kept_for_the_latest_runs_and_a_forgotten_one_is_published_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published: list[uuid.UUID | None] = []

    def publish(runs: list[Any]) -> None:
        for run in runs:
            published.append(run.catalog.flow_run_id)
            run.artifact_id = run.artifact_id or uuid.uuid4()

    monkeypatch.setattr(publication, "_publish_catalogs", publish)
    catalogs = publication._Catalogs(kept=2)
    context = contextvars.copy_context()
    runs = [uuid.uuid4() for _ in range(3)]
    for run in runs:  # the third forgets the first, whose row still waits
        catalogs.add(context, _summary_of(run))

    catalogs.publish(everything=False)
    assert published == runs[:1]  # the forgotten one's waiting row, at once
    assert catalogs.next_due() is not None  # the others' wait CATALOG_SECONDS
    catalogs.publish(everything=True)  # as a flush asks
    assert published == runs  # the forgotten one first
    published.clear()
    catalogs.add(context, _summary_of(runs[2]))
    catalogs.publish(everything=False)
    assert published == []  # an update waits CATALOG_SECONDS
    assert catalogs.next_due() is not None
    catalogs.publish(everything=True)  # as a flush asks
    assert published == [runs[2]]
    assert catalogs.next_due() is None


def _summary_of(flow_run_id: uuid.UUID) -> ResultSummary:
    tags = {FLOW_NAME: "f", FLOW_RUN_ID: str(flow_run_id), TASK_NAME: "t"}
    return ResultSummary(uuid.uuid4(), tags, "x.StorableValue", "int", None, 1, "1", "db")
