"""labox_task: a Prefect task whose output is persisted as a typed, tagged Labox record.

``@labox_task`` or ``@labox_task(tags={...}, prefect_tags=[...], registry_modules=[...],
**any prefect.task option)``:

- ``tags``: Labox tags (a mapping of str to str) added to every record of this task;
- ``prefect_tags``: Prefect run tags (what ``prefect.task(tags=...)`` takes); they are
  recorded too, as ``prefect.tag.<tag>``;
- ``registry_modules``: modules whose storables and serializers the registry must know (the
  code-side twin of LABOX_REGISTRY_MODULES).

The output is saved inside the task run, right after the function returns, so a result that
cannot be persisted (no serializer for its type, database or storage down) fails the task
run with the error, and retries apply; Prefect on its own would only log it. Prefect then
writes its result record through ``LaboxResultStorage``, which points the storage key at
that same manifest: one output, one manifest. Persisting needs no other set-up: when no
``result_storage`` is given, the block named ``default`` (settings from the environment) is
used, and saved the first time a task runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from types import GeneratorType
from typing import Any, TypeVar, cast, overload

from prefect import State, Task
from prefect._internal.result_records import ResultRecord
from prefect.context import TaskRunContext
from prefect.states import is_state_iterable
from prefect.transactions import get_transaction
from prefect.types import DateTime
from prefect.types._datetime import now
from typing_extensions import ParamSpec

from labox_prefect.artifacts import apublish_result_artifact, artifacts_enabled
from labox_prefect.artifacts import publish_result_artifact as _publish
from labox_prefect.context import check_user_tags
from labox_prefect.core import LaboxError
from labox_prefect.result_keys import PlannedKey
from labox_prefect.result_storage import LaboxResultStorage, saved_default_block
from labox_prefect.serializer import (
    LaboxSerializer,
    SavedResult,
    asave_result,
    register_modules,
    save_result,
    saved_outputs,
)

P = ParamSpec("P")
R = TypeVar("R")


class ResultPersistenceError(LaboxError, RuntimeError):
    """A labox_task's output could not be saved; the task run fails with this error."""


class LaboxTask(Task[P, R]):
    """A Prefect Task whose result storage defaults to the saved ``default`` Labox block.

    The block is looked up (and saved if missing) when Prefect first reads the task's
    result storage, i.e. when the task runs, never at import time.
    """

    _labox_storage: Any = None

    @property
    def result_storage(self) -> Any:
        if self._labox_storage is None:
            self._labox_storage = saved_default_block()
        return self._labox_storage

    @result_storage.setter
    def result_storage(self, value: Any) -> None:
        self._labox_storage = value

    def with_options(self, **options: Any) -> LaboxTask[P, R]:
        """``Task.with_options``, keeping the lazy default block and this class."""
        options.setdefault("result_storage", self._labox_storage)
        copy = super().with_options(**options)
        storage = copy.__dict__.pop("result_storage", None)
        copy.__class__ = LaboxTask
        assert isinstance(copy, LaboxTask)
        copy._labox_storage = storage
        return copy


@overload
def labox_task(__fn: Callable[P, R], /) -> LaboxTask[P, R]: ...
@overload
def labox_task(
    *,
    tags: Mapping[str, str] | None = None,
    prefect_tags: Iterable[str] | None = None,
    registry_modules: Iterable[str] = (),
    **task_options: Any,
) -> Callable[[Callable[P, R]], LaboxTask[P, R]]: ...
def labox_task(
    __fn: Callable[P, R] | None = None,
    /,
    *,
    tags: Mapping[str, str] | None = None,
    prefect_tags: Iterable[str] | None = None,
    registry_modules: Iterable[str] = (),
    **task_options: Any,
) -> LaboxTask[P, R] | Callable[[Callable[P, R]], LaboxTask[P, R]]:
    """Decorate a function as a Prefect task whose output is stored through Labox."""
    user_tags = _user_tags(tags, task_options)
    register_modules(list(registry_modules))
    serializer = LaboxSerializer(tags=user_tags)
    options = _task_options(task_options, serializer, prefect_tags)

    def decorate(fn: Callable[P, R]) -> LaboxTask[P, R]:
        return LaboxTask(fn=_persisting(fn, user_tags), **options)

    return decorate(__fn) if __fn is not None else decorate


def _user_tags(tags: Mapping[str, str] | None, options: dict[str, Any]) -> dict[str, str]:
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(
            f"labox_task(tags=...) takes Labox tags as a mapping, e.g. tags={{'project': 'x'}}; "
            f"got {type(tags).__name__}. Prefect run tags go in prefect_tags=[...]."
        )
    given = options.get("result_serializer")
    if given is not None and not isinstance(given, LaboxSerializer):
        raise TypeError(
            f"labox_task stores results through LaboxSerializer; remove result_serializer="
            f"{given!r} (or use prefect.task to persist with another serializer)."
        )
    from_serializer = given.tags if isinstance(given, LaboxSerializer) else {}
    return {**from_serializer, **check_user_tags(tags)}


