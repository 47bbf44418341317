"""Past results, found by tag and loaded back: ``find_results`` and ``ResultRef``.

Prefect can list task runs by tag, but not the outputs they stored. Every result saved
through Labox carries the run-context tags of ``labox_prefect.context`` (flow, flow run,
task, task run, deployment, Prefect run tags) plus the user's own, so each filter here is
one more pair in a single tag-containment query (``tags @> {...}`` on PostgreSQL, which the
GIN index answers). A ``ResultRef`` is the manifest's metadata only; nothing is read from
the storage until ``load()`` / ``aload()``.

Queries and loads run on the process-wide runtime (labox_prefect.runtime), so they work the
same from sync code, from async code and inside a running flow or task. They read the
target tasks save to (labox_prefect.target): ``block="name"``, else the running task's or
flow's ``LaboxResultStorage``, else the saved ``default`` block, else the environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.context import (
    DEPLOYMENT_ID,
    DEPLOYMENT_NAME,
    FLOW_NAME,
    FLOW_RUN_ID,
    FLOW_RUN_NAME,
    KIND,
    PREFIX,
    RESULT_TYPE,
    RUN_TAG_PREFIX,
    TASK_NAME,
    TASK_RUN_ID,
    names_of,
    prefect_tag_filter,
)
from labox_prefect.core import (
    ComponentNotRegisteredError,
    LaboxError,
    ManifestNotFoundError,
    ManifestRecord,
    ManifestRow,
    NotRegisteredError,
    find_manifest_rows,
    get_manifest,
)
from labox_prefect.core.tags import check_tags
from labox_prefect.errors import (
    ArgumentTypeError,
    DatabaseNotInitializedError,
    InvalidArgumentError,
    ResultClassNotRegisteredError,
    ResultComponentNotRegisteredError,
)
from labox_prefect.persistence import (
    aload_manifest,
    load_manifest,
    open_session,
    registry_for,
)
from labox_prefect.runtime import get_runtime
from labox_prefect.target import (
    Target,
    TargetBlock,
    aresolve_target,
    is_embedded_default,
    resolve_target,
)

DEFAULT_LIMIT = 100
"""Results returned when no ``limit`` is given: enough to browse, bounded for big databases."""


@dataclass(frozen=True, repr=False)
class ResultRef:
    """One stored result: its manifest's id, tags, time and class id, and how to load it.

    The properties read the run-context tags; each is None when the record does not carry
    it (a flow's return value has no task, a run outside a deployment no deployment).
    """

    manifest_id: uuid.UUID
    tags: Mapping[str, str] = field(hash=False)
    created_at: datetime
    class_id: uuid.UUID
    target: Target = field(repr=False, compare=False)
    """The database and storage the result was found in; loads read from the same place."""

    @property
    def kind(self) -> str | None:
        """``"task"`` (a task's output) or ``"flow"`` (a flow's return value)."""
        return self.tags.get(KIND)

    @property
    def flow_name(self) -> str | None:
        return self.tags.get(FLOW_NAME)

    @property
    def flow_run_id(self) -> uuid.UUID | None:
        return _uuid_or_none(self.tags.get(FLOW_RUN_ID))

    @property
    def flow_run_name(self) -> str | None:
        return self.tags.get(FLOW_RUN_NAME)

    @property
    def task_name(self) -> str | None:
        return self.tags.get(TASK_NAME)

    @property
    def task_run_id(self) -> uuid.UUID | None:
        return _uuid_or_none(self.tags.get(TASK_RUN_ID))

    @property
    def deployment_id(self) -> uuid.UUID | None:
        return _uuid_or_none(self.tags.get(DEPLOYMENT_ID))

    @property
    def deployment_name(self) -> str | None:
        return self.tags.get(DEPLOYMENT_NAME)

    @property
    def result_type(self) -> str | None:
        """The type of the value the task returned, as ``module:qualname`` (e.g.
        ``pandas.core.frame:DataFrame``), recorded when it was saved."""
        return self.tags.get(RESULT_TYPE)

    @property
    def prefect_tags(self) -> tuple[str, ...]:
        """The Prefect run tags of the task run and flow run, sorted."""
        return tuple(
            sorted(
                key.removeprefix(RUN_TAG_PREFIX)
                for key, value in self.tags.items()
                if key.startswith(RUN_TAG_PREFIX) and value == "true"
            )
        )

    @property
    def user_tags(self) -> dict[str, str]:
        """The tags given by the user (every key outside the ``prefect.`` namespace)."""
        return {key: value for key, value in self.tags.items() if not key.startswith(PREFIX)}

    def __repr__(self) -> str:
        """The id, then what a reader looks for (task, flow, type, time); ``tags`` has all."""
        named = (("task", self.task_name), ("flow", self.flow_name), ("type", self.result_type))
        parts = [str(self.manifest_id), *(f"{key}={value!r}" for key, value in named if value)]
        parts.append(f"created_at={self.created_at.isoformat(sep=' ', timespec='seconds')}")
        return f"ResultRef({', '.join(parts)})"

    def storable_class_name(self) -> str | None:
        """The qualified name of the stored class, if this process's registry knows it."""
        try:
            cls = registry_for(self.target).get_storable(self.class_id)
        except NotRegisteredError:
            return None
        return f"{cls.__module__}.{cls.__qualname__}"

    def load(self) -> Any:
        """The stored value, from sync code (any thread, also inside a flow or task).

        A plain value (saved as a ``StorableValue``) comes back as itself; a Storable
        (a StorableModel, StorableDataclass...) as that object. Every content's hash is
        checked; streams inside are read lazily, as they are iterated.

        Raises ResultClassNotRegisteredError (a class it needs, the Storable's or one inside
        the value, was not imported) or
        ResultComponentNotRegisteredError (a serializer's module was not), each naming the
        fix.
        """
        registry = registry_for(self.target)
        try:
            return load_manifest(self.manifest_id, self.target, registry)
        except ComponentNotRegisteredError as error:
            raise ResultComponentNotRegisteredError(_component_message(self, error)) from None

    async def aload(self) -> Any:
        """``load`` for async code: awaits without blocking the caller's event loop."""
        registry = registry_for(self.target)
        try:
            return await aload_manifest(self.manifest_id, self.target, registry)
        except ComponentNotRegisteredError as error:
            raise ResultComponentNotRegisteredError(_component_message(self, error)) from None

    @classmethod
    def from_manifest(cls, manifest: ManifestRecord | ManifestRow, target: Target) -> ResultRef:
        return cls(
            manifest_id=manifest.id,
            tags=dict(manifest.tags or {}),
            created_at=manifest.created_at,
            class_id=manifest.class_id,
            target=target,
        )


def find_results(
    *,
    tags: Mapping[str, str] | None = None,
    flow_name: str | None = None,
    task_name: str | None = None,
    flow_run_id: str | uuid.UUID | None = None,
    prefect_tags: Iterable[str] = (),
    since: datetime | timedelta | None = None,
    limit: int | None = DEFAULT_LIMIT,
    block: str | TargetBlock | Target | None = None,
) -> list[ResultRef]:
    """Stored results matching every given filter, newest first.

    ``tags``: pairs every result must carry (others may be present; ``prefect.*`` keys
    may be given too, e.g. ``{"prefect.kind": "flow"}``). ``flow_name``, ``task_name``,
    ``flow_run_id``: where the result came from. ``prefect_tags``: Prefect run tags that
    must all be present. ``since``: a timezone-aware datetime, or a timedelta meaning that
    long ago. ``limit``: at most that many (0 or None: all of them). ``block``: the name of a
    saved LaboxResultStorage block (or a block, or a Target) to read; by default, the
    target tasks save to (see labox_prefect.target); ResultTargetError if the named block
    does not exist. An argument of the wrong type raises ArgumentTypeError (a TypeError), a
    bad value InvalidArgumentError (a ValueError), or InvalidTagsError for a bad tag.
    A read never creates or migrates tables: DatabaseNotInitializedError when the database
    has no Labox tables, except on the embedded default before its first save (an empty
    list).

    Works from sync code; from async code, ``await afind_results(...)`` instead so the
    caller's event loop is not blocked.
    """
    wanted, moment = _prepare(tags, flow_name, task_name, flow_run_id, prefect_tags, since, limit)
    target = resolve_target(block)
    manifests = get_runtime().run(_find(target, wanted, moment, limit or None))
    return [ResultRef.from_manifest(manifest, target) for manifest in manifests]


async def afind_results(
    *,
    tags: Mapping[str, str] | None = None,
    flow_name: str | None = None,
    task_name: str | None = None,
    flow_run_id: str | uuid.UUID | None = None,
    prefect_tags: Iterable[str] = (),
    since: datetime | timedelta | None = None,
    limit: int | None = DEFAULT_LIMIT,
    block: str | TargetBlock | Target | None = None,
) -> list[ResultRef]:
    """``find_results`` for async code (same filters, same order)."""
    wanted, moment = _prepare(tags, flow_name, task_name, flow_run_id, prefect_tags, since, limit)
    target = await aresolve_target(block)
    manifests = await get_runtime().arun(_find(target, wanted, moment, limit or None))
    return [ResultRef.from_manifest(manifest, target) for manifest in manifests]


def get_result(
    manifest_id: str | uuid.UUID, *, block: str | TargetBlock | Target | None = None
) -> ResultRef:
    """The result whose manifest has this id; ManifestNotFoundError if there is none,
    InvalidArgumentError if ``manifest_id`` is not a UUID."""
    target = resolve_target(block)
    manifest = get_runtime().run(_get(target, _as_uuid(manifest_id, "manifest_id")))
    return ResultRef.from_manifest(manifest, target)


async def aget_result(
    manifest_id: str | uuid.UUID, *, block: str | TargetBlock | Target | None = None
) -> ResultRef:
    """``get_result`` for async code."""
    target = await aresolve_target(block)
    manifest = await get_runtime().arun(_get(target, _as_uuid(manifest_id, "manifest_id")))
    return ResultRef.from_manifest(manifest, target)


# --- building the query ---------------------------------------------------------------------


def tag_filter(
    *,
    tags: Mapping[str, str] | None = None,
    flow_name: str | None = None,
    task_name: str | None = None,
    flow_run_id: str | uuid.UUID | None = None,
    prefect_tags: Iterable[str] = (),
) -> dict[str, str]:
    """The tag pairs that the filters of ``find_results`` stand for (one containment query).

    A filter that disagrees with a pair given in ``tags`` is an error rather than a query
    that can match nothing.
    """
    wanted = check_tags(tags)
    named: dict[str, str] = {}
    if flow_name is not None:
        named[FLOW_NAME] = _text(flow_name, "flow_name")
    if task_name is not None:
        named[TASK_NAME] = _text(task_name, "task_name")
    if flow_run_id is not None:
        named[FLOW_RUN_ID] = str(_as_uuid(flow_run_id, "flow_run_id"))
    given = names_of(prefect_tags)  # one str is one tag, as labox_task reads it
    named.update(prefect_tag_filter(_text(tag, "prefect_tags item") for tag in given))
    for key, value in named.items():
        if key in wanted and wanted[key] != value:
            raise InvalidArgumentError(
                f"tags[{key!r}]={wanted[key]!r} contradicts the filter that asks for {value!r}; "
                f"give only one of them."
            )
    return {**wanted, **named}


def since_moment(since: datetime | timedelta | None) -> datetime | None:
    """``since`` as an aware datetime: a timedelta counts back from now."""
    if since is None:
        return since
    if isinstance(since, datetime):
        if since.tzinfo is None or since.utcoffset() is None:
            raise InvalidArgumentError(
                f"since={since!r} has no timezone; results are stamped in UTC, so pass an "
                f"aware datetime (since.replace(tzinfo=UTC)) or a timedelta meaning that long "
                f"ago, e.g. timedelta(hours=2)."
            )
        return since
    if isinstance(since, timedelta):
        if since < timedelta(0):
            raise InvalidArgumentError(
                f"since={since!r} is negative; a timedelta means 'that long ago', e.g. "
                f"timedelta(hours=2)."
            )
        try:
            return datetime.now(UTC) - since
        except OverflowError:
            raise InvalidArgumentError(
                f"since={since!r} reaches back before the year 1; give a shorter timedelta, "
                f"or since=None for results of any age."
            ) from None
    raise ArgumentTypeError(
        f"since takes a timezone-aware datetime or a timedelta, not {type(since).__name__}."
    )


def _prepare(
    tags: Mapping[str, str] | None,
    flow_name: str | None,
    task_name: str | None,
    flow_run_id: str | uuid.UUID | None,
    prefect_tags: Iterable[str],
    since: datetime | timedelta | None,
    limit: int | None,
) -> tuple[dict[str, str], datetime | None]:
    """Check every argument in the caller's thread, so errors point at the call."""
    wanted = tag_filter(
        tags=tags,
        flow_name=flow_name,
        task_name=task_name,
        flow_run_id=flow_run_id,
        prefect_tags=prefect_tags,
    )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgumentError(
            f"limit must be an int >= 0 (0 or None: no limit, as the CLI's --limit 0); "
            f"got {limit!r}."
        )
    return wanted, since_moment(since)


async def _find(
    target: Target, tags: dict[str, str], since: datetime | None, limit: int | None
) -> list[ManifestRow]:
    """One query in a session of its own (see ``lone_query``); plain rows.

    A ResultRef needs no ORM record: rows cost a fraction of records to make (see
    find_manifest_rows). Nothing is created: on a database without Labox tables,
    DatabaseNotInitializedError, except on the embedded default (no LABOX_DATABASE_URL),
    where nothing saved yet simply lists nothing.
    """
    try:
        async with open_session(target, create_schema=False) as session:
            await lone_query(session)
            return await find_manifest_rows(session, tags=tags or None, since=since, limit=limit)
    except DatabaseNotInitializedError:
        if is_embedded_default(target):
            return []
        raise


async def lone_query(session: AsyncSession) -> None:
    """Ready a new session for one SELECT: on a database server, a connection in autocommit.

    A single SELECT needs no transaction: without one the call is one round trip to the
    server fewer each way (no BEGIN before, no ROLLBACK after). SQLite opens no transaction
    for a SELECT anyway, and switching its connection's mode there and back costs more than
    it saves (two PRAGMAs).
    """
    if session.get_bind().dialect.name != "sqlite":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def _get(target: Target, manifest_id: uuid.UUID) -> ManifestRecord:
    """The manifest; on the embedded default before the first save, ManifestNotFoundError
    (as ``find_results`` lists nothing there), never a database made by the read."""
    try:
        async with open_session(target, create_schema=False) as session:
            return await get_manifest(session, manifest_id)
    except DatabaseNotInitializedError:
        if not is_embedded_default(target):
            raise
        missing = ManifestNotFoundError(
            f"No manifest with id {manifest_id} exists: nothing was saved to the embedded "
            f"database yet."
        )
        missing.add_note(f"Searched {target.database_label}.")
        raise missing from None
    except LaboxError as error:
        error.add_note(f"Searched {target.database_label}.")
        raise


def _component_message(ref: ResultRef, error: ComponentNotRegisteredError) -> str:
    return (
        f"Result {ref.manifest_id} was saved with the {error.kind} {error.name!r}, which this "
        f"process has not registered, so it cannot be loaded. Name the module that exports it "
        f"in LABOX_REGISTRY_MODULES (comma-separated module names, read at each load; in a "
        f"notebook: os.environ['LABOX_REGISTRY_MODULES'] = 'your_package.serializers'), then "
        f"load again."
    )


def _as_uuid(value: str | uuid.UUID, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    raise InvalidArgumentError(f"{name} must be a UUID (e.g. {uuid.UUID(int=0)}), not {value!r}.")


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArgumentTypeError(f"{name} must be a non-empty string, not {value!r}.")
    return value


__all__ = [
    "DEFAULT_LIMIT",
    "ResultClassNotRegisteredError",
    "ResultRef",
    "afind_results",
    "aget_result",
    "find_results",
    "get_result",
    "since_moment",
    "tag_filter",
]
