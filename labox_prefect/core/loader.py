"""Loading storables: read every content, check its hash, deserialize, repack.

Classes and components are found through the registry only (by class id and by name), so
loading never imports what stored data names. Every blob is verified against the sha256
recorded on save; streams are verified as they are read and fail at their end if corrupted.
A record whose rows cannot make its class (content rows gone, a class id altered to name a
class of another unpacker family) raises DamagedRecordError naming the manifest, never a
bare KeyError or a half-built object. Reading the rows retries transient database failures.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.core.connection import retrying
from labox_prefect.core.database import ContentRecord, ManifestRecord
from labox_prefect.core.defaults import registry_for_session
from labox_prefect.core.digest import LocalFile, verify_bytes, verify_stream
from labox_prefect.core.errors import (
    DamagedRecordError,
    LaboxError,
    ManifestNotFoundError,
    NotRegisteredError,
    StorableTypeError,
)
from labox_prefect.core.future import Future, raise_first_failure, settle_failures
from labox_prefect.core.inline_storage import DatabaseStorage
from labox_prefect.core.ownership import session_database
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, SerializedDataStream, StreamSerializer
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacker

S = TypeVar("S", bound=Storable)

DEFAULT_MAX_CONCURRENCY = 16
_INLINE_DESERIALIZE_LIMIT = 64 * 1024
"""Blobs up to this size are decoded on the loop; a thread hop costs more than they do."""
_IDS_PER_QUERY = 1_000
_MANIFESTS = ManifestRecord.__table__
_CONTENTS = ContentRecord.__table__
_MANIFEST_ID = _MANIFESTS.c.id
_LOAD_QUERY = select(
    _MANIFEST_ID,
    _MANIFESTS.c.class_id,
    _MANIFESTS.c.unpacker_name,
    *(
        _CONTENTS.c[name]
        for name in (
            "content_key",
            "content_type",
            "content_encoding",
            "content_hash",
            "content_hash_algorithm",
            "serializer_name",
            "serializer_config",
            "serializer_type",
            "storage_name",
            "storage_config",
        )
    ),
).select_from(_MANIFESTS.outerjoin(_CONTENTS, _CONTENTS.c.manifest_id == _MANIFEST_ID))
"""What a load reads: each manifest's class and unpacker, joined with its contents (not
their tags, times or sizes), one row per content (one row of NULL contents if it has none).
"""
_NEEDS_IO = object()


@dataclass(slots=True)
class _Request:
    manifest_id: uuid.UUID
    cls: type[Storable] | None
    future: Future[Any]


class Loader:
    """Collects records with ``load_soon``; they are loaded when the context exits."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        registry: Registry,
        stack: AsyncExitStack | None,
        max_concurrency: int,
    ) -> None:
        self._session = session
        self._registry = registry_for_session(registry, session)
        self._stack = stack
        self._max_concurrency = max_concurrency
        self._requests: list[_Request] = []
        self._families_checked: set[tuple[type[Storable], str]] = set()

    @overload
    def load_soon(self, record: ManifestRecord | uuid.UUID, cls: type[S]) -> Future[S]: ...
    @overload
    def load_soon(self, record: ManifestRecord | uuid.UUID, cls: None = None) -> Future[Any]: ...
    def load_soon(
        self, record: ManifestRecord | uuid.UUID, cls: type[S] | None = None
    ) -> Future[Any]:
        """Queue a record (or manifest id); with no ``cls`` the registry names the class."""
        future: Future[Any] = Future()
        self._requests.append(_Request(_manifest_id(record), cls, future))
        return future

    async def _load_all(self) -> None:
        requests, self._requests = self._requests, []
        if not requests:
            return
        ids = list({r.manifest_id for r in requests})
        manifests, contents = await retrying(
            lambda: self._fetch(ids),
            database=session_database(self._session),
            reset=self._session.rollback,
        )
        # Records whose contents all live in their rows load at once, in order; the others
        # (files, objects, streams) load concurrently, a bounded number at a time.
        outcomes: list[Any] = []
        waiting: list[int] = []
        for request in requests:
            try:
                outcome = self._load_now(request, manifests, contents)
            except Exception as error:
                outcome = error
            if outcome is _NEEDS_IO:
                waiting.append(len(outcomes))
            outcomes.append(outcome)
        if waiting:
            limit = asyncio.Semaphore(self._max_concurrency)

            async def load(request: _Request) -> Any:
                async with limit:
                    return await self._load(request, manifests, contents)

            loaded = await asyncio.gather(
                *(load(requests[i]) for i in waiting), return_exceptions=True
            )
            for i, outcome in zip(waiting, loaded, strict=True):
                outcomes[i] = outcome
        failures = settle_failures([r.future for r in requests], outcomes)
        for request, outcome in zip(requests, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                request.future.set_value(outcome)
        raise_first_failure(failures, "record(s)")

    async def _fetch(
        self, ids: list[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, Mapping[str, Any]], dict[uuid.UUID, list[Mapping[str, Any]]]]:
        """Each manifest and its content rows, in one query per thousand manifests."""
        manifests: dict[uuid.UUID, Mapping[str, Any]] = {}
        contents: dict[uuid.UUID, list[Mapping[str, Any]]] = {mid: [] for mid in ids}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            result = await self._session.execute(_LOAD_QUERY.where(_MANIFEST_ID.in_(chunk)))
            rows = cast("Iterable[Mapping[str, Any]]", result.mappings())
            for row in rows:
                manifest_id = row["id"]
                manifests[manifest_id] = row
                if row["content_key"] is not None:  # the outer join's row of no content
                    contents[manifest_id].append(row)
        return manifests, contents

    def _load_now(
        self,
        request: _Request,
        manifests: Mapping[uuid.UUID, Mapping[str, Any]],
        contents: Mapping[uuid.UUID, Sequence[Mapping[str, Any]]],
    ) -> Any:
        """Load a record whose contents all live in their rows, without awaiting anything;
        `_NEEDS_IO` if one does not (a stream, a blob in a storage, an unknown storage)."""
        rows = contents[request.manifest_id]
        storages = []
        for row in rows:
            if row["serializer_type"] == "stream":
                return _NEEDS_IO
            try:
                storage = self._registry.get_storage(row["storage_name"])
            except NotRegisteredError:
                return _NEEDS_IO  # the other path raises it, naming the content
            if not isinstance(storage, DatabaseStorage):
                return _NEEDS_IO
            storages.append(storage)
        cls, unpacker = self._resolve(request, manifests)
        values: dict[str, Any] = {}
        for row, storage in zip(rows, storages, strict=True):
            try:
                data = storage.read_inline(row["storage_config"])
                values[row["content_key"]] = self._decode(row, storage, data)
            except Exception as error:
                _note_content(error, row, request.manifest_id)
                raise
        return self._repack(request, cls, unpacker, values)

    async def _load(
        self,
        request: _Request,
        manifests: Mapping[uuid.UUID, Mapping[str, Any]],
        contents: Mapping[uuid.UUID, Sequence[Mapping[str, Any]]],
    ) -> Any:
        cls, unpacker = self._resolve(request, manifests)
        values: dict[str, Any] = {}
        for row in contents[request.manifest_id]:
            try:
                if row["serializer_type"] == "stream":
                    values[row["content_key"]] = self._open_stream(row)
                else:
                    values[row["content_key"]] = await self._read_value(row)
            except Exception as error:
                _note_content(error, row, request.manifest_id)
                raise
        return self._repack(request, cls, unpacker, values)

    def _resolve(
        self, request: _Request, manifests: Mapping[uuid.UUID, Mapping[str, Any]]
    ) -> tuple[type[Storable], Unpacker[Any]]:
        """The class and unpacker of a request's manifest, checked against each other."""
        manifest = manifests.get(request.manifest_id)
        if manifest is None:
            raise ManifestNotFoundError(
                f"No manifest with id {request.manifest_id} exists in this database; check "
                f"the database URL, or whether the record was deleted."
            )
        cls = self._storable_class(request.cls, manifest["class_id"])
        unpacker_name = manifest["unpacker_name"]
        unpacker = self._registry.get_unpacker(unpacker_name)
        if (cls, unpacker_name) not in self._families_checked:
            check_unpacker_family(manifest, cls, self._registry)
            self._families_checked.add((cls, unpacker_name))
        return cls, unpacker

    def _repack(
        self,
        request: _Request,
        cls: type[Storable],
        unpacker: Unpacker[Any],
        values: Mapping[str, Any],
    ) -> Any:
        try:
            return unpacker.repack_object(cls, values, self._registry)
        except LaboxError as error:
            error.add_note(f"(while rebuilding manifest {request.manifest_id})")
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise DamagedRecordError(
                f"Manifest {request.manifest_id} cannot be rebuilt as a {cls.__qualname__} with "
                f"{unpacker.name!r} from its contents {sorted(values) or 'none'} "
                f"({type(error).__name__}: {error}). The record is damaged (content rows "
                f"deleted or altered); run `verify`, then delete the record or save the object "
                f"again."
            ) from error

    def _storable_class(self, cls: type[Storable] | None, class_id: uuid.UUID) -> type[Storable]:
        if cls is None:
            return self._registry.get_storable(class_id)
        if cls.storable_class_id() != class_id:
            raise StorableTypeError(
                f"The record holds class_id {class_id}, but {cls.__qualname__} has class_id "
                f"{cls.storable_class_id()}; pass the class it was saved as, or no class to let "
                f"the registry find it."
            )
        return cls

    async def _read_value(self, row: Mapping[str, Any]) -> Any:
        storage = self._registry.get_storage(row["storage_name"])
        data = await storage.read_data(row["storage_config"])
        if len(data) <= _INLINE_DESERIALIZE_LIMIT:
            return self._decode(row, storage, data)
        # Large bytes: the hash is checked on one thread while they are decoded on another,
        # and the value is given only once the check passed (a decoding error of altered
        # bytes is reported as the corruption it is).
        check = asyncio.ensure_future(asyncio.to_thread(self._verify, row, storage, data))
        try:
            value = await asyncio.to_thread(self._deserialize, row, data)
        except Exception:
            await check
            raise
        finally:
            if not check.done():
                await asyncio.wait([check])
        check.result()
        return value

    def _decode(self, row: Mapping[str, Any], storage: Storage, data: bytes) -> Any:
        """The value of a content's bytes, once they are checked against its hash."""
        self._verify(row, storage, data)
        return self._deserialize(row, data)

    def _verify(self, row: Mapping[str, Any], storage: Storage, data: bytes) -> None:
        where = f"{storage.name} {row['storage_config']}"
        verify_bytes(data, row["content_hash"], row["content_hash_algorithm"], where)

    def _deserialize(self, row: Mapping[str, Any], data: bytes) -> Any:
        serializer = self._registry.get_serializer(row["serializer_name"])
        return serializer.deserialize_data(
            SerializedData(
                data=data,
                content_type=row["content_type"],
                content_encoding=row["content_encoding"],
                config=row["serializer_config"] or {},
            )
        )

    def _open_stream(self, row: Mapping[str, Any]) -> AsyncGenerator[Any, None]:
        serializer = self._registry.get_stream_serializer(row["serializer_name"])
        storage = self._registry.get_storage(row["storage_name"])
        stream = _verified_items(serializer, storage, row)
        if self._stack is not None:
            self._stack.push_async_callback(stream.aclose)
        return stream


async def _verified_items(
    serializer: StreamSerializer[Any], storage: Storage, row: Mapping[str, Any]
) -> AsyncGenerator[Any, None]:
    """Items of a stored stream; bytes are hash-checked on the way, nothing is read early."""
    config = row["storage_config"]
    where = f"{storage.name} {config}"
    path = storage.local_path(config)
    raw = verify_stream(
        storage.read_data_stream(config),
        row["content_hash"],
        row["content_hash_algorithm"],
        where,
    )
    local_file = (
        None
        if path is None
        else LocalFile(path, row["content_hash"], row["content_hash_algorithm"], where)
    )
    items = serializer.deserialize_data_stream(
        SerializedDataStream(
            data_stream=raw,
            content_type=row["content_type"],
            content_encoding=row["content_encoding"],
            config=row["serializer_config"] or {},
            local_file=local_file,
        )
    )
    try:
        async for item in items:
            yield item
            del item  # hold no item while the next is read: each may be a large frame
    finally:
        if isinstance(items, AsyncGenerator):
            await items.aclose()
        await raw.aclose()


@asynccontextmanager
async def new_loader(
    *,
    session: AsyncSession,
    registry: Registry,
    stack: AsyncExitStack | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> AsyncIterator[Loader]:
    """Load many records concurrently; futures resolve, in request order, at block exit.

    Streams inside loaded objects are closed by ``stack`` when given, otherwise when they
    are garbage collected.
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    loader = Loader(
        session=session, registry=registry, stack=stack, max_concurrency=max_concurrency
    )
    yield loader
    await loader._load_all()


@overload
async def load_one(
    record: ManifestRecord | uuid.UUID,
    cls: type[S],
    *,
    session: AsyncSession,
    registry: Registry,
    stack: AsyncExitStack | None = None,
) -> S: ...
@overload
async def load_one(
    record: ManifestRecord | uuid.UUID,
    cls: None = None,
    *,
    session: AsyncSession,
    registry: Registry,
    stack: AsyncExitStack | None = None,
) -> Any: ...
async def load_one(
    record: ManifestRecord | uuid.UUID,
    cls: type[S] | None = None,
    *,
    session: AsyncSession,
    registry: Registry,
    stack: AsyncExitStack | None = None,
) -> Any:
    """Load one record (or manifest id) back into its storable object."""
    async with new_loader(session=session, registry=registry, stack=stack) as loader:
        future = loader.load_soon(record, cls)
    return future.value


def check_unpacker_family(
    manifest: Mapping[str, Any], cls: type[Storable], registry: Registry
) -> None:
    """Raise DamagedRecordError if ``cls`` (named by the manifest's ``class_id``) is not
    unpacked by the family of unpackers the manifest (``id``, ``class_id``,
    ``unpacker_name``) was saved with.

    Versions of one unpacker (``x@v1``, ``x@v2``) are one family; another family means the
    class id names a class the record was never saved as, and repacking would build a
    broken object. Used by loads and by ``verify_manifests``.
    """
    expected = registry.infer_unpacker(cls).name
    recorded = str(manifest["unpacker_name"])
    if recorded.split("@", 1)[0] != expected.split("@", 1)[0]:
        raise DamagedRecordError(
            f"Manifest {manifest['id']} was saved with unpacker {recorded!r}, but its class id "
            f"{manifest['class_id']} names {cls.__qualname__}, which {expected!r} unpacks. "
            f"The record's class id was altered, or two classes share one id; fix the class "
            f"id or delete the record."
        )


def _note_content(error: Exception, row: Mapping[str, Any], manifest_id: uuid.UUID) -> None:
    error.add_note(f"(while loading content {row['content_key']!r} of manifest {manifest_id})")


def _manifest_id(record: ManifestRecord | uuid.UUID) -> uuid.UUID:
    if isinstance(record, uuid.UUID):
        return record
    if not isinstance(record, ManifestRecord):
        raise TypeError(
            f"load_soon/load_one take a ManifestRecord or its id, not {type(record).__name__}."
        )
    # The identity survives expiry, so a record from a committed session still names its id
    # without a lazy load (which async sessions cannot do).
    state = inspect(record)
    if state.identity is not None:
        return uuid.UUID(str(state.identity[0]))
    return record.id
