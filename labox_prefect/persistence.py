"""The door: where a task output becomes a Labox record, and where a result is loaded back.

Every Prefect-facing piece goes through here and nothing else saves or loads a result:
``labox_task`` (the task run), ``LaboxSerializer`` (``dumps`` / ``loads``),
``LaboxResultStorage`` (``write_path`` / ``read_path``) and ``ResultRef`` (``load``). As with
Dagster's IO managers (``handle_output`` / ``load_input``), one module resolves the target
(labox_prefect.target) once per save or load, takes the registry for it, opens one session
on the runtime loop (labox_prefect.runtime), and saves or loads.

The sequence of a ``labox_task`` run (Prefect 3.9, DESIGN.md section 3), written once:

1. **Eager save, inside the task run.** The function returns; labox_task's wrapper calls
   ``persist_output`` in the run's own thread and TaskRunContext. It resolves the target
   from the run's result storage, makes the value a Storable (or refuses it with
   ResultNotStorableError), and saves the manifest and its contents; when Prefect's write is
   certain and predictable (``_planned_key``), Prefect's result record goes under its storage
   key in the same transaction (the core's ``before_commit``), so the key is readable before
   Prefect reports the run Completed, and there is never a key without its record or the
   reverse. On the embedded database a sync task saves in its own thread (the runtime's
   lane, labox_prefect.runtime); the core's save hands back the content records it wrote,
   so nothing is read back. A value nothing can store, or a database or storage
   fault, raises here: the run fails and its retries apply (Prefect alone only logs a
   persistence error, and the result is silently lost). The saved result is left in the
   hand-off under the run's id, and the result is queued for its event and artifact
   (labox_prefect.publication: made on the publisher thread, not the task's).
2. **Prefect's ``dumps``**, when the task's transaction commits (same thread and context):
   ``dump`` takes the saved result from the hand-off (same run, same object) and returns its
   pointer (labox_prefect.pointer): nothing is saved twice. Without an eager save (a flow's
   return value, a plain ``prefect.task`` with LaboxSerializer) it saves now. A failed run's
   exception is recorded as a RunFailure, with no manifest.
3. **``write_path``** (same commit): when the hand-off says step 1 wrote this very record under
   this key, there is nothing left to do. Otherwise the key is pointed at the manifest the
   record names, or, for another serializer's record, its bytes are saved whole as a record.
4. **The cache check** of a later run with the same cache key: Prefect's ``exists`` reads the
   record (``read_record``: one primary-key lookup; on the embedded SQLite database in the
   run's own thread, see labox_prefect.runtime) and runs ``loads``, swallowing every
   exception; ``load`` loads the manifest and leaves the value in the hand-off.
5. **The cache hit**: Prefect reads the record and runs ``loads`` again; ``load`` takes the
   value step 4 left, so the content is read once per hit.

The hand-off is one table (``Handoff``): one entry per task run, each slot taken once, at
most ``HANDOFF_RUNS`` entries under one lock. Steps 1-3 and 4-5 follow each other within one
task run, so an entry lives for microseconds; were one dropped, step 2 would save the output
a second time, step 3 write the record again, step 5 read the content again: never a lost
or wrong result.
"""

from __future__ import annotations

import importlib
import sqlite3
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import GeneratorType
from typing import Any, cast

from prefect.context import TaskRunContext
from prefect.states import is_state_iterable
from prefect.transactions import get_transaction
from prefect.types import DateTime
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.artifacts import artifacts_enabled
from labox_prefect.context import FLOW_NAME, RESULT_TYPE, TASK_NAME, record_tags
from labox_prefect.core import (
    ClassNotDefinedError,
    ContentRecord,
    LaboxError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    SerializationError,
    Storable,
    StorableTypeError,
    get_manifest,
    live_kind,
    load_one,
    save_one_with_contents,
)
from labox_prefect.core.builtin import StorableValue, bytes_serializer
from labox_prefect.core.classes import qualified_name
from labox_prefect.embedded import check_target
from labox_prefect.errors import (
    ArgumentTypeError,
    RegistryModuleImportError,
    RegistryModuleNotFoundError,
    ResultClassNotRegisteredError,
    ResultKeyNotFoundError,
    ResultNotStorableError,
    ResultPersistenceError,
)
from labox_prefect.pointer import ResultPointer, RunFailure, labox_blob_in, parse_blob
from labox_prefect.publication import announce
from labox_prefect.registry_modules import NOT_FOUND_FIX, first_not_found
from labox_prefect.result_keys import (
    ResultKey,
    add_result_key,
    get_result_key,
    lookup_result_key,
    put_result_key,
)
from labox_prefect.runtime import get_runtime
from labox_prefect.settings import current_settings
from labox_prefect.target import Target, is_labox_block, resolve_target, target_for_label

