"""LaboxSerializer: a Prefect result serializer that saves results as Labox records.

``dumps`` saves the object through the core saver (a Storable as it is, any other value as a
``StorableValue`` with the serializer the registry infers for its type) and returns a small
JSON pointer to the manifest; ``loads`` loads the manifest back, finding every class and
serializer through the registry. Nothing is pickled, and nothing is imported because a
record names it.

Prefect stores a serializer's fields in every result record and restores them on load, so
the only field is the (non-secret) user tags. The database and storage come from the
``LaboxResultStorage`` block the run uses, or from the LABOX_* settings.
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prefect.context import FlowRunContext, TaskRunContext
from prefect.serializers import Serializer
from pydantic import Field, field_validator

from labox_prefect.context import check_user_tags, record_tags
from labox_prefect.core import (
    ContentRecord,
    LaboxError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    Storable,
    get_contents,
    load_one,
    save_one,
)
from labox_prefect.core.builtin import StorableValue
from labox_prefect.result_keys import PlannedKey, prewritten_keys, put_result_key
from labox_prefect.runtime import Target, get_runtime
from labox_prefect.settings import current_settings

POINTER_KIND = "labox-result"
"""The ``kind`` of every pointer LaboxSerializer writes."""

FAILURE_KIND = "labox-failure"
"""The ``kind`` of what LaboxSerializer writes for a failed run's exception."""

_STASH_SIZE = 32
_HELD_SIZE = 256


class ResultNotStorableError(LaboxError, TypeError):
    """A result cannot be saved through Labox (and will not be pickled instead)."""


class ResultPointerError(LaboxError, ValueError):
    """Bytes given to LaboxSerializer.loads are not a pointer it wrote."""


