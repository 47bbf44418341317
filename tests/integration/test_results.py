"""find_results / afind_results and ResultRef: every filter, order, loading, clear errors."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from prefect import flow, task
from prefect.context import FlowRunContext
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect import ResultComponentNotRegisteredError, labox_task, results
from labox_prefect.context import FLOW_RUN_ID, KIND, RESULT_TYPE
from labox_prefect.core import (
    InvalidTagsError,
    LaboxError,
    ManifestNotFoundError,
    ManifestRow,
    find_manifest_rows,
    sqlite_tags,
)
from labox_prefect.core.database import ORDERED_TAG_INDEXES
from labox_prefect.core.extra.pydantic import StorableModel
from labox_prefect.core.testing import forgotten
from labox_prefect.errors import (
    ArgumentTypeError,
    DatabaseNotInitializedError,
    InvalidArgumentError,
)
from labox_prefect.results import (
    ResultClassNotRegisteredError,
    ResultRef,
    afind_results,
    aget_result,
    find_results,
    get_result,
    tag_filter,
)
from labox_prefect.target import Target
from tests.conftest import table_names
from tests.integration._records import module_with_a_point, prefect_tags, save
from tests.integration._shout import shout
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class Unlisted(StorableModel, class_id="e0c4a1b7d2f34a96"):
    """A storable class no registry module exports: loading it must say what to register."""

    note: str


def _ids(refs: list[ResultRef]) -> list[uuid.UUID]:
    return [ref.manifest_id for ref in refs]


def test_each_filter_selects_its_results_newest_first(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    first = save({"n": 1}, {**prefect_tags(task="train", flow_run_id=run_a), **mark})
    second = save(
        {"n": 2}, {**prefect_tags(task="score", flow_run_id=run_a, run_tags=("gpu",)), **mark}
    )
    third = save(
        [3],
        {
            **prefect_tags(flow="weekly", task="train", flow_run_id=run_b, run_tags=("gpu", "x")),
            **mark,
            "model": "b",
        },
    )

    assert _ids(find_results(tags=mark)) == [third.id, second.id, first.id]
    assert _ids(find_results(tags=mark, flow_name="nightly")) == [second.id, first.id]
    assert _ids(find_results(tags=mark, task_name="train")) == [third.id, first.id]
    assert _ids(find_results(tags=mark, flow_run_id=run_a)) == [second.id, first.id]
    assert _ids(find_results(tags=mark, flow_run_id=str(run_b).upper())) == [third.id]
    assert _ids(find_results(tags=mark, prefect_tags=["gpu"])) == [third.id, second.id]
    assert _ids(find_results(tags=mark, prefect_tags=["gpu", "x"])) == [third.id]
    # one str is one tag, as labox_task(prefect_tags="gpu") and Prefect read it
    assert _ids(find_results(tags=mark, prefect_tags="gpu")) == [third.id, second.id]
    assert _ids(find_results(tags={**mark, "model": "b"})) == [third.id]
    assert _ids(find_results(tags=mark, limit=2)) == [third.id, second.id]
    assert _ids(find_results(tags=mark, limit=None)) == [third.id, second.id, first.id]
    assert _ids(find_results(tags=mark, limit=0)) == [third.id, second.id, first.id]  # as --limit 0
    assert find_results(tags=mark, task_name="missing") == []


def test_since_takes_a_timedelta_or_an_aware_datetime(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    saved = save("recent", {**prefect_tags(), **mark})

    assert _ids(find_results(tags=mark, since=timedelta(minutes=5))) == [saved.id]
    assert _ids(find_results(tags=mark, since=saved.created_at)) == [saved.id]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert find_results(tags=mark, since=later) == []


def test_a_ref_reads_its_tags_and_loads_its_value(backend: Backend) -> None:
    run_id = uuid.uuid4()
    tags = {**prefect_tags(flow_run_id=run_id, run_tags=("nightly-build",)), "owner": "ana"}
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    saved = save(frame, tags)

    (ref,) = find_results(tags={"owner": "ana"}, flow_run_id=run_id)

    assert ref.manifest_id == saved.id
    assert ref.class_id == saved.class_id
    assert ref.created_at == saved.created_at
    assert ref.kind == "task"
    assert (ref.flow_name, ref.task_name) == ("nightly", "train")
    assert ref.flow_run_id == run_id
    assert ref.flow_run_name == tags["prefect.flow_run_name"]
    assert ref.task_run_id == uuid.UUID(tags["prefect.task_run_id"])
    assert (ref.deployment_id, ref.deployment_name) == (None, None)
    assert ref.prefect_tags == ("nightly-build",)
    assert ref.user_tags == {"owner": "ana"}
    assert ref.storable_class_name() == "labox_prefect.core.builtin.storables.value.StorableValue"
    pd.testing.assert_frame_equal(ref.load(), frame)  # the plain value, not a StorableValue
    assert get_result(str(saved.id)) == ref


@sqlite_only
def test_a_ref_names_its_result_type_and_prints_short(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    many = {f"label{i}": "x" * 40 for i in range(20)}
    tags = {**prefect_tags(), RESULT_TYPE: "pandas.core.frame:DataFrame", **mark, **many}
    saved = save(pd.DataFrame({"a": [1]}), tags)

    (ref,) = find_results(tags=mark)

    assert ref.result_type == "pandas.core.frame:DataFrame"
    created = saved.created_at.isoformat(sep=" ", timespec="seconds")
    assert repr(ref) == (
        f"ResultRef({saved.id}, task='train', flow='nightly', "
        f"type='pandas.core.frame:DataFrame', created_at={created})"
    )


@sqlite_only
async def test_async_queries_and_loads(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    saved = save({"answer": 42}, {**prefect_tags(), **mark})

    (ref,) = await afind_results(tags=mark, task_name="train")

    assert ref.manifest_id == saved.id
    assert await ref.aload() == {"answer": 42}
    assert (await aget_result(saved.id)).tags == ref.tags


@sqlite_only
def test_queries_work_inside_flows_and_tasks(backend: Backend) -> None:
    @labox_task(tags={"stage": "made"})
    def make(n: int) -> dict[str, int]:
        return {"n": n}

    @task
    def count_in_task(run_id: str) -> int:
        return len(find_results(flow_run_id=run_id, task_name="make"))

    @task
    async def load_in_async_task(run_id: str) -> list[int]:
        refs = await afind_results(flow_run_id=run_id, tags={"stage": "made"})
        return sorted([(await ref.aload())["n"] for ref in refs])

    @flow
    def pipeline() -> tuple[str, int, int, list[int]]:
        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        run_id = str(context.flow_run.id)
        make.map([1, 2, 3]).wait()
        in_flow = len(find_results(flow_run_id=run_id))
        # Prefect types an async task's future result as its coroutine; it is the list.
        loaded = cast(list[int], load_in_async_task.submit(run_id).result())
        return run_id, in_flow, count_in_task(run_id), loaded

    run_id, in_flow, in_task, loaded = pipeline()

    assert (in_flow, in_task, loaded) == (3, 3, [1, 2, 3])
    refs = find_results(flow_run_id=run_id)
    assert {ref.tags[FLOW_RUN_ID] for ref in refs} == {run_id}
    assert {ref.tags[KIND] for ref in refs} == {"task"}


@sqlite_only
def test_an_unregistered_class_names_the_setting_to_fix(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    save(Unlisted(note="hi"), {**prefect_tags(task="annotate"), **mark}, storables=(Unlisted,))
    with forgotten(Unlisted):  # as a process that never imported the class
        (ref,) = find_results(tags=mark)

        assert ref.storable_class_name() is None
        with pytest.raises(ResultClassNotRegisteredError) as caught:
            ref.load()
    message = str(caught.value)
    assert "LABOX_REGISTRY_MODULES" in message
    assert str(ref.class_id) in message
    assert "task 'annotate'" in message


@sqlite_only
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_plain_class_not_imported_raises_the_integration_error(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    module = module_with_a_point(f"mytypes_{uuid.uuid4().hex[:8]}", monkeypatch)
    point = module.Point(1, 2)
    value = (point, {3}) if wrapped else point
    mark = {"suite": uuid.uuid4().hex}
    saved = save(value, {**prefect_tags(task="locate", flow="survey"), **mark})
    monkeypatch.delitem(sys.modules, module.__name__)  # as a process that never imported it
    (ref,) = find_results(tags=mark)

    with pytest.raises(ResultClassNotRegisteredError) as caught:
        ref.load()

    message = str(caught.value)
    assert f"Point of module {module.__name__} (inside the stored value)" in message
    assert str(saved.class_id) not in message  # the wrapper's id, not the missing class's
    assert f"import {module.__name__}" in message
    assert "LABOX_REGISTRY_MODULES" in message
    assert "task 'locate'" in message
    assert "flow 'survey'" in message
    assert str(saved.id) in message
    assert "while rebuilding" not in message
    assert not getattr(caught.value, "__notes__", None)
    assert caught.value.module == module.__name__
    monkeypatch.setitem(sys.modules, module.__name__, module)  # the fix: import it
    assert ref.load() == value


@sqlite_only
def test_a_missing_serializer_module_names_what_a_loader_can_do(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = {"suite": uuid.uuid4().hex}
    saved = save("quiet words", {**prefect_tags(task="speak"), **mark}, serializers=(shout,))
    (ref,) = find_results(tags=mark)

    with pytest.raises(ResultComponentNotRegisteredError) as caught:
        ref.load()

    message = str(caught.value)
    assert "serializer 'test.shout@v1'" in message
    assert "LABOX_REGISTRY_MODULES" in message
    assert "Registry(" not in message
    assert str(saved.id) in message
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", "tests.integration._shout")  # the fix
    assert ref.load() == "quiet words"


@sqlite_only
def test_a_missing_id_says_where_it_looked(backend: Backend) -> None:
    with pytest.raises(ManifestNotFoundError) as caught:
        get_result(uuid.uuid4())
    assert any("labox.db" in note for note in caught.value.__notes__)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"flow_run_id": "not-a-uuid"}, ValueError, "flow_run_id must be a UUID"),
        ({"limit": -1}, ValueError, "int >= 0"),
        ({"since": timedelta(hours=-1)}, ValueError, "negative"),
        ({"since": datetime(2024, 1, 1)}, ValueError, "no timezone"),
        ({"since": "2h"}, TypeError, "timedelta"),
        ({"prefect_tags": ["gpu", 1]}, TypeError, "prefect_tags item"),
        ({"task_name": ""}, TypeError, "non-empty string"),
        (
            {"tags": {"prefect.flow_name": "a"}, "flow_name": "b"},
            ValueError,
            "contradicts",
        ),
    ],
)
@sqlite_only
def test_bad_filters_are_clear_errors(
    backend: Backend, kwargs: dict[str, object], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        find_results(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "builtin"),
    [
        ({"limit": -1}, InvalidArgumentError, ValueError),
        ({"flow_run_id": "x"}, InvalidArgumentError, ValueError),
        ({"since": timedelta(hours=-1)}, InvalidArgumentError, ValueError),
        ({"since": datetime(2024, 1, 1)}, InvalidArgumentError, ValueError),
        ({"prefect_tags": [1]}, ArgumentTypeError, TypeError),
        ({"task_name": ""}, ArgumentTypeError, TypeError),
    ],
)
def test_bad_filters_are_labox_errors_and_builtin_errors(
    kwargs: dict[str, object], error: type[Exception], builtin: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        find_results(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, LaboxError)
    assert isinstance(caught.value, builtin)


@sqlite_only
def test_prefect_keys_may_be_queried_through_tags(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    flow_result = save("done", {**prefect_tags(task=None), **mark})
    save("step", {**prefect_tags(), **mark})

    assert _ids(find_results(tags={**mark, KIND: "flow"})) == [flow_result.id]
    assert find_results(tags={**mark, KIND: "flow"})[0].task_name is None


def test_the_filters_of_find_results_name_keys_with_an_ordered_index() -> None:
    # The core indexes these labels without importing the integration: a renamed key would
    # leave find_results on the unordered path (a sort of every match over 1M records).
    wanted = tag_filter(flow_name="etl", task_name="fit", flow_run_id=uuid.uuid4())
    indexed = {index.key for index in ORDERED_TAG_INDEXES}
    assert set(wanted) <= indexed
    assert {index.only for index in ORDERED_TAG_INDEXES} - {None} == {(KIND, "flow")}


def test_run_tags_and_users_tags_have_sqlite_tag_index_entries() -> None:
    # The core's tag index leaves out the run context's keys by their labels: a renamed
    # run-tag prefix would leave prefect_tags= on SQLite reading every record again.
    wanted = tag_filter(tags={"project": "x"}, prefect_tags=["gpu"])
    assert all(sqlite_tags.indexed(key) for key in wanted)
    context = tag_filter(flow_name="etl", task_name="fit", flow_run_id=uuid.uuid4())
    assert not any(sqlite_tags.indexed(key) for key in {**context, KIND: "flow"})


def test_a_query_holds_no_transaction_open(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One SELECT needs none: on PostgreSQL, no BEGIN and no ROLLBACK round trips.
    mark = {"suite": uuid.uuid4().hex}
    saved = save({"n": 1}, mark)
    in_transaction: list[bool] = []

    async def spy(session: AsyncSession, **filters: Any) -> list[ManifestRow]:
        found = await find_manifest_rows(session, **filters)
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        open_ = raw.is_in_transaction() if backend.name != "sqlite" else raw.in_transaction
        in_transaction.append(bool(open_))
        return found

    monkeypatch.setattr(results, "find_manifest_rows", spy)
    assert _ids(find_results(tags=mark)) == [saved.id]
    assert in_transaction == [False]


def test_an_empty_tag_key_is_refused() -> None:
    with pytest.raises(InvalidTagsError, match="the key is empty"):
        find_results(tags={"": "x"})


@labox_task(tags={"suite": "first-save"})
def first_result() -> dict[str, int]:
    return {"first": 1}


@sqlite_only
def test_reading_a_database_without_labox_tables_creates_none_and_names_the_fix(
    backend: Backend, empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = Target(empty_postgres_url, backend.storage_url)

    with pytest.raises(DatabaseNotInitializedError) as caught:
        find_results(block=target)
    message = str(caught.value)
    assert "has no Labox tables" in message
    assert "labox-prefect db upgrade" in message
    assert "a labox_task run" in message
    assert isinstance(caught.value, LookupError)
    with pytest.raises(DatabaseNotInitializedError):
        get_result(uuid.uuid4(), block=target)
    assert table_names(empty_postgres_url) == set()

    monkeypatch.setenv("LABOX_DATABASE_URL", empty_postgres_url)  # a save creates them

    @flow
    def pipeline() -> dict[str, int]:
        return first_result()

    assert pipeline() == {"first": 1}
    (ref,) = find_results(tags={"suite": "first-save"}, block=target)
    assert ref.load() == {"first": 1}


@sqlite_only
def test_the_embedded_default_lists_nothing_before_the_first_save_and_creates_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    target = Target.from_settings()
    database = tmp_path / "labox" / "labox.db"
    assert target.database_url.endswith(database.as_posix())

    assert find_results(block=target) == []
    with pytest.raises(ManifestNotFoundError, match="nothing was saved to the embedded"):
        get_result(uuid.uuid4(), block=target)
    assert not database.exists()


@sqlite_only
def test_a_configured_sqlite_file_without_labox_tables_is_an_error(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "typo" / "labox.db"
    monkeypatch.setenv("LABOX_DATABASE_URL", f"sqlite+aiosqlite:///{missing}")

    with pytest.raises(DatabaseNotInitializedError, match="No Labox database at"):
        find_results(block=Target.from_settings())
    assert not missing.parent.exists()