HANDOFF_RUNS = 256
"""Task runs the hand-off keeps at most (see the module docstring)."""

PlannedKey = tuple[str, Callable[[bytes], str]]
"""Prefect's storage key for a result, and its record rendered from the result's pointer."""


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


# --- the registry of a target ---------------------------------------------------------------

_code_modules: list[str] = []
_code_modules_lock = threading.Lock()


def register_modules(modules: Iterable[str], owner: str) -> None:
    """Add modules whose storables and serializers every Labox registry of this process knows.

    Code (``labox_task(registry_modules=...)``) registers them; stored records never do, so a
    record can never make this process import anything. ``owner`` names the task, for the
    message. Every module is looked up first and none is added unless all are found, so one
    task's bad name never reaches the registries of other tasks.

    Raises ArgumentTypeError for a name that is not a non-empty str, RegistryModuleNotFoundError for
    a module Python cannot find.
    """
    names = list(modules)
    for module in names:
        if not isinstance(module, str) or not module:
            raise ArgumentTypeError(f"registry modules are module names (str), not {module!r}.")
        _find_module(module, owner)
    with _code_modules_lock:
        _code_modules.extend(module for module in names if module not in _code_modules)


def _find_module(module: str, owner: str) -> None:
    """Raise RegistryModuleNotFoundError unless ``module`` can be imported by name."""
    if first_not_found([module]) is not None:
        raise RegistryModuleNotFoundError(
            f"registry_modules of task {owner!r} names the module {module!r}, which Python "
            f"cannot find: fix the name, or {NOT_FOUND_FIX} (no other task is affected).",
            name=module,
        )


_imports: dict[str, Exception | None] = {}
"""Registry module -> None once imported, else what its import raised: each registry module
is imported once per process (one entry per module a task or LABOX_REGISTRY_MODULES names)."""


def _import_failure(module: str) -> Exception | None:
    """None once ``module`` is imported; else the exception its import raised (both remembered)."""
    with _code_modules_lock:
        if module in _imports:
            return _imports[module]
    failure: Exception | None = None
    try:
        importlib.import_module(module)
    except Exception as error:  # the module's own code may raise anything
        failure = error
    with _code_modules_lock:
        return _imports.setdefault(module, failure)


def _check_import(module: str, named_by: str, remove_from: str) -> None:
    """Import ``module``; RegistryModuleImportError if its import raised, naming who names it
    (``named_by``), the module, the exception and the fix (remove it from ``remove_from``;
    for a module Python cannot find, make it importable)."""
    failure = _import_failure(module)
    if isinstance(failure, ModuleNotFoundError) and f"{module}.".startswith(f"{failure.name}."):
        raise RegistryModuleImportError(
            f"{named_by} names the module {module!r}, which Python cannot find: "
            f"{NOT_FOUND_FIX}, or remove it from {remove_from}.",
            name=module,
        ) from None
    if failure is not None:
        raise RegistryModuleImportError(
            f"{named_by} names the module {module!r}, whose import raised "
            f"{type(failure).__name__}: {failure}. Fix the module (`python -c 'import "
            f"{module}'` shows the traceback) or remove it from {remove_from}.",
            name=module,
        ) from failure


def check_registry_modules(modules: Iterable[str], owner: str) -> None:
    """Import ``modules`` (registered by task ``owner``); RegistryModuleImportError for the
    first whose import raised, naming the module, the exception and the fix."""
    for module in modules:
        _check_import(
            module,
            f"registry_modules of task {owner!r}",
            "the task's registry_modules; tasks that do not name it are not affected",
        )


