"""Each persisted result publishes a table artifact; LABOX_ARTIFACTS=false turns it off."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from prefect import State, flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId

from labox_prefect import artifacts, labox_task
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend


@labox_task(tags={"suite": "artifacts"})
def sample(size: int) -> str:
    return "a" * size


@labox_task(tags={"suite": "artifacts"})
async def asample(size: int) -> list[int]:
    return list(range(size))


def _artifacts_of(task_run_id: uuid.UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]))
        )


def _run(task: Any, size: int) -> uuid.UUID:
    @flow
    def pipeline() -> State[Any]:
        state: State[Any] = task(size, return_state=True)
        return state

    @flow
    async def apipeline() -> State[Any]:
        state: State[Any] = await task(size, return_state=True)
        return state

    state = asyncio.run(apipeline()) if task is asample else pipeline()
    assert state.state_details.flow_run_id is not None  # ran inside the flow
    task_run_id = state.state_details.task_run_id
    assert task_run_id is not None
    return task_run_id


@pytest.mark.parametrize("task", [sample, asample], ids=["sync", "async"])
def test_a_result_publishes_its_table(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, task: Any
) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")

    task_run_id = _run(task, 5000)

    (artifact,) = _artifacts_of(task_run_id)
    (record,) = manifests(**{"prefect.task_run_id": str(task_run_id)})
    assert artifact.type == "table"
    assert str(record.id) in artifact.description
    assert "suite=artifacts" in artifact.description
    (row,) = artifact.data if isinstance(artifact.data, list) else _rows(artifact.data)
    assert row["record"] == str(record.id)
    assert row["class"] == "StorableValue"
    assert row["content"] == "value"
    assert row["size"] > 0
    assert row["hash"].startswith("sha256:")
    assert row["storage"].startswith(("labox.file@v1", "labox.s3@v1", "labox.database@v1"))


def test_artifacts_can_be_turned_off(backend: Backend) -> None:
    task_run_id = _run(sample, 10)  # the backend fixture sets LABOX_ARTIFACTS=false

    assert _artifacts_of(task_run_id) == []
    assert len(manifests(**{"prefect.task_run_id": str(task_run_id)})) == 1


def test_an_artifact_failure_never_fails_the_task(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(**_: Any) -> None:
        raise RuntimeError("the API is down")

    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    monkeypatch.setattr(artifacts, "create_table_artifact", refuse)

    @flow
    def pipeline() -> State[Any]:
        return sample(10, return_state=True)

    state = pipeline()

    assert state.is_completed()
    assert state.result() == "a" * 10
    assert "could not publish the artifact" in caplog.text
    assert "the API is down" in caplog.text


def _rows(data: Any) -> list[dict[str, Any]]:
    import json

    parsed = json.loads(data) if isinstance(data, str) else data
    return list(parsed)