class RunFailure(LaboxError):
    """The exception of a failed run, as LaboxSerializer records it.

    Prefect persists a failed run's exception with the result serializer. Labox keeps its
    type's name and its message only: an exception object is not a result (no manifest is
    made), and loading never imports a type a record names.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    @classmethod
    def of(cls, error: BaseException) -> RunFailure:
        if isinstance(error, RunFailure):
            return error
        kind = type(error)
        return cls(f"{kind.__module__}.{kind.__qualname__}", str(error))

    def dump(self) -> bytes:
        body = {"kind": FAILURE_KIND, "type": self.type_name, "message": self.message}
        return json.dumps(body, separators=(",", ":")).encode()


def parse_blob(blob: bytes | str) -> ResultPointer | RunFailure:
    """What LaboxSerializer.dumps wrote: a pointer to a manifest, or a run failure."""
    try:
        body = json.loads(blob)
        kind = body.get("kind")
        if kind == POINTER_KIND:
            return ResultPointer(uuid.UUID(body["manifest_id"]), str(body["database"]))
        if kind == FAILURE_KIND:
            return RunFailure(str(body["type"]), str(body["message"]))
        raise ValueError(f"kind is {kind!r}")
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ResultPointerError(
            f"These bytes are not a Labox result pointer ({error}); LaboxSerializer.loads "
            f"reads only what LaboxSerializer.dumps wrote."
        ) from None


@dataclass(frozen=True)
class ResultPointer:
    """What a Prefect result record holds for a Labox result: the manifest, and where it is.

    ``database`` is the database URL with its password hidden: enough to say where to look,
    never a credential.
    """

    manifest_id: uuid.UUID
    database: str

    def dump(self) -> bytes:
        body = {"kind": POINTER_KIND, "manifest_id": str(self.manifest_id)}
        return json.dumps({**body, "database": self.database}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SavedResult:
    """A result just saved: its manifest, its contents (when asked for), where it went."""

    manifest: ManifestRecord
    contents: list[ContentRecord] | None
    target: Target
    registry: Registry

    @property
    def pointer(self) -> ResultPointer:
        return ResultPointer(self.manifest.id, self.target.database_label)


# --- which registry, which target -----------------------------------------------------------

_code_modules: list[str] = []
_code_modules_lock = threading.Lock()


def register_modules(modules: Iterable[str]) -> None:
    """Add modules whose storables and serializers every Labox registry of this process knows.

    Code (``labox_task(registry_modules=...)``) registers them; stored records never do, so a
    record can never make this process import anything.
    """
    with _code_modules_lock:
        for module in modules:
            if not isinstance(module, str) or not module:
                raise TypeError(f"registry modules are module names (str), not {module!r}.")
            if module not in _code_modules:
                _code_modules.append(module)


def registry_modules() -> tuple[str, ...]:
    """LABOX_REGISTRY_MODULES, then the modules registered by code, without repeats."""
    with _code_modules_lock:
        code = list(_code_modules)
    return tuple(dict.fromkeys([*current_settings().registry_modules, *code]))


def context_target() -> Target:
    """The target of the running task or flow's LaboxResultStorage, else the settings'."""
    from labox_prefect.result_storage import LaboxResultStorage

    for context in (TaskRunContext.get(), FlowRunContext.get()):
        store = getattr(context, "result_store", None)
        storage = getattr(store, "result_storage", None)
        if isinstance(storage, LaboxResultStorage):
            return storage.target()
    return settings_target()


def settings_target() -> Target:
    target = Target.from_settings(current_settings())
    get_runtime().remember_target(target)
    return target


def as_storable(obj: Any, registry: Registry) -> Storable:
    """``obj`` itself if it is a Storable, else a StorableValue; refuse what cannot be loaded."""
    if isinstance(obj, Storable):
        storable: Storable = obj
    else:
        try:
            registry.infer_serializer(type(obj))
        except NotRegisteredError as error:
            raise ResultNotStorableError(_not_storable_message(type(obj), str(error))) from error
        storable = StorableValue(obj)
    cls = type(storable)
    try:
        registry.get_storable(cls.storable_class_id())
    except NotRegisteredError as error:
        raise ResultNotStorableError(
            f"Labox cannot load a {cls.__module__}.{cls.__qualname__} back: its class is not "
            f"in the registry, so the result is not saved. Give the class a pinned class_id "
            f"and register its module: LABOX_REGISTRY_MODULES={cls.__module__} in the "
            f"environment, or labox_task(registry_modules=[{cls.__module__!r}])."
        ) from error
    return storable


def _not_storable_message(cls: type[Any], detail: str) -> str:
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return (
        f"Labox cannot store a result of type {name}: {detail} Results are never pickled. "
        f"To store it, return a Storable (StorableModel, StorableDataclass), or register a "
        f"serializer for {name}: export one (a labox_prefect.core.Serializer with "
        f"types=({cls.__qualname__},)) from a module named in LABOX_REGISTRY_MODULES or in "
        f"labox_task(registry_modules=[...]), the way Registry(serializers=[...]) takes it."
    )


# --- saving and loading on the runtime ------------------------------------------------------


async def _save(
    storable: Storable,
    target: Target,
    registry: Registry,
    tags: Mapping[str, str],
    details: bool,
    key: PlannedKey | None,
) -> tuple[ManifestRecord, list[ContentRecord] | None]:
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        manifest = await save_one(storable, session=session, registry=registry, tags=tags)
        if key is not None:
            label = target.database_label
            record = key.record(ResultPointer(manifest.id, label).dump())
            await put_result_key(session, key.storage_key, manifest.id, record)
            prewritten_keys.put(label, key.storage_key, record)
        contents = await get_contents(session, manifest.id) if details else None
    return manifest, contents


async def _load(manifest_id: uuid.UUID, target: Target, registry: Registry) -> Any:
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        return await load_one(manifest_id, session=session, registry=registry)


def prepare_save(
    obj: Any, user_tags: Mapping[str, str] | None
) -> tuple[Storable, Target, Registry, dict[str, str]]:
    """Everything a save needs, checked in the caller's thread (errors name the fix)."""
    target = context_target()
    registry = get_runtime().registry(target, registry_modules())
    return as_storable(obj, registry), target, registry, record_tags(user_tags)


def save_result(
    obj: Any,
    user_tags: Mapping[str, str] | None,
    *,
    details: bool,
    key: PlannedKey | None = None,
) -> SavedResult:
    """Save ``obj`` now, from sync code; with ``key``, store that key's record beside it."""
    storable, target, registry, tags = prepare_save(obj, user_tags)
    saving = _save(storable, target, registry, tags, details, key)
    manifest, contents = get_runtime().run(saving)
    return SavedResult(manifest, contents, target, registry)


async def asave_result(
    obj: Any,
    user_tags: Mapping[str, str] | None,
    *,
    details: bool,
    key: PlannedKey | None = None,
) -> SavedResult:
    """Save ``obj`` now, from async code, without blocking the caller's loop."""
    storable, target, registry, tags = prepare_save(obj, user_tags)
    saving = _save(storable, target, registry, tags, details, key)
    manifest, contents = await get_runtime().arun(saving)
    return SavedResult(manifest, contents, target, registry)