def registry_modules() -> tuple[str, ...]:
    """LABOX_REGISTRY_MODULES, then the modules registered by code, without repeats.

    A module registered by code whose import raised is left out (only the tasks that name it
    fail, see ``check_registry_modules``). LABOX_REGISTRY_MODULES applies to every save and
    load: a module of it whose import raised raises RegistryModuleImportError here.
    """
    with _code_modules_lock:
        code = list(_code_modules)
    from_settings = check_settings_registry_modules()
    working = [module for module in code if _import_failure(module) is None]
    return tuple(dict.fromkeys([*from_settings, *working]))


def check_settings_registry_modules() -> tuple[str, ...]:
    """Import the modules of LABOX_REGISTRY_MODULES (once per process) and return them.

    Raises RegistryModuleImportError for the first that Python cannot find or whose import
    raised, naming the setting and the fix.
    """
    from_settings = current_settings().registry_modules
    for module in from_settings:
        _check_import(
            module,
            "LABOX_REGISTRY_MODULES",
            "LABOX_REGISTRY_MODULES (every Labox save and load of this process registers "
            "it; name it in labox_task(registry_modules=[...]) of the tasks that need it "
            "instead)",
        )
    return from_settings


def registry_for(target: Target) -> Registry:
    """The registry every save and load on ``target`` uses (built once per process)."""
    return get_runtime().registry(target, registry_modules())


@asynccontextmanager
async def open_session(
    target: Target, *, create_schema: bool = True
) -> AsyncIterator[AsyncSession]:
    """A session on the target's database (schema ready); on the runtime loop or a lane.

    ``create_schema=False`` for work that saves nothing (reads, deletions): the schema is
    neither created nor migrated, and DatabaseNotInitializedError says so when the database
    has no Labox tables (see Runtime.sessions).
    """
    sessions = await get_runtime().sessions(target.database_url, create_schema=create_schema)
    async with sessions() as session:
        yield session


def as_storable(obj: Any, registry: Registry) -> Storable:
    """``obj`` itself if it is a Storable, else a StorableValue; refuse what cannot be loaded."""
    if isinstance(obj, Storable):
        storable: Storable = obj
    else:
        try:
            registry.infer_serializer(type(obj))
        except NotRegisteredError:
            # The message is whole: the core's traceback would only add internal frames.
            raise ResultNotStorableError(_not_storable_message(obj)) from None
        storable = StorableValue(obj)
    cls = type(storable)
    try:
        known: type[Storable] | None = registry.get_storable(cls.storable_class_id())
    except NotRegisteredError:
        known = None
    # A twin of the same name (a script run as __main__ and imported too) loads as itself.
    if known is None or known.__qualname__ != cls.__qualname__:
        found = "no class" if known is None else f"{known.__module__}.{known.__qualname__}"
        raise ResultNotStorableError(
            f"Labox cannot load a {cls.__module__}.{cls.__qualname__} back: its class id "
            f"{cls.storable_class_id()} finds {found} in this process, so the result is not "
            f"saved. Give the class a class_id of its own, pinned in its class statement "
            f"(class {cls.__qualname__}(..., class_id='{uuid.uuid4().hex[:16]}'))."
        )
    return storable


@contextmanager
def _refusals_named() -> Iterator[None]:
    """Raise the core's refusal of a value as ResultNotStorableError, keeping its message.

    The core names the path inside the value (``value['a'][3]``), the type and the fix, in
    its message and notes; a failed Prefect run shows the message only, so the notes join it,
    and the core's error is not chained (its traceback would repeat the message with the
    core's internal frames).
    """
    try:
        yield
    except (SerializationError, NotRegisteredError, StorableTypeError) as error:
        where = " ".join(getattr(error, "__notes__", ()))
        message = str(error)
        if "Registry(serializers=" in message:  # the core's fix, said the integration's way
            message += (
                " With labox_task, export the serializer from a module named in "
                "LABOX_REGISTRY_MODULES or in labox_task(registry_modules=[...])."
            )
        raise ResultNotStorableError(
            f"Labox cannot store this result, so nothing of it is saved (results are never "
            f"pickled): {message}{f' {where}' if where else ''}"
        ) from None


