"""Each flow run publishes one table artifact, its result catalog, and updates it as it saves.

Read back through Prefect's API, as the UI reads them: one artifact per flow run keyed by the
flow, one row per result in save order (task, type, shape, size, a preview line, user tags,
the record id), the same artifact updated by a later batch, a task outside a flow on its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

import pandas as pd
import pydantic
import pytest
from prefect import State, flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    ArtifactFilterTaskRunId,
)
from sqlalchemy import make_url

from labox_prefect import labox_task, publication
from labox_prefect.artifacts import ROWS_SHOWN, Catalog, catalog_key
from labox_prefect.context import FLOW_NAME, FLOW_RUN_ID, TASK_NAME, TASK_RUN_ID
from labox_prefect.publication import flush_publications
from labox_prefect.summary import ResultSummary
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend
from tests.integration.test_preview import png

COLUMNS = ["task", "type", "shape", "size", "preview", "tags", "record"]


class Params(pydantic.BaseModel):
    learning_rate: float
    layers: int


@labox_task(tags={"suite": "artifacts", "project": "x"})
def Load_Frame(rows: int) -> pd.DataFrame:  # a name to slugify
    return pd.DataFrame({"city": [f"c{i}" for i in range(rows)], "__body__": range(rows)})


@labox_task(tags={"suite": "artifacts"})
async def fit() -> Params:
    return Params(learning_rate=0.01, layers=3)


@labox_task(tags={"suite": "artifacts"})
def sample(size: int) -> str:
    return "a" * size


@labox_task(tags={"suite": "artifacts"})
def chart() -> bytes:
    return png(48, 24)


def _artifacts(**filters: Any) -> list[Any]:
    assert flush_publications()
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(**filters))


def _of_flow_run(flow_run_id: uuid.UUID) -> list[Any]:
    return _artifacts(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))


def _rows(artifact: Any) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads(artifact.data)  # JSON text, as Prefect stores it
    return rows


def _flow_run_of(state: State[Any]) -> uuid.UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None  # ran inside a flow
    return flow_run_id


def test_a_flow_run_catalogs_its_results_in_one_table(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="Daily Sales: EU")
    def pipeline() -> list[State[Any]]:
        return [
            Load_Frame(1000, return_state=True),
            sample(5, return_state=True),
            sample(100_000, return_state=True),
            chart(return_state=True),
        ]

    states = pipeline()
    flow_run_id = _flow_run_of(states[0])

    (artifact,) = _of_flow_run(flow_run_id)
    assert artifact.key == "labox-daily-sales-eu"
    assert artifact.type == "table"
    assert artifact.task_run_id is None
    records = {
        str(state.state_details.task_run_id): str(record.id)
        for state in states
        for record in manifests(**{"prefect.task_run_id": str(state.state_details.task_run_id)})
    }
    frame, short, long, image = _rows(artifact)
    assert list(frame) == COLUMNS
    assert [row["record"] for row in (frame, short, long, image)] == [
        records[str(state.state_details.task_run_id)] for state in states
    ]  # in save order
    assert frame["task"] == "Load_Frame"
    assert (frame["type"], frame["shape"]) == ("DataFrame", "1000x2")
    assert frame["size"].endswith("KiB")
    assert frame["tags"] == "project=x, suite=artifacts"  # user tags only
    assert frame["preview"] == "columns: city, __body__"  # plain text, not bold
    assert (short["shape"], short["preview"]) == ("5 characters", "'aaaaa'")
    assert long["shape"] == "100,000 characters"
    assert len(long["preview"]) == 80
    assert long["preview"].endswith("…")
    assert (image["shape"], image["preview"]) == ("PNG 48x24", "PNG image")
    assert artifact.description.startswith("**4 results**, ")
    assert "KiB in total, in `" in artifact.description
    assert "latest" not in artifact.description
    with get_client(sync_client=True) as client:  # the Artifacts page finds it by key
        listed = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="labox-daily-sales"))
        )
    assert artifact.id in [item.id for item in listed]


@pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)
def test_no_credential_reaches_the_catalog(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    password = make_url(backend.database_url).password
    assert password

    @flow
    def pipeline() -> State[Any]:
        return sample(3, return_state=True)

    (artifact,) = _of_flow_run(_flow_run_of(pipeline()))

    text = artifact.description + artifact.data
    assert "***" in artifact.description  # the database, its password hidden
    assert f":{password}@" not in text
    for secret in (backend.storage_url.partition("://")[2], "AWS", "secret"):
        assert secret not in text


def test_a_later_batch_updates_the_same_artifact(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    seen: list[list[Any]] = []

    @flow(name="two-batches")
    def pipeline() -> State[Any]:
        state = sample(1, return_state=True)
        seen.append(_of_flow_run(_flow_run_of(state)))  # published: the first batch
        sample(2)
        return state

    flow_run_id = _flow_run_of(pipeline())

    ((first,),) = seen
    (artifact,) = _of_flow_run(flow_run_id)
    assert artifact.id == first.id  # updated, not a second artifact
    assert [row["preview"] for row in _rows(first)] == ["'a'"]
    assert [row["preview"] for row in _rows(artifact)] == ["'a'", "'aa'"]
    assert artifact.description.startswith("**2 results**, ")
    with get_client(sync_client=True) as client:  # the Artifacts page's entry is the latest
        (latest,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["labox-two-batches"]))
        )
    assert latest.latest_id == artifact.id
    assert [row["preview"] for row in json.loads(latest.data)] == ["'a'", "'aa'"]


def test_each_flow_run_is_a_version_of_the_flows_key(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="train")
    async def pipeline() -> State[Any]:
        state: State[Any] = await fit(return_state=True)
        return state

    runs = [_flow_run_of(asyncio.run(pipeline())) for _ in range(2)]

    versions = _artifacts(
        key=ArtifactFilterKey(any_=["labox-train"]), flow_run_id=ArtifactFilterFlowRunId(any_=runs)
    )
    assert sorted(str(item.flow_run_id) for item in versions) == sorted(map(str, runs))
    (row,) = _rows(versions[0])
    assert (row["task"], row["type"]) == ("fit", "Params")
    assert row["preview"] == "learning_rate=0.01, layers=3"


def test_a_task_outside_a_flow_has_a_catalog_of_its_own(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    monkeypatch.setenv("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

    state = sample(7, return_state=True)

    task_run_id = state.state_details.task_run_id
    assert task_run_id is not None
    assert state.state_details.flow_run_id is None
    (artifact,) = _artifacts(task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]))
    assert artifact.key == "labox-sample"
    assert artifact.flow_run_id is None
    assert [row["preview"] for row in _rows(artifact)] == ["'aaaaaaa'"]


def test_artifacts_can_be_turned_off(backend: Backend) -> None:
    @flow
    def pipeline() -> State[Any]:
        return sample(10, return_state=True)

    state = pipeline()  # the backend fixture sets LABOX_ARTIFACTS=false

    assert _of_flow_run(_flow_run_of(state)) == []
    assert len(manifests(**{"prefect.task_run_id": str(state.state_details.task_run_id)})) == 1


def test_an_artifact_failure_never_fails_the_task(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("the API is down")

    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    monkeypatch.setattr(Catalog, "create_request", refuse)

    @flow(name="refused")
    def pipeline() -> State[Any]:
        return sample(10, return_state=True)

    state = pipeline()

    assert flush_publications()
    assert state.is_completed()
    assert state.result() == "a" * 10
    assert "could not publish the artifact labox-refused of flow run" in caplog.text
    assert "the API is down" in caplog.text


def test_artifacts_still_queued_when_their_flow_ends_are_published(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flow's own API client is closed when it ends; the publisher must not reuse it.
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    flow_ended = threading.Event()
    publish = publication._publish_catalogs

    def after_the_flow(runs: Any) -> None:
        flow_ended.wait(60)
        publish(runs)

    monkeypatch.setattr(publication, "_publish_catalogs", after_the_flow)

    @flow
    def pipeline() -> State[Any]:
        for size in range(3):
            state = sample(3 + size, return_state=True)
        return state

    state = pipeline()
    flow_ended.set()
    (artifact,) = _of_flow_run(_flow_run_of(state))
    assert len(_rows(artifact)) == 3


def _summary(number: int, flow_run: uuid.UUID | None = None) -> ResultSummary:
    tags = {FLOW_NAME: "many", TASK_NAME: "t", TASK_RUN_ID: str(uuid.uuid4())}
    if flow_run is not None:
        tags[FLOW_RUN_ID] = str(flow_run)
    return ResultSummary(
        uuid.uuid4(), tags, "x.StorableValue", "int", None, 1024, str(number), "db"
    )


def test_a_catalog_shows_the_newest_rows_and_counts_them_all() -> None:
    catalog = Catalog.of(_summary(0, uuid.uuid4()))
    for number in range(ROWS_SHOWN + 5):
        catalog.add(_summary(number))

    rows = json.loads(catalog.data())
    assert len(rows) == ROWS_SHOWN
    assert (rows[0]["preview"], rows[-1]["preview"]) == ("5", str(ROWS_SHOWN + 4))
    assert catalog.description() == (
        f"**{ROWS_SHOWN + 5:,} results**, 1005.0 KiB in total, latest {ROWS_SHOWN:,} shown, "
        "in `db`. `labox-prefect results show <record>` shows one."
    )


def test_keys_name_the_flow_or_else_the_task_once() -> None:
    def key(flow_name: str | None, task_name: str | None) -> str:
        tags = {TASK_RUN_ID: str(uuid.uuid4())}
        if flow_name is not None:
            tags |= {FLOW_NAME: flow_name, FLOW_RUN_ID: str(uuid.uuid4())}
        if task_name is not None:
            tags[TASK_NAME] = task_name
        summary = ResultSummary(uuid.uuid4(), tags, "x.StorableValue", "int", None, 1, "", "db")
        return catalog_key(summary)

    assert key("Daily Sales: EU", "load") == "labox-daily-sales-eu"
    assert key("labox-demo", "measure") == "labox-demo"
    assert key("laboxer", "fit") == "labox-laboxer"
    assert key(None, "Load Data") == "labox-load-data"
    assert key(None, None) == "labox"
