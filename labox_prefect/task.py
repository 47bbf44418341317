"""labox_task: Prefect's ``Task`` interface whose output is persisted through the door.

``@labox_task`` or ``@labox_task(tags={...}, prefect_tags=[...], registry_modules=[...],
**any prefect.task option)``:

- ``tags``: Labox tags (a mapping of str to str) added to every record of this task;
- ``prefect_tags``: Prefect run tags (what ``prefect.task(tags=...)`` takes); they are
  recorded too, as ``prefect.tag.<tag>``;
- ``registry_modules``: modules whose storables and serializers the registry must know (the
  code-side twin of LABOX_REGISTRY_MODULES).

``.with_options(...)`` takes the same meanings: ``tags=`` replaces the Labox tags,
``prefect_tags=`` the run tags. The output is saved inside the task run, right after the
function returns (labox_prefect.persistence, step 1), so a result that cannot be persisted
fails the run, and retries apply. Persisting needs no other set-up: when no
``result_storage`` is given, the block named ``default`` (settings from the environment) is
used, and saved the first time a task runs. The Labox tags travel in the task's
``LaboxSerializer``: the one place both the eager save and ``dumps`` read them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from prefect import State, Task
from prefect.context import TaskRunContext
from pydantic import ValidationError
from typing_extensions import ParamSpec

from labox_prefect.context import names_of
from labox_prefect.core import InvalidTagsError
from labox_prefect.errors import ArgumentTypeError, InvalidArgumentError
from labox_prefect.persistence import (
    apersist_output,
    check_registry_modules,
    check_settings_registry_modules,
    persist_output,
    register_modules,
)
from labox_prefect.result_storage import saved_default_block
from labox_prefect.serializer import LaboxSerializer

P = ParamSpec("P")
R = TypeVar("R")


class LaboxTask(Task[P, R]):
    """A Prefect Task whose result storage defaults to the saved ``default`` Labox block.

    The block is looked up (and saved if missing) when Prefect first reads the task's
    result storage, i.e. when the task runs, never at import time.
    """

    _labox_storage: Any = None
    labox_registry_modules: tuple[str, ...] = ()
    """The modules of ``registry_modules``: imported before each run of the function."""

    @property
    def result_storage(self) -> Any:
        if self._labox_storage is None:
            self._labox_storage = saved_default_block()
        return self._labox_storage

    @result_storage.setter
    def result_storage(self, value: Any) -> None:
        self._labox_storage = value

    def with_options(  # type: ignore[override]
        self,
        *,
        tags: Mapping[str, str] | None = None,
        prefect_tags: Iterable[str] | None = None,
        registry_modules: Iterable[str] = (),
        **options: Any,
    ) -> LaboxTask[P, R]:
        """``Task.with_options`` with labox_task's meanings: ``tags`` are Labox tags (they
        replace the task's), ``prefect_tags`` Prefect run tags; the lazy default block and
        this class are kept."""
        modules = names_of(registry_modules)
        register_modules(modules, options.get("name", self.name))
        given = options.pop("result_serializer", None)
        if tags is not None or given is not None:
            options["result_serializer"] = _serializer(tags, given)
        options.update(_checked_options(options, prefect_tags))
        options.setdefault("result_storage", self._labox_storage)
        copy = super().with_options(**options)
        storage = copy.__dict__.pop("result_storage", None)
        copy.__class__ = LaboxTask
        assert isinstance(copy, LaboxTask)
        copy._labox_storage = storage
        copy.labox_registry_modules = (*self.labox_registry_modules, *modules)
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
    """Decorator to designate a function as a Prefect task whose result is stored through Labox.

    Use it where you would use ``prefect.task``, on a sync or async function, bare
    (``@labox_task``) or with options (``@labox_task(tags={...}, retries=2)``). Each run
    saves the function's return value, inside the run and right after the function returns,
    as one typed, tagged Labox record: a manifest plus its contents (small JSON values inline
    in the database, larger ones and DataFrames as blobs in the storage). The value is never
    pickled. Prefect keeps a pointer to the record, so caching, retries and ``.result()``
    work as usual, and ``find_results`` finds the record later by its tags.

    Args:
        tags: Labox tags for every record of this task: a mapping of str to str, e.g.
            ``{"project": "churn"}``. Keys may not start with ``prefect.``: Labox adds
            those itself (``prefect.flow_name``, ``prefect.task_name``,
            ``prefect.flow_run_id``, ``prefect.result_type``... see
            ``labox_prefect.context``).
        prefect_tags: Prefect run tags (what ``prefect.task(tags=...)`` takes); they are
            recorded too, as ``prefect.tag.<tag>``, and ``find_results(prefect_tags=...)``
            filters on them.
        registry_modules: Names of modules whose storables and serializers this task's
            results need (the code-side twin of ``LABOX_REGISTRY_MODULES``), e.g.
            ``["shop.serializers"]`` (one str is one module). Each must be importable by
            name when the task is defined; it is imported when the task first runs.
        **task_options: Any other option of ``prefect.task`` (``name``, ``retries``,
            ``cache_policy``, ``result_storage``, ``task_run_name``...), with the same
            meaning. ``result_storage`` takes a saved ``LaboxResultStorage`` block (or its
            ``"labox-result-storage/<name>"`` reference); ``persist_result`` is always
            True and ``result_serializer`` is the task's ``LaboxSerializer``.

    Returns:
        A ``LaboxTask``, a ``prefect.Task``: call it, ``.submit()`` it or ``.map()`` it in
        a flow as any task, and ``.with_options(...)`` takes the options above; called as
        ``labox_task(...)`` with options only, the decorator that makes one.

    Where results go:
        To the result storage the task names, else to the saved ``LaboxResultStorage``
        block named ``default``, created on the first run from the environment:
        ``LABOX_DATABASE_URL`` (default: a SQLite file under ``LABOX_HOME``,
        ``~/.labox-prefect``) and ``LABOX_STORAGE_URL`` (default: a folder beside it;
        ``s3://bucket/prefix`` for S3). Read them back with ``find_results(...)`` /
        ``afind_results(...)`` and ``ResultRef.load()``, or the ``labox-prefect results``
        command.

    Raises:
        When the task is defined: InvalidTagsError for a bad tag; ArgumentTypeError (a
        TypeError) for an option of the wrong type (``tags`` not a mapping, another
        ``result_serializer``, a generator function); InvalidArgumentError (a ValueError)
        for ``persist_result=False``; RegistryModuleNotFoundError for a module of
        ``registry_modules`` Python cannot find.

        In a run, failing that run (its retries apply): ResultNotStorableError when the
        value cannot be stored (no serializer for its type: the message names the type and
        the fix); ResultPersistenceError when the database or the storage fails;
        RegistryModuleImportError when a module of ``registry_modules`` raises on import
        (before the function runs; tasks that do not name it are not affected).

    Examples:
        Store a task's result with tags, then find it again:

        ```python
        from prefect import flow

        from labox_prefect import find_results, labox_task


        @labox_task(tags={"project": "churn"}, retries=2)
        def train(rows: int) -> dict[str, float]:
            return {"rows": float(rows), "auc": 0.91}


        @flow
        def pipeline() -> dict[str, float]:
            return train(1000)


        pipeline()
        latest = find_results(tags={"project": "churn"}, task_name="train", limit=1)
        print(latest[0].load())  # {'rows': 1000.0, 'auc': 0.91}
        ```
    """
    modules = names_of(registry_modules)
    serializer = _serializer(tags, task_options.pop("result_serializer", None))
    options = {
        **task_options,
        **_checked_options(task_options, prefect_tags),
        "result_serializer": serializer,
    }
    options.setdefault("tags", None)

    def decorate(fn: Callable[P, R]) -> LaboxTask[P, R]:
        register_modules(modules, options.get("name") or fn.__name__)
        task = LaboxTask(fn=_persisting(fn), **options)
        task.labox_registry_modules = tuple(modules)
        return task

    return decorate(__fn) if __fn is not None else decorate


def _serializer(tags: Mapping[str, str] | None, given: Any) -> LaboxSerializer:
    """The task's LaboxSerializer: its tags are the only check of the user's tags, and a bad
    tag raises the InvalidTagsError of that check, not pydantic's ValidationError around it."""
    if tags is not None and not isinstance(tags, Mapping):
        raise ArgumentTypeError(
            f"labox_task(tags=...) takes Labox tags as a mapping, e.g. tags={{'project': 'x'}}; "
            f"got {type(tags).__name__}. Prefect run tags go in prefect_tags=[...]."
        )
    if given is not None and not isinstance(given, LaboxSerializer):
        raise ArgumentTypeError(
            f"labox_task stores results through LaboxSerializer; remove result_serializer="
            f"{given!r} (or use prefect.task to persist with another serializer)."
        )
    if tags is None and given is not None:
        return given
    base = given.tags if given is not None else {}
    try:
        return LaboxSerializer(tags={**base, **(tags or {})})
    except ValidationError as invalid:  # pydantic wraps the check's InvalidTagsError
        causes = [error.get("ctx", {}).get("error") for error in invalid.errors()]
        cause = next((c for c in causes if isinstance(c, InvalidTagsError)), None)
        if cause is None:
            raise
        raise cause from None


def _checked_options(options: dict[str, Any], prefect_tags: Iterable[str] | None) -> dict[str, Any]:
    """Options labox_task sets itself: persistence on, Prefect run tags from prefect_tags."""
    if options.get("persist_result", True) is not True:
        raise InvalidArgumentError(
            "labox_task always persists its result; use prefect.task for a task that "
            "persists nothing (persist_result=False)."
        )
    if "fn" in options:
        raise ArgumentTypeError("labox_task: pass the function by decorating it.")
    checked: dict[str, Any] = {"persist_result": True}
    if prefect_tags is not None:
        checked["tags"] = names_of(prefect_tags)
    return checked


def _persisting(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, saving its return value through the door inside the task run."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise ArgumentTypeError(
            f"labox_task cannot decorate the generator {fn.__qualname__}: Prefect does not "
            f"persist generator results. Return a value (or a StorableStream) instead."
        )
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            context = _own_run(run_async)
            result = await fn(*args, **kwargs)
            if context is not None and not isinstance(result, State):
                await apersist_output(result, context, _labox_tags(context))
            return result

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        context = _own_run(run)
        result = fn(*args, **kwargs)
        if context is not None and not isinstance(result, State):
            persist_output(result, context, _labox_tags(context))
        return result

    return run


def _own_run(wrapper: Callable[..., Any]) -> TaskRunContext | None:
    """The task run of this very function (not of a task that calls ``.fn`` directly).

    Raises RegistryModuleImportError when a module of LABOX_REGISTRY_MODULES or of the task's
    ``registry_modules`` cannot be imported: the run fails before its function runs (its
    result could not be saved), and a task's own module affects no other task.
    """
    context = TaskRunContext.get()
    if context is None or context.task.fn is not wrapper:
        return None
    check_settings_registry_modules()  # before the work, not after it
    if isinstance(context.task, LaboxTask):
        check_registry_modules(context.task.labox_registry_modules, context.task.name)
    return context


def _labox_tags(context: TaskRunContext) -> dict[str, str]:
    """The running task's Labox tags (its serializer's, checked when it was made)."""
    serializer = context.task.result_serializer
    return serializer.tags if isinstance(serializer, LaboxSerializer) else {}


__all__ = ["LaboxTask", "labox_task"]
