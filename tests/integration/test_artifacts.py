"""Each saved result publishes a keyed Markdown artifact: the result catalog of the Prefect UI.

Read back through Prefect's API, as the UI reads them: key per flow and task, a description
naming task, type, shape, size and user tags, a preview of the value and a details table.
"""

from __future__ import annotations

import asyncio
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
    ArtifactFilterKey,
    ArtifactFilterTaskRunId,
)

from labox_prefect import labox_task, publication
from labox_prefect.artifacts import artifact_key
from labox_prefect.context import FLOW_NAME, TASK_NAME
from labox_prefect.publication import flush_publications
from labox_prefect.summary import ResultSummary
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend
from tests.integration.test_preview import png


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


def _artifacts_of(task_run_id: uuid.UUID) -> list[Any]:
    assert flush_publications()
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]))
        )


def _task_run_of(state: State[Any]) -> uuid.UUID:
    assert state.state_details.flow_run_id is not None  # ran inside the flow
    task_run_id = state.state_details.task_run_id
    assert task_run_id is not None
    return task_run_id


def test_a_frame_is_catalogued_under_its_flow_and_task(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="Daily Sales: EU")
    def pipeline() -> State[Any]:
        return Load_Frame(1000, return_state=True)

    task_run_id = _task_run_of(pipeline())

    (artifact,) = _artifacts_of(task_run_id)
    (record,) = manifests(**{"prefect.task_run_id": str(task_run_id)})
    assert artifact.key == "labox-daily-sales-eu-load-frame"
    assert artifact.type == "markdown"
    assert artifact.description.startswith("**Load\\_Frame** → `DataFrame` 1000x2 · ")
    assert "KiB" in artifact.description
    assert artifact.description.endswith("project=x, suite=artifacts")
    body = artifact.data
    assert "| city | \\_\\_body\\_\\_ |" in body  # the head, as a table, not bold "body"
    assert "| c0 | 0 |" in body
    assert "| c4 | 4 |" in body
    assert "| c5 |" not in body  # the 6th column is cut (ids in the body are hex)
    assert f"Record `{record.id}` in " in body  # no class name for a plain value
    assert "| content | format | size | hash | stored in |" in body
    assert "| value | parquet | " in body
    assert "sha256:" in body
    assert "`" not in body.split("#### Details")[1].split("\n\n", 2)[2]  # plain cells
    assert "#### Details" in body
    with get_client(sync_client=True) as client:  # the Artifacts page finds it by key
        listed = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="labox-daily-sales"))
        )
    assert artifact.id in [item.id for item in listed]
    assert {item.key for item in listed} == {"labox-daily-sales-eu-load-frame"}


def test_a_model_shows_its_fields(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="train")
    async def pipeline() -> State[Any]:
        state: State[Any] = await fit(return_state=True)
        return state

    task_run_id = _task_run_of(asyncio.run(pipeline()))

    (artifact,) = _artifacts_of(task_run_id)
    assert artifact.key == "labox-train-fit"
    assert artifact.description.startswith("**fit** → `Params` · ")
    assert "| field | value |" in artifact.data
    assert "| learning\\_rate | 0.01 |" in artifact.data
    assert "| layers | 3 |" in artifact.data


def test_a_short_value_is_shown_and_a_long_one_cut(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="strings")
    def pipeline() -> list[State[Any]]:
        return [sample(5, return_state=True), sample(100_000, return_state=True)]

    short, long = pipeline()

    (small,) = _artifacts_of(_task_run_of(short))
    (large,) = _artifacts_of(_task_run_of(long))
    assert small.key == large.key == "labox-strings-sample"
    assert "```\n'aaaaa'\n```" in small.data
    assert small.description.startswith("**sample** → `str` 5 characters · ")
    assert "100,000 characters" in large.description
    assert len(large.data) < 2000  # the preview is cut, not the whole value


def test_artifacts_can_be_turned_off(backend: Backend) -> None:
    @flow
    def pipeline() -> State[Any]:
        return sample(10, return_state=True)

    task_run_id = _task_run_of(pipeline())  # the backend fixture sets LABOX_ARTIFACTS=false

    assert _artifacts_of(task_run_id) == []
    assert len(manifests(**{"prefect.task_run_id": str(task_run_id)})) == 1


def test_an_artifact_failure_never_fails_the_task(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("the API is down")

    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    monkeypatch.setattr(publication, "artifact_request", refuse)

    @flow
    def pipeline() -> State[Any]:
        return sample(10, return_state=True)

    state = pipeline()

    assert flush_publications()
    assert state.is_completed()
    assert state.result() == "a" * 10
    assert "could not publish the artifact" in caplog.text
    assert "the API is down" in caplog.text


def test_artifacts_still_queued_when_their_flow_ends_are_published(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flow's own API client is closed when it ends; the publisher must not reuse it.
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    flow_ended = threading.Event()
    create = publication._create

    def after_the_flow(summaries: Any) -> None:
        flow_ended.wait(60)
        create(summaries)

    monkeypatch.setattr(publication, "_create", after_the_flow)

    @flow
    def pipeline() -> list[State[Any]]:
        return [sample(3 + size, return_state=True) for size in range(3)]

    states = pipeline()
    flow_ended.set()
    for state in states:
        assert len(_artifacts_of(_task_run_of(state))) == 1


def test_image_bytes_show_as_an_image(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    @flow(name="labox-plots")
    def pipeline() -> State[Any]:
        return chart(return_state=True)

    (artifact,) = _artifacts_of(_task_run_of(pipeline()))

    assert artifact.key == "labox-plots-chart"  # not labox-labox-plots-chart
    assert artifact.description.startswith("**chart** → `bytes` PNG 48x24 · ")
    assert "![PNG image, 48x24](data:image/png;base64," in artifact.data


def test_keys_name_the_flow_and_task_once() -> None:
    def key(flow_name: str, task_name: str | None) -> str:
        tags = {FLOW_NAME: flow_name} | ({TASK_NAME: task_name} if task_name else {})
        summary = ResultSummary(uuid.uuid4(), tags, "x.StorableValue", "int", None, 1, "", "db")
        return artifact_key(summary)

    assert key("Daily Sales: EU", "load") == "labox-daily-sales-eu-load"
    assert key("labox-demo", "measure") == "labox-demo-measure"
    assert key("laboxer", "fit") == "labox-laboxer-fit"
    assert key("labox", None) == "labox"
