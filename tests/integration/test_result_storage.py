"""LaboxResultStorage: Prefect records by storage key, from any process, any serializer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from prefect import State, flow, task
from prefect.cache_policies import INPUTS
from prefect.results import ResultRecord
from pydantic import SecretStr

from labox_prefect import LaboxResultStorage, LaboxSerializer, labox_task
from labox_prefect.context import FLOW_RUN_ID, KIND, TASK_NAME
from labox_prefect.errors import ResultKeyNotFoundError
from labox_prefect.pointer import RunFailure
from labox_prefect.result_storage import saved_default_block
from tests.integration._helpers import manifests, result_key
from tests.integration.conftest import Backend


@labox_task(tags={"suite": "fresh-process"})
def measure(n: int) -> dict[str, Any]:
    return {"n": n, "squares": [i * i for i in range(n)]}


def _storage_key(state: State[Any]) -> str:
    data: Any = state.data
    key: str = data.metadata.storage_key
    return key


def _read_now(block: LaboxResultStorage, key: str) -> bytes:
    """The sync read, as Prefect calls it (``_sync`` is consumed by Prefect's dispatcher)."""
    reader: Any = block.read_path
    data: bytes = reader(key, _sync=True)
    return data


_READER = """
import json, sys, uuid
from prefect.results import ResultRecord
from labox_prefect import LaboxResultStorage, LaboxSerializer
from labox_prefect.pointer import ResultPointer

key, manifest_id, database = sys.argv[1:4]
record = ResultRecord.deserialize(LaboxResultStorage().read_path(key, _sync=True))
pointer = ResultPointer(uuid.UUID(manifest_id), database)
by_id = LaboxSerializer().loads(pointer.dump())
print(json.dumps({"by_key": record.result, "by_id": by_id}))
"""


def test_a_fresh_process_reads_a_result_by_key_and_by_manifest_id(backend: Backend) -> None:
    @flow
    def pipeline() -> State[Any]:
        return measure(5, return_state=True)

    state = pipeline()
    key = _storage_key(state)
    (record,) = manifests(**{"prefect.task_run_id": str(state.state_details.task_run_id)})
    database = LaboxResultStorage().target().database_label

    reader = subprocess.run(
        [sys.executable, "-c", _READER, key, str(record.id), database],
        capture_output=True,
        text=True,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
        timeout=120,
        check=False,
    )

    assert reader.returncode == 0, reader.stderr
    loaded = json.loads(reader.stdout.strip().splitlines()[-1])
    expected = {"n": 5, "squares": [0, 1, 4, 9, 16]}
    assert loaded == {"by_key": expected, "by_id": expected}


def test_another_serializer_is_stored_whole_as_a_labox_record(backend: Backend) -> None:
    salt = uuid.uuid4().hex
    block = saved_default_block()

    @task(persist_result=True, result_storage=block, result_serializer="json", cache_policy=INPUTS)
    def plain(value: str) -> dict[str, str]:
        return {"value": value}

    @flow
    def pipeline() -> tuple[str, Any]:
        state = plain(salt, return_state=True)
        context_run = str(state.state_details.flow_run_id)
        return context_run, state

    run_id, state = pipeline()
    _, cached = pipeline()

    assert cached.name == "Cached"
    assert cached.result() == {"value": salt}
    (record,) = manifests(**{FLOW_RUN_ID: run_id})  # the JSON record, tagged like any result
    assert record.tags[KIND] == "task"
    assert record.tags[TASK_NAME] == "plain"
    stored = result_key(_storage_key(state))
    assert stored is not None
    assert stored.manifest_id == record.id
    assert stored.record is None  # the bytes live in the manifest's content


def test_sync_and_async_pairs_round_trip(backend: Backend) -> None:
    block = LaboxResultStorage()
    content = b'{"metadata":{"serializer":{"type":"json"}},"result":"1"}'
    key = f"direct-{uuid.uuid4().hex}"

    writer: Any = block.write_path
    assert writer(key, content=content, _sync=True) == key
    assert _read_now(block, key) == content

    async def async_pair() -> bytes:
        await block.awrite_path(key, content + b" ")
        return await block.aread_path(key)

    import asyncio

    assert asyncio.run(async_pair()) == content + b" "  # Prefect overwrites keys


def test_a_missing_key_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(ResultKeyNotFoundError, match="no-such-key"):
        _read_now(LaboxResultStorage(), "no-such-key")


def test_a_failed_run_keeps_its_error_without_a_manifest(backend: Backend) -> None:
    @labox_task
    def broken() -> int:
        raise ValueError("bad input")

    @flow
    def pipeline() -> tuple[str, Any]:
        state = broken(return_state=True)
        return str(state.state_details.flow_run_id), _storage_key(state)

    run_id, key = pipeline()

    assert manifests(**{FLOW_RUN_ID: run_id}) == []
    stored = result_key(key)
    assert stored is not None
    assert stored.manifest_id is None
    record: ResultRecord[Any] = ResultRecord.deserialize(_read_now(LaboxResultStorage(), key))
    assert isinstance(record.result, RunFailure)
    assert record.result.type_name == "builtins.ValueError"
    assert record.result.message == "bad input"


def test_block_secrets_stay_secret(backend: Backend) -> None:
    block = LaboxResultStorage(
        database_url=SecretStr("postgresql+asyncpg://user:hunter2@db/x"),
        aws_secret_access_key=SecretStr("s3-secret"),
    )

    shown = f"{block!r} {block.target()!r} {block.target().database_label}"

    assert "hunter2" not in shown
    assert "s3-secret" not in shown
    assert "hunter2" not in LaboxSerializer(tags={"a": "b"}).model_dump_json()


def test_a_flow_return_value_is_tagged_as_a_flow_result(backend: Backend) -> None:
    block = saved_default_block()

    @flow(
        persist_result=True,
        result_storage=block,
        result_serializer=LaboxSerializer(tags={"report": "weekly"}),
    )
    def reporting() -> dict[str, int]:
        return {"total": 3}

    state = reporting(return_state=True)

    assert state.result() == {"total": 3}
    (record,) = manifests(**{FLOW_RUN_ID: str(state.state_details.flow_run_id)})
    assert record.tags[KIND] == "flow"
    assert record.tags["prefect.flow_name"] == "reporting"
    assert record.tags["report"] == "weekly"
    assert "prefect.task_name" not in record.tags