def _not_storable_message(obj: Any) -> str:
    """The refusal of a result whose type no serializer takes: the problem once, then the
    fixes (the core's own message says them in the core's terms, so it is not joined).

    A result that is live state of the process (core ``live_kind``) gets no advice to write a
    serializer: nothing could load it back in another process.
    """
    cls = type(obj)
    # A script's class by the module name its records would carry, not "__main__".
    module, _, qualname = qualified_name(cls).partition(":")
    name = qualname if module == "builtins" else f"{module}.{qualname}"
    live = live_kind(obj)
    if live is not None:
        return (
            f"Labox cannot store a result of type {name}: {live} is live state of this "
            f"process, not data (results are never pickled). Return the data it holds or "
            f"computes, or use a plain prefect.task if the result only passes to other tasks "
            f"of this flow run."
        )
    return (
        f"Labox cannot store a result of type {name}: no serializer is registered for it, "
        f"and results are never pickled. Return the data it holds instead (a dict, a "
        f"dataclass, a DataFrame...), return a Storable (StorableModel, StorableDataclass), "
        f"or export a labox_prefect.core.Serializer for {name} from a module named in "
        f"LABOX_REGISTRY_MODULES or in labox_task(registry_modules=[...])."
    )


# --- the hand-off between the steps of one task run -----------------------------------------


@dataclass
class _Run:
    """What the steps of one task run leave for the later ones (each slot taken once)."""

    output: tuple[Callable[[], Any], SavedResult] | None = None
    written: tuple[str, str, str] | None = None  # database label, storage key, record
    loaded: tuple[uuid.UUID, Any] | None = None  # manifest id, value

    def empty(self) -> bool:
        return self.output is None and self.written is None and self.loaded is None


