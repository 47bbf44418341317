"""Cache policies: a second flow run is a cache hit that loads the Labox record, read once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect import State, flow
from prefect.cache_policies import INPUTS

from labox_prefect import labox_task
from labox_prefect.context import TASK_RUN_ID
from labox_prefect.core import StorageConfig
from labox_prefect.core.builtin import FsspecStorage
from tests.integration._helpers import manifests
from tests.integration.conftest import Backend

calls: list[str] = []


@labox_task(cache_policy=INPUTS, tags={"suite": "cache"})
def long_text(size: int, salt: str) -> str:
    calls.append(salt)
    return salt * size  # text, not JSON: it goes to the blob storage, not the database


@pytest.fixture
def storage_reads(monkeypatch: pytest.MonkeyPatch) -> list[StorageConfig]:
    """Every blob read by a file or S3 storage during the test."""
    reads: list[StorageConfig] = []
    original = FsspecStorage.read_data

    async def counting(self: FsspecStorage, config: StorageConfig, /) -> bytes:
        reads.append(config)
        return await original(self, config)

    monkeypatch.setattr(FsspecStorage, "read_data", counting)
    return reads


def test_second_flow_run_is_a_cache_hit_reading_the_content_once(
    backend: Backend, storage_reads: list[StorageConfig]
) -> None:
    salt = uuid.uuid4().hex  # unique inputs: the PostgreSQL database outlives this test

    @flow
    def pipeline() -> State[Any]:
        return long_text(2000, salt, return_state=True)

    first = pipeline()
    reads_after_first_run = len(storage_reads)
    second = pipeline()

    assert first.name == "Completed"
    assert second.name == "Cached"
    assert second.result() == salt * 2000
    assert calls.count(salt) == 1
    assert reads_after_first_run == 0
    assert len(storage_reads) == 1  # Prefect's exists check and its read share one load
    first_run = str(first.state_details.task_run_id)
    second_run = str(second.state_details.task_run_id)
    assert len(manifests(**{TASK_RUN_ID: first_run})) == 1
    assert manifests(**{TASK_RUN_ID: second_run}) == []  # a hit saves nothing new
