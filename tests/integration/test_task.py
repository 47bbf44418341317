"""labox_task end to end: sync and async tasks, submit, map, retries, tags, one manifest each."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import textwrap
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from prefect import State, flow, tags
from prefect.context import FlowRunContext
from prefect.results import ResultRecord
from prefect.task_engine import SyncTaskRunEngine

import labox_prefect
from labox_prefect import (
    LaboxSerializer,
    RegistryModuleNotFoundError,
    ResultPersistenceError,
    labox_task,
)
from labox_prefect import context as context_module
from labox_prefect import persistence as persistence_module
from labox_prefect.context import (
    FLOW_NAME,
    FLOW_RUN_ID,
    FLOW_RUN_NAME,
    KIND,
    TASK_NAME,
    TASK_RUN_ID,
)
from labox_prefect.core import InvalidTagsError, LaboxError
from labox_prefect.errors import ArgumentTypeError, InvalidArgumentError
from labox_prefect.persistence import registry_modules
from tests.integration._helpers import manifests, result_key
from tests.integration.conftest import Backend


@labox_task(tags={"project": "demo"}, prefect_tags=["nightly"])
def double(x: int) -> dict[str, int]:
    return {"x": x * 2}


@labox_task(tags={"project": "demo"})
async def adouble(x: int) -> list[int]:
    await asyncio.sleep(0)
    return [x, x]


def _flow_run_id() -> str:
    context = FlowRunContext.get()
    assert context is not None
    assert context.flow_run is not None
    return str(context.flow_run.id)


def test_sync_task_call_submit_and_map(backend: Backend) -> None:
    @flow
    def pipeline() -> tuple[str, list[Any]]:
        values = [double(1), double.submit(2).result(), *(f.result() for f in double.map([3, 4]))]
        return _flow_run_id(), values

    run_id, values = pipeline()

    assert values == [{"x": 2}, {"x": 4}, {"x": 6}, {"x": 8}]
    records = manifests(**{FLOW_RUN_ID: run_id})
    assert len(records) == 4  # one manifest per output, none for Prefect's own record
    assert len({r.tags[TASK_RUN_ID] for r in records}) == 4
    for record in records:
        assert record.tags[KIND] == "task"
        assert record.tags[TASK_NAME] == "double"
        assert record.tags[FLOW_NAME] == "pipeline"
        assert record.tags[FLOW_RUN_NAME]
        assert record.tags["prefect.tag.nightly"] == "true"
        assert record.tags["project"] == "demo"


async def test_async_task_call_submit_and_map(backend: Backend) -> None:
    @flow
    async def pipeline() -> tuple[str, list[Any]]:
        first = await adouble(1)
        second = adouble.submit(2).result()
        mapped = [f.result() for f in adouble.map([3, 4])]
        return _flow_run_id(), [first, second, *mapped]

    run_id, values = await pipeline()

    assert values == [[1, 1], [2, 2], [3, 3], [4, 4]]
    records = manifests(**{FLOW_RUN_ID: run_id})
    assert len(records) == 4
    assert {r.tags[TASK_NAME] for r in records} == {"adouble"}


def test_every_run_tag_is_recorded(backend: Backend) -> None:
    @flow
    def tagged() -> str:
        with tags("from-context"):
            double(5)
        return _flow_run_id()

    with tags("flow-level"):
        run_id = tagged()

    (record,) = manifests(**{FLOW_RUN_ID: run_id})
    assert record.tags["prefect.tag.nightly"] == "true"  # the task's own run tag
    assert record.tags["prefect.tag.from-context"] == "true"
    assert record.tags["prefect.tag.flow-level"] == "true"  # the flow run's tag


def test_retries_make_one_manifest(backend: Backend) -> None:
    attempts: list[int] = []

    @labox_task(retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("first attempt fails")
        return "done"

    @flow
    def pipeline() -> tuple[str, str]:
        return _flow_run_id(), flaky()

    run_id, value = pipeline()

    assert value == "done"
    assert len(attempts) == 2
    assert len(manifests(**{FLOW_RUN_ID: run_id})) == 1


def test_storage_key_points_at_the_task_manifest(backend: Backend) -> None:
    @flow
    def pipeline() -> State[Any]:
        return double(7, return_state=True)

    state = pipeline()

    data: Any = state.data
    record_metadata = data.metadata
    assert isinstance(record_metadata.serializer, LaboxSerializer)
    assert record_metadata.storage_block_id is not None  # a saved block: readable elsewhere
    stored = result_key(record_metadata.storage_key)
    assert stored is not None
    assert stored.record is not None
    (record,) = manifests(**{TASK_RUN_ID: str(state.state_details.task_run_id)})
    assert stored.manifest_id == record.id


def test_with_options_keeps_labox_persistence(backend: Backend) -> None:
    renamed = double.with_options(name="renamed-double")

    @flow
    def pipeline() -> tuple[str, dict[str, int]]:
        return _flow_run_id(), renamed(3)

    run_id, value = pipeline()

    assert value == {"x": 6}
    (record,) = manifests(**{FLOW_RUN_ID: run_id})
    assert record.tags[TASK_NAME] == "renamed-double"


def test_user_tags_must_not_use_the_prefect_namespace() -> None:
    with pytest.raises(InvalidTagsError, match=r"'prefect\.flow_name'"):
        labox_task(tags={"prefect.flow_name": "x"})


def test_a_tag_value_that_is_not_str_is_an_invalid_tags_error() -> None:
    with pytest.raises(InvalidTagsError, match=r"'n'"):
        labox_task(tags={"n": 1})  # type: ignore[dict-item]


def test_prefect_run_tags_go_in_prefect_tags() -> None:
    with pytest.raises(TypeError, match="prefect_tags"):
        labox_task(tags=["nightly"])  # type: ignore[call-overload]


def test_another_serializer_is_refused() -> None:
    with pytest.raises(TypeError, match="LaboxSerializer"):
        labox_task(result_serializer="pickle")


def test_persistence_cannot_be_turned_off() -> None:
    with pytest.raises(ValueError, match="persist_result"):
        labox_task(persist_result=False)


def test_a_cache_hit_in_the_same_run_makes_no_second_manifest(backend: Backend) -> None:
    marker = uuid.uuid4().hex

    @labox_task(tags={"marker": marker})
    def marked() -> int:
        return 1

    @flow
    def pipeline() -> None:
        marked()
        marked()

    pipeline()  # the default cache policy (inputs, source, run id) makes the 2nd call a hit

    assert len(manifests(marker=marker)) == 1


def test_the_key_is_readable_before_the_run_is_reported_completed(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    original = SyncTaskRunEngine.set_state

    def spying(self: Any, state: State[Any], force: bool = False) -> State[Any]:
        if state.is_completed() and isinstance(state.data, ResultRecord):
            key = state.data.metadata.storage_key
            assert key is not None
            seen.append(result_key(key))  # read from the database as Completed is reported
        return original(self, state, force)

    monkeypatch.setattr(SyncTaskRunEngine, "set_state", spying)

    @flow
    def pipeline() -> State[Any]:
        return double(11, return_state=True)

    state = pipeline()

    (stored,) = seen
    assert stored is not None
    assert stored.record is not None
    (record,) = manifests(**{TASK_RUN_ID: str(state.state_details.task_run_id)})
    assert stored.manifest_id == record.id
    assert state.result() == {"x": 22}
    # Prefect's own write of the same record changed nothing.
    assert result_key(stored.storage_key) == stored


def test_an_expiring_record_keeps_prefects_expiration(backend: Backend) -> None:
    @labox_task(cache_expiration=timedelta(hours=1))
    def expiring(x: int) -> int:
        return x + 1

    @flow
    def pipeline() -> State[Any]:
        return expiring(1, return_state=True)

    state = pipeline()

    metadata = state.data.metadata  # type: ignore[union-attr]
    stored = result_key(metadata.storage_key)
    assert stored is not None
    assert stored.record is not None
    written = json.loads(stored.record)["metadata"]["expiration"]
    assert written is not None
    assert datetime.fromisoformat(written) == metadata.expiration


def test_with_options_tags_are_labox_tags_and_prefect_tags_run_tags(backend: Backend) -> None:
    relabelled = double.with_options(tags={"project": "other", "stage": "b"}, prefect_tags=["x"])

    @flow
    def pipeline() -> tuple[str, State[Any]]:
        return _flow_run_id(), relabelled(2, return_state=True)

    run_id, state = pipeline()

    assert state.result() == {"x": 4}
    (record,) = manifests(**{FLOW_RUN_ID: run_id})
    assert record.tags["project"] == "other"  # replaces the decorator's Labox tags
    assert record.tags["stage"] == "b"
    assert record.tags["prefect.tag.x"] == "true"
    assert "prefect.tag.nightly" not in record.tags  # prefect_tags replaces the run tags
    assert isinstance(relabelled.result_serializer, LaboxSerializer)
    assert relabelled.tags == {"x"}
    assert double.with_options(name="same-tags").tags == {"nightly"}


def test_with_options_refuses_what_labox_task_refuses() -> None:
    with pytest.raises(TypeError, match="prefect_tags"):
        double.with_options(tags=["nightly"])  # type: ignore[arg-type]
    with pytest.raises(InvalidTagsError, match=r"'prefect\.kind'"):
        double.with_options(tags={"prefect.kind": "x"})
    with pytest.raises(TypeError, match="LaboxSerializer"):
        double.with_options(result_serializer="json")


def test_user_tags_are_checked_once_per_task(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    checked: list[Any] = []
    original = context_module.check_tags

    def counting(tags: Any) -> dict[str, str]:
        if tags and tags.get("marker") == marker:
            checked.append(tags)
        return original(tags)

    monkeypatch.setattr(context_module, "check_tags", counting)

    @labox_task(tags={"marker": marker})
    def once(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        once(1)
        once.submit(2).result()

    pipeline()

    assert len(manifests(marker=marker)) == 2
    assert len(checked) == 1  # when the task was made; never again per run


def test_a_key_row_that_fails_leaves_no_record(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key row and the record commit together: when the row fails inside a task run,
    the run fails and neither the manifest nor the key is left behind."""
    marker = uuid.uuid4().hex
    keys: list[str] = []
    original = persistence_module.add_result_key

    async def failing(session: Any, storage_key: str, *args: Any) -> None:
        await original(session, storage_key, *args)  # the row is written, then the save fails
        keys.append(storage_key)
        raise RuntimeError("the key row could not be written")

    monkeypatch.setattr(persistence_module, "add_result_key", failing)

    @labox_task(tags={"marker": marker})
    def once(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        once(3)

    with pytest.raises(ResultPersistenceError, match="the key row could not be written"):
        pipeline()

    (key,) = keys
    assert result_key(key) is None
    assert manifests(marker=marker) == []


def test_a_registry_module_python_cannot_find_is_refused_when_the_task_is_defined() -> None:
    with pytest.raises(
        RegistryModuleNotFoundError, match=r"registry_modules of task 'c'.*'no_such_mod'"
    ) as caught:

        @labox_task(registry_modules=["no_such_mod"])
        def c() -> int:
            return 1

    assert isinstance(caught.value, ModuleNotFoundError)
    assert "reachable" not in str(caught.value)
    assert "no_such_mod" not in registry_modules()  # the other tasks' registries never see it


def test_with_options_refuses_a_registry_module_python_cannot_find() -> None:
    with pytest.raises(RegistryModuleNotFoundError, match=r"'renamed'.*'no_such.pkg'"):
        double.with_options(name="renamed", registry_modules=["no_such.pkg"])
    assert "no_such.pkg" not in registry_modules()


def test_one_str_of_registry_modules_is_one_module_not_its_characters() -> None:
    with pytest.raises(RegistryModuleNotFoundError, match=r"the module 'no_such_mod'"):

        @labox_task(registry_modules="no_such_mod")
        def c() -> int:
            return 1

    with pytest.raises(RegistryModuleNotFoundError, match=r"the module 'no_such.pkg'"):
        double.with_options(name="renamed", registry_modules="no_such.pkg")

    named = labox_task(registry_modules="json")(lambda: 1)
    assert named.labox_registry_modules == ("json",)


@pytest.mark.parametrize(
    ("options", "error", "builtin"),
    [
        ({"tags": ["x"]}, ArgumentTypeError, TypeError),
        ({"persist_result": False}, InvalidArgumentError, ValueError),
        ({"result_serializer": "pickle"}, ArgumentTypeError, TypeError),
    ],
)
def test_refused_options_are_labox_errors_and_builtin_errors(
    options: dict[str, Any], error: type[Exception], builtin: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        labox_task(**options)
    assert isinstance(caught.value, LaboxError)
    assert isinstance(caught.value, builtin)


def test_an_empty_tag_key_is_refused() -> None:
    with pytest.raises(InvalidTagsError, match="the key is empty"):
        labox_task(tags={"": "x"})


def test_the_docstring_documents_arguments_result_errors_and_an_example_that_runs(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = inspect.getdoc(labox_task) or ""
    for section in ("Args:", "Returns:", "Where results go:", "Raises:", "Examples:"):
        assert f"\n{section}\n" in doc, section
    for parameter in inspect.signature(labox_task).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            assert f"**{parameter.name}:" in doc
        elif parameter.kind is not parameter.POSITIONAL_ONLY:
            assert f"    {parameter.name}:" in doc, parameter.name
    for error in (
        "InvalidTagsError",
        "ArgumentTypeError",
        "InvalidArgumentError",
        "RegistryModuleNotFoundError",
        "ResultNotStorableError",
        "ResultPersistenceError",
        "RegistryModuleImportError",
    ):
        assert error in doc, error
        assert error in labox_prefect.__all__, error
    for where in ("LaboxResultStorage", "default", "LABOX_DATABASE_URL", "find_results"):
        assert where in doc, where

    found = re.search(r"```python\n(.*?)```", doc, re.DOTALL)
    assert found is not None
    example = compile(textwrap.dedent(found.group(1)), "labox_task docstring", "exec")
    exec(example, {"__name__": "labox_task_docstring"})

    assert capsys.readouterr().out.splitlines()[-1] == "{'rows': 1000.0, 'auc': 0.91}"