class Handoff:
    """The one hand-off table: task run id -> what its earlier steps left (see the docstring).

    An output that accepts weak references is held weakly (the slot dies with the object);
    others are held until taken or until their entry is dropped.
    """

    def __init__(self, runs: int = HANDOFF_RUNS) -> None:
        self._runs = runs
        self._lock = threading.Lock()
        self._entries: OrderedDict[uuid.UUID, _Run] = OrderedDict()

    def put_output(
        self, run_id: uuid.UUID, obj: Any, saved: SavedResult, written: tuple[str, str] | None
    ) -> None:
        """Step 1: ``obj`` was saved as ``saved``, and ``written`` = (key, record) with it."""
        try:
            ref: Callable[[], Any] = weakref.ref(obj)
            weakref.finalize(obj, self._drop_output, run_id)
        except TypeError:
            ref = _strong(obj)
        label = saved.target.database_label
        with self._lock:
            entry = self._entry(run_id)
            entry.output = (ref, saved)
            entry.written = None if written is None else (label, *written)

    def take_output(self, run_id: uuid.UUID, obj: Any) -> SavedResult | None:
        """Step 2: the saved result of this very object in this run, if step 1 saved it."""
        found: tuple[Callable[[], Any], SavedResult] | None = self._take(run_id, "output")
        return found[1] if found is not None and found[0]() is obj else None

    def take_written(self, run_id: uuid.UUID, label: str, key: str, content: bytes) -> bool:
        """Step 3: whether step 1 wrote exactly ``content`` under ``key`` in this database."""
        written: tuple[str, str, str] | None = self._take(run_id, "written")
        if written is None or written[:2] != (label, key):
            return False
        return written[2].encode("utf-8") == content

    def put_loaded(self, run_id: uuid.UUID, manifest_id: uuid.UUID, value: Any) -> None:
        """Step 4: the value the cache check loaded."""
        with self._lock:
            self._entry(run_id).loaded = (manifest_id, value)

    def take_loaded(self, run_id: uuid.UUID, manifest_id: uuid.UUID) -> tuple[bool, Any]:
        """Step 5: (True, value) when step 4 of this run loaded this manifest."""
        loaded: tuple[uuid.UUID, Any] | None = self._take(run_id, "loaded")
        if loaded is None or loaded[0] != manifest_id:
            return False, None
        return True, loaded[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _entry(self, run_id: uuid.UUID) -> _Run:
        entry = self._entries.get(run_id)
        if entry is None:
            entry = self._entries[run_id] = _Run()
            while len(self._entries) > self._runs:
                self._entries.popitem(last=False)
        return entry

    def _take(self, run_id: uuid.UUID, slot: str) -> Any:
        """Empty one slot of a run's entry and return what it held (the entry goes when empty)."""
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                return None
            value = getattr(entry, slot)
            setattr(entry, slot, None)
            if entry.empty():
                del self._entries[run_id]
        return value

    def _drop_output(self, run_id: uuid.UUID) -> None:
        self._take(run_id, "output")


def _strong(obj: Any) -> Callable[[], Any]:
    return lambda: obj


handoff = Handoff()


# --- saving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Save:
    """One save, checked in the caller's thread (errors name the fix)."""

    storable: Storable
    target: Target
    registry: Registry
    tags: dict[str, str]
    artifacts: bool
    key: PlannedKey | None = None


def _prepare(obj: Any, user_tags: Mapping[str, str], key: PlannedKey | None = None) -> _Save:
    target = resolve_target()
    check_target(target)
    registry = registry_for(target)
    storable = as_storable(obj, registry)
    tags = record_tags(user_tags, type(obj))
    return _Save(storable, target, registry, tags, artifacts_enabled(), key)


async def _save(plan: _Save) -> tuple[SavedResult, str | None]:
    """Save (on the runtime loop or a lane); with a planned key, its record in the same
    transaction."""
    written: str | None = None
    add_key: Callable[[uuid.UUID], Awaitable[None]] | None = None
    if plan.key is not None:
        storage_key, render = plan.key

        async def add_key(manifest_id: uuid.UUID) -> None:
            nonlocal written
            written = render(ResultPointer(manifest_id, plan.target.database_label).dump())
            await add_result_key(session, storage_key, manifest_id, written)

    async with get_runtime().write_session(plan.target.database_url) as session:
        manifest, contents = await save_one_with_contents(
            plan.storable,
            session=session,
            registry=plan.registry,
            tags=plan.tags,
            before_commit=add_key,
        )
    return SavedResult(manifest, contents, plan.target, plan.registry), written


def persist_output(obj: Any, context: TaskRunContext, user_tags: Mapping[str, str]) -> None:
    """Step 1 from a sync task: save ``obj`` now; raise so that the run fails if it cannot."""
    try:
        with _refusals_named():
            plan = _prepare(obj, user_tags, _planned_key(context, obj))
            saved, written = get_runtime().run_for(plan.target.database_url, _save(plan))
    except LaboxError:
        raise
    except Exception as error:
        raise _persistence_error(context, error) from error
    _hand_over(context, obj, plan, saved, written)
    _announce(obj, plan, saved)


async def apersist_output(obj: Any, context: TaskRunContext, user_tags: Mapping[str, str]) -> None:
    """Step 1 from an async task, without blocking the task's loop."""
    try:
        with _refusals_named():
            plan = _prepare(obj, user_tags, _planned_key(context, obj))
            saved, written = await get_runtime().arun(_save(plan))
    except LaboxError:
        raise
    except Exception as error:
        raise _persistence_error(context, error) from error
    _hand_over(context, obj, plan, saved, written)
    _announce(obj, plan, saved)


def _hand_over(
    context: TaskRunContext, obj: Any, plan: _Save, saved: SavedResult, written: str | None
) -> None:
    key = None if plan.key is None or written is None else (plan.key[0], written)
    handoff.put_output(context.task_run.id, obj, saved, key)


def dump(obj: Any, user_tags: Mapping[str, str]) -> bytes:
    """Step 2 (LaboxSerializer.dumps): the pointer of ``obj``'s record, saving it if need be."""
    if isinstance(obj, BaseException):
        return RunFailure.of(obj).dump()
    context = TaskRunContext.get()
    saved = handoff.take_output(context.task_run.id, obj) if context is not None else None
    if saved is None:
        with _refusals_named():
            plan = _prepare(obj, user_tags)
            saved, _ = get_runtime().run_for(plan.target.database_url, _save(plan))
        _announce(obj, plan, saved)
    return saved.pointer.dump()


def _announce(obj: Any, plan: _Save, saved: SavedResult) -> None:
    """Queue the saved-result event and artifact (labox_prefect.publication's thread makes them)."""
    try:
        class_name = saved.registry.get_storable(saved.manifest.class_id).__qualname__
    except NotRegisteredError:
        class_name = str(saved.manifest.class_id)
    contents = saved.contents or []
    announce(obj, saved.manifest, contents, class_name, plan.target.database_label, plan.artifacts)


def _planned_key(context: TaskRunContext, result: Any) -> PlannedKey | None:
    """The key and record Prefect will write for ``result`` as soon as the run completes.

    Only when Prefect's write is certain and predictable: plain data (not states, which
    Prefect aggregates), a cache key, a transaction that commits on its own (a parent may
    still roll back) and a saved Labox block holding record and result together. Anything
    else Prefect writes itself, as before. The record is rendered the way
    ``ResultRecord.serialize()`` renders it, with LaboxSerializer.dumps' pointer as result.
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
        or not is_labox_block(store.result_storage)
        or isinstance(result, GeneratorType)
        or is_state_iterable(result)
    ):
        return None
    expiration = context.task.cache_expiration
    record = store.create_result_record(
        result,
        key=transaction.key,
        # Prefect counts the expiration from a moment later: its record then differs by
        # that much, and its write replaces this one.
        expiration=None if expiration is None else cast(DateTime, datetime.now(UTC) + expiration),
    )
    if isinstance(result, type(record)):  # a ResultRecord returned as is: Prefect's own
        return None

    def render(pointer: bytes) -> str:
        return record.model_copy(update={"result": pointer}).model_dump_json(serialize_as_any=True)

    storage_key = record.metadata.storage_key
    return None if storage_key is None else (storage_key, render)


def _persistence_error(context: TaskRunContext, error: Exception) -> ResultPersistenceError:
    return ResultPersistenceError(
        f"Task {context.task.name!r} could not persist its result through Labox: "
        f"{type(error).__name__}: {error}. The run fails so that no result is lost; check "
        f"that the database (LABOX_DATABASE_URL or the block's database_url) and storage "
        f"(LABOX_STORAGE_URL or the block's storage_url) are reachable."
    )


# --- Prefect's records under their storage keys ---------------------------------------------


def write_record(target: Target, key: str, content: bytes) -> None:
    """Step 3 (LaboxResultStorage.write_path) from sync code."""
    if not _already_written(target, key, content):
        get_runtime().run_for(target.database_url, _write(target, key, content, record_tags(None)))


async def awrite_record(target: Target, key: str, content: bytes) -> None:
    """Step 3 from async code."""
    if not _already_written(target, key, content):
        await get_runtime().arun(_write(target, key, content, record_tags(None)))


def read_record(target: Target, key: str) -> bytes:
    """The bytes Prefect stored under ``key`` (LaboxResultStorage.read_path), from sync code.

    On the embedded SQLite database the key is looked up in the caller's thread
    (Runtime.sqlite_reader): most reads are cache checks of keys never written.
    """
    runtime = get_runtime()
    reader = runtime.sqlite_reader(target.database_url)
    if reader is not None:
        try:
            found = lookup_result_key(reader, key)
        except sqlite3.Error:
            pass  # the runtime's own connection says what is wrong, or reads it
        else:
            if found is None or found.record is not None or found.manifest_id is None:
                return _record_bytes(target, key, found)
    return runtime.run_for(target.database_url, _read(target, key))


async def aread_record(target: Target, key: str) -> bytes:
    """``read_record`` from async code."""
    return await get_runtime().arun(_read(target, key))


def _already_written(target: Target, key: str, content: bytes) -> bool:
    context = TaskRunContext.get()
    if context is None:
        return False
    return handoff.take_written(context.task_run.id, target.database_label, key, content)


async def _write(target: Target, key: str, content: bytes, tags: dict[str, str]) -> None:
    found = labox_blob_in(content, target.database_label)
    async with open_session(target) as session:
        if found is not None:
            manifest_id = found.manifest_id if isinstance(found, ResultPointer) else None
            await put_result_key(session, key, manifest_id, content.decode("utf-8"))
            return

        async def add_key(manifest_id: uuid.UUID) -> None:
            await add_result_key(session, key, manifest_id, None)

        await save_one_with_contents(
            StorableValue(bytes(content), serializer=bytes_serializer),
            session=session,
            registry=registry_for(target),
            tags=tags,
            before_commit=add_key,
        )


async def _read(target: Target, key: str) -> bytes:
    # Most reads are Prefect's cache checks of keys never written: one plain SELECT.
    engine = await get_runtime().engine(target.database_url)
    async with engine.connect() as connection:
        found = await get_result_key(connection, key)
    if found is None or found.record is not None or found.manifest_id is None:
        return _record_bytes(target, key, found)
    async with open_session(target) as session:
        stored = await load_one(
            found.manifest_id, StorableValue, session=session, registry=registry_for(target)
        )
    data: bytes = stored.value
    return data


def _record_bytes(target: Target, key: str, found: ResultKey | None) -> bytes:
    """Prefect's record under ``key``, when the row holds it (or there is no row)."""
    if found is None:
        raise ResultKeyNotFoundError(
            f"No Prefect result is stored under key {key!r} in {target.database_label}."
        )
    return (found.record or "").encode("utf-8")


# --- loading --------------------------------------------------------------------------------


def load(blob: bytes) -> Any:
    """Steps 4 and 5 (LaboxSerializer.loads): the value a pointer names, read once per run."""
    found = parse_blob(blob)
    if isinstance(found, RunFailure):
        return found
    context = TaskRunContext.get()
    if context is None:
        return load_pointer(found)
    run_id = context.task_run.id
    hit, value = handoff.take_loaded(run_id, found.manifest_id)
    if hit:
        return value
    value = load_pointer(found)
    handoff.put_loaded(run_id, found.manifest_id, value)
    return value


def load_pointer(pointer: ResultPointer) -> Any:
    """Load what a pointer names, from the database it names when this process knows it.

    The pointer's database label finds a target this process used, or the environment's
    when it names the same database (no Prefect API call); else the target rule decides.
    """
    target = target_for_label(pointer.database)
    if target is None:
        target = Target.from_settings()
        if target.database_label != pointer.database:
            target = resolve_target()
    try:
        return load_manifest(pointer.manifest_id, target)
    except LaboxError as error:
        if target.database_label != pointer.database:
            error.add_note(
                f"The result was saved to {pointer.database}, and this process reads "
                f"{target.database_label}: set LABOX_DATABASE_URL (or use the result storage "
                f"block that saved it)."
            )
        raise


def load_manifest(manifest_id: uuid.UUID, target: Target, registry: Registry | None = None) -> Any:
    """The stored value, from sync code: a StorableValue's plain value, else the Storable."""
    loading = _load(manifest_id, target, registry or registry_for(target))
    return get_runtime().run_for(target.database_url, loading)


async def aload_manifest(
    manifest_id: uuid.UUID, target: Target, registry: Registry | None = None
) -> Any:
    """``load_manifest`` from async code, without blocking the caller's loop."""
    return await get_runtime().arun(_load(manifest_id, target, registry or registry_for(target)))


async def _load(manifest_id: uuid.UUID, target: Target, registry: Registry) -> Any:
    async with open_session(target) as session:
        try:
            loaded = await load_one(manifest_id, session=session, registry=registry)
        except ClassNotDefinedError as error:  # say which record, and the fix
            manifest = await get_manifest(session, manifest_id)
            tags = manifest.tags or {}
            raise ResultClassNotRegisteredError.of_record(
                manifest_id,
                manifest.class_id,
                error,
                task_name=tags.get(TASK_NAME),
                flow_name=tags.get(FLOW_NAME),
                result_type=tags.get(RESULT_TYPE),
            ) from None
    return loaded.value if isinstance(loaded, StorableValue) else loaded


__all__ = [
    "HANDOFF_RUNS",
    "Handoff",
    "PlannedKey",
    "SavedResult",
    "aload_manifest",
    "apersist_output",
    "aread_record",
    "as_storable",
    "awrite_record",
    "check_registry_modules",
    "check_settings_registry_modules",
    "dump",
    "handoff",
    "load",
    "load_manifest",
    "load_pointer",
    "open_session",
    "persist_output",
    "read_record",
    "register_modules",
    "registry_for",
    "registry_modules",
    "write_record",
]