def _task_options(
    options: dict[str, Any], serializer: LaboxSerializer, prefect_tags: Iterable[str] | None
) -> dict[str, Any]:
    if options.get("persist_result", True) is not True:
        raise ValueError(
            "labox_task always persists its result; use prefect.task for a task that "
            "persists nothing (persist_result=False)."
        )
    if "fn" in options or "tags" in options:
        raise TypeError("labox_task: pass the function by decorating it; run tags as prefect_tags.")
    if isinstance(prefect_tags, str):
        prefect_tags = [prefect_tags]
    return {
        **options,
        "persist_result": True,
        "result_serializer": serializer,
        "tags": list(prefect_tags) if prefect_tags is not None else None,
    }


def _persisting(fn: Callable[P, R], user_tags: dict[str, str]) -> Callable[P, R]:
    """``fn``, saving its return value through Labox inside the task run."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"labox_task cannot decorate the generator {fn.__qualname__}: Prefect does not "
            f"persist generator results. Return a value (or a StorableStream) instead."
        )
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            context = _own_run(run_async)
            if context is not None and not isinstance(result, State):
                details = artifacts_enabled()
                saved = await _guarded_async(result, user_tags, details, context)
                saved_outputs.put(context.task_run.id, result, saved)
                if details:
                    await apublish_result_artifact(saved)
            return result

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        context = _own_run(run)
        if context is not None and not isinstance(result, State):
            details = artifacts_enabled()
            try:
                key = planned_key(context, result)
                saved = save_result(result, user_tags, details=details, key=key)
            except LaboxError:
                raise
            except Exception as error:
                raise _persistence_error(context, error) from error
            saved_outputs.put(context.task_run.id, result, saved)
            if details:
                _publish(saved)
        return result

    return run


async def _guarded_async(
    result: Any, user_tags: dict[str, str], details: bool, context: TaskRunContext
) -> SavedResult:
    try:
        key = planned_key(context, result)
        return await asave_result(result, user_tags, details=details, key=key)
    except LaboxError:
        raise
    except Exception as error:
        raise _persistence_error(context, error) from error


def planned_key(context: TaskRunContext, result: Any) -> PlannedKey | None:
    """The key and record Prefect will write for ``result`` as soon as the run completes.

    Stored with the manifest, in the same call to the database, they are readable by key
    before Prefect reports the run Completed (Prefect reports it before it writes), and
    Prefect's own write of that very record then has nothing left to do (see
    LaboxResultStorage.write_path). Only when Prefect's write is certain and predictable:
    plain data (not states, which Prefect aggregates), a cache key, a transaction that
    commits on its own (a parent transaction may still roll back) and a saved Labox block
    holding record and result together. Anything else is written by Prefect as before.
    """
    transaction = get_transaction()
    store = context.result_store
    if (
        transaction is None
        or transaction.key is None
        or not transaction.write_on_commit
        or transaction.get_parent() is not None
        or store.metadata_storage is not None
        or store.result_storage_block_id is None
        or not isinstance(store.result_storage, LaboxResultStorage)
        or isinstance(result, (GeneratorType, ResultRecord))
        or is_state_iterable(result)
    ):
        return None
    expiration = context.task.cache_expiration
    record = store.create_result_record(
        result,
        key=transaction.key,
        # Prefect counts the expiration from a moment later: its record then differs by
        # that much, and its write replaces this one.
        expiration=None if expiration is None else cast(DateTime, now("UTC") + expiration),
    )

    def render(pointer: bytes) -> str:
        # What ResultRecord.serialize() makes, LaboxSerializer.dumps giving ``pointer``.
        return record.model_copy(update={"result": pointer}).model_dump_json(serialize_as_any=True)

    storage_key = record.metadata.storage_key
    return None if storage_key is None else PlannedKey(storage_key, render)


def _own_run(wrapper: Callable[..., Any]) -> TaskRunContext | None:
    """The task run of this very function (not of a task that calls ``.fn`` directly)."""
    context = TaskRunContext.get()
    if context is None or context.task.fn is not wrapper:
        return None
    return context


def _persistence_error(context: TaskRunContext, error: Exception) -> ResultPersistenceError:
    return ResultPersistenceError(
        f"Task {context.task.name!r} could not persist its result through Labox: "
        f"{type(error).__name__}: {error}. The run fails so that no result is lost; check "
        f"that the database (LABOX_DATABASE_URL) and storage (LABOX_STORAGE_URL) are reachable."
    )


__all__ = ["LaboxTask", "ResultPersistenceError", "labox_task"]