def load_result(pointer: ResultPointer) -> Any:
    """Load what a pointer names: the plain value of a StorableValue, else the Storable."""
    runtime = get_runtime()
    target = runtime.target_for_label(pointer.database) or settings_target()
    registry = runtime.registry(target, registry_modules())
    try:
        loaded = runtime.run(_load(pointer.manifest_id, target, registry))
    except LaboxError as error:
        if target.database_label != pointer.database:
            error.add_note(
                f"The result was saved to {pointer.database}, and this process reads "
                f"{target.database_label}: set LABOX_DATABASE_URL (or use the result storage "
                f"block that saved it)."
            )
        raise
    return loaded.value if isinstance(loaded, StorableValue) else loaded


# --- results saved before Prefect asks for them ---------------------------------------------


class _SavedOutputs:
    """Outputs that labox_task saved eagerly, waiting for Prefect's ``dumps`` of them.

    Keyed by task run and object identity. Objects that accept weak references are held
    weakly (the entry dies with the object); others are held in a small bounded table.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[uuid.UUID, int], tuple[Callable[[], Any], SavedResult]]
        self._entries = OrderedDict()

    def put(self, task_run_id: uuid.UUID, obj: Any, saved: SavedResult) -> None:
        key = (task_run_id, id(obj))
        try:
            ref: Callable[[], Any] = weakref.ref(obj)
            weakref.finalize(obj, self._drop, key)
        except TypeError:
            ref = _strong(obj)
        with self._lock:
            self._entries[key] = (ref, saved)
            self._entries.move_to_end(key)
            while len(self._entries) > _HELD_SIZE:
                self._entries.popitem(last=False)

    def take(self, task_run_id: uuid.UUID, obj: Any) -> SavedResult | None:
        with self._lock:
            entry = self._entries.pop((task_run_id, id(obj)), None)
        if entry is None or entry[0]() is not obj:
            return None
        return entry[1]

    def _drop(self, key: tuple[uuid.UUID, int]) -> None:
        with self._lock:
            self._entries.pop(key, None)


def _strong(obj: Any) -> Callable[[], Any]:
    return lambda: obj


saved_outputs = _SavedOutputs()


class _RecentLoads:
    """Values loaded during a task run's cache check, for the read that follows it.

    Prefect's ``exists`` check loads a cached result and throws it away, then a hit loads
    it again: the second load of the same manifest in the same task run takes the first's
    value, so the content is read once. Each value is handed out at most once more.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple[uuid.UUID, uuid.UUID], Any] = OrderedDict()

    def take(self, key: tuple[uuid.UUID, uuid.UUID]) -> tuple[bool, Any]:
        with self._lock:
            if key in self._values:
                return True, self._values.pop(key)
        return False, None

    def put(self, key: tuple[uuid.UUID, uuid.UUID], value: Any) -> None:
        with self._lock:
            self._values[key] = value
            while len(self._values) > _STASH_SIZE:
                self._values.popitem(last=False)


recent_loads = _RecentLoads()


# --- the Prefect serializer -----------------------------------------------------------------


class LaboxSerializer(Serializer):
    """Prefect result serializer that stores results as typed, tagged Labox records.

    ``tags``: user tags added to every record it saves (keys may not start with
    ``prefect.``; the run context fills those). A failed run's exception is recorded by its
    type's name and message (see RunFailure), not saved as a result. Use it with
    ``LaboxResultStorage`` (as ``labox_task`` does) so that a result is one Labox manifest,
    found by Prefect's key.
    """

    type: Literal["labox"] = "labox"
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: dict[str, str]) -> dict[str, str]:
        return check_user_tags(value)

    def dumps(self, obj: Any) -> bytes:
        if isinstance(obj, BaseException):
            return RunFailure.of(obj).dump()
        task_context = TaskRunContext.get()
        saved = (
            saved_outputs.take(task_context.task_run.id, obj) if task_context is not None else None
        )
        if saved is None:
            from labox_prefect.artifacts import artifacts_enabled, publish_result_artifact

            details = artifacts_enabled()
            saved = save_result(obj, self.tags, details=details)
            if details:
                publish_result_artifact(saved)
        return saved.pointer.dump()

    def loads(self, blob: bytes) -> Any:
        pointer = parse_blob(blob)
        if isinstance(pointer, RunFailure):
            return pointer
        task_context = TaskRunContext.get()
        if task_context is None:
            return load_result(pointer)
        key = (task_context.task_run.id, pointer.manifest_id)
        found, value = recent_loads.take(key)
        if found:
            return value
        value = load_result(pointer)
        recent_loads.put(key, value)
        return value


__all__ = [
    "LaboxSerializer",
    "ResultNotStorableError",
    "ResultPointer",
    "ResultPointerError",
    "RunFailure",
    "SavedResult",
    "asave_result",
    "load_result",
    "register_modules",
    "save_result",
]
