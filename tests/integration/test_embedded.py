"""A deployment's flow run saving to the embedded default: warned once, or refused."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow

from labox_prefect import labox_task
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend

embedded = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def run_warnings() -> Iterator[list[str]]:
    """Warnings of Prefect's task run loggers (where get_run_logger writes in a task)."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.messages
    for logger in loggers:
        logger.removeHandler(handler)


def _two_results(salt: str) -> Any:
    @labox_task(tags={"embedded-test": salt})
    def part(x: int) -> int:
        return x + 1

    @flow(name=f"embedded-{salt[:8]}")
    def pipeline() -> list[int]:
        return [part(1), part(2)]

    return pipeline


def _run_as_deployment(pipeline: Any) -> Any:
    """Run ``pipeline`` in this process as a flow run of a deployment, as a worker would."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(pipeline)
        deployment_id = client.create_deployment(flow_id=flow_id, name="worker-like")
        flow_run = client.create_flow_run_from_deployment(deployment_id)
    assert flow_run.deployment_id == deployment_id
    return run_flow(pipeline, flow_run=flow_run, return_type="state")


def _about_the_embedded_default(messages: list[str]) -> list[str]:
    return [m for m in messages if "embedded SQLite file" in m]


@embedded
def test_a_deployment_run_on_the_embedded_default_warns_once(
    backend: Backend, run_warnings: list[str]
) -> None:
    salt = uuid.uuid4().hex
    state = _run_as_deployment(_two_results(salt))

    assert state.is_completed()
    (warning,) = _about_the_embedded_default(run_warnings)
    assert "LABOX_DATABASE_URL" in warning
    assert "LABOX_REQUIRE_CONFIGURED=true" in warning
    assert len(manifests(**{"embedded-test": salt})) == 2  # a warning, not a loss


@embedded
def test_outside_a_deployment_the_embedded_default_is_quiet(
    backend: Backend, run_warnings: list[str]
) -> None:
    salt = uuid.uuid4().hex
    assert _two_results(salt)() == [2, 3]
    assert _about_the_embedded_default(run_warnings) == []


@embedded
def test_required_configuration_makes_the_embedded_default_an_error(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_REQUIRE_CONFIGURED", "true")
    salt = uuid.uuid4().hex
    state = _run_as_deployment(_two_results(salt))

    assert state.is_failed()
    with pytest.raises(Exception, match="LABOX_REQUIRE_CONFIGURED is set") as raised:
        state.result()
    assert type(raised.value).__name__ == "ResultTargetError"
    assert manifests(**{"embedded-test": salt}) == []


@pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)
def test_a_configured_deployment_run_is_quiet_even_when_required(
    backend: Backend, run_warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_REQUIRE_CONFIGURED", "true")
    salt = uuid.uuid4().hex
    state = _run_as_deployment(_two_results(salt))

    assert state.is_completed()
    assert _about_the_embedded_default(run_warnings) == []
    assert len(manifests(**{"embedded-test": salt})) == 2
