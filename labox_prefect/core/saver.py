"""Saving storables: unpack, serialize, write the bytes, then record them.

Order matters for safety: the database is recorded as an owner of each storage it writes
to (see ``ownership``), every blob of an object is written before its manifest exists, and
all manifests and contents of a batch go to the database in one multi-row INSERT each, in
one transaction. An object that fails (bad tags included: they are checked before anything
is written) fails only its own future; the others are committed. A transient database
failure of that transaction is retried (see ``connection``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, select
from sqlalchemy.exc import IntegrityError

from labox_prefect.core.connection import retrying
from labox_prefect.core.database import ContentRecord, ManifestRecord, utcnow
from labox_prefect.core.defaults import registry_for_session
from labox_prefect.core.detached import detached_record
from labox_prefect.core.digest import Digest, HashingStream, digest_bytes
from labox_prefect.core.errors import NotRegisteredError, SerializationError, StorableTypeError
from labox_prefect.core.future import Future, raise_first_failure, settle_failures
from labox_prefect.core.ownership import claim, session_database
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, Serializer, StreamSerializer
from labox_prefect.core.sessions import (
    AnySession,
    commit_session,
    execute_in_session,
    rollback_session,
    scalar_in_session,
)
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.tags import InvalidTagsError, Tags, check_tags
from labox_prefect.core.unpacker import Unpacked, UnpackedStream, UnpackedValue

DEFAULT_MAX_CONCURRENCY = 16
"""Objects written at once: enough to hide storage latency, few enough to bound memory."""

MAX_CONTENT_KEY_LENGTH = 255
"""Longest content key: ``labox_contents.content_key`` is VARCHAR(255)."""

_INLINE_SERIALIZE_LIMIT = 256
"""Containers up to this many items are serialized on the loop; a thread hop costs more."""


@dataclass(slots=True)
class _Request:
    obj: Storable
    tags: dict[str, str]
    future: Future[ManifestRecord]
    refused: Exception | None = None
    """Why the object was refused when queued (its tags): it fails without being written."""


class Saver:
    """Collects objects with ``save_soon``; they are saved when the context exits."""

    def __init__(
        self,
        *,
        session: AnySession,
        registry: Registry,
        tags: Tags | None,
        max_concurrency: int,
    ) -> None:
        self._session = session
        self._registry = registry_for_session(registry, session)
        self._database = session_database(session)
        self._tags = check_tags(tags)
        self._max_concurrency = max_concurrency
        self._requests: list[_Request] = []

    def save_soon(self, obj: Storable, tags: Tags | None = None) -> Future[ManifestRecord]:
        """Queue ``obj``; the future resolves to its ManifestRecord after the context."""
        future: Future[ManifestRecord] = Future()
        try:
            merged = {**self._tags, **check_tags(tags)}
        except InvalidTagsError as error:
            self._requests.append(_Request(obj, {}, future, refused=error))
        else:
            self._requests.append(_Request(obj, merged, future))
        return future

    async def _save_all(self) -> None:
        requests, self._requests = self._requests, []
        if not requests:
            return
        limit = asyncio.Semaphore(self._max_concurrency)

        async def write(request: _Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            if request.refused is not None:
                raise request.refused
            async with limit:
                return await _write_object(
                    request.obj, request.tags, self._registry, self._database
                )

        outcomes = await _outcomes(write, requests)
        failures = settle_failures([r.future for r in requests], outcomes)
        written = [
            (request, *outcome)
            for request, outcome in zip(requests, outcomes, strict=True)
            if not isinstance(outcome, BaseException)
        ]
        if written:
            await self._record(written)
        raise_first_failure(failures, f"object(s) of this batch ({len(written)} were saved)")

    async def _record(
        self, written: list[tuple[_Request, dict[str, Any], list[dict[str, Any]]]]
    ) -> None:
        manifests = [manifest for _, manifest, _ in written]
        contents = [row for _, _, rows in written for row in rows]
        try:
            await _insert_and_commit(self._session, self._database, manifests, contents)
        except Exception as error:
            for request, _, _ in written:
                request.future.set_exception(error)
            raise
        for request, manifest, _ in written:
            request.future.set_value(detached_record(ManifestRecord, manifest))


async def _outcomes(
    write: Callable[[_Request], Awaitable[Any]], requests: list[_Request]
) -> list[Any]:
    """Each request's written rows, or the exception that failed it, in request order.

    A batch of one is written in the caller's own task: a task of its own and the loop turns
    that ``gather`` takes cost more than saving a small value.
    """
    if len(requests) == 1:
        try:
            return [await write(requests[0])]
        except Exception as error:
            return [error]
    return list(await asyncio.gather(*map(write, requests), return_exceptions=True))


@asynccontextmanager
async def new_saver(
    *,
    session: AnySession,
    registry: Registry,
    tags: Tags | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> AsyncIterator[Saver]:
    """Save many storables concurrently; futures resolve when the block exits.

    If the block itself raises, nothing queued is saved. If some objects fail, the others
    are still committed and the first failure is raised (each future holds its own).
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    saver = Saver(session=session, registry=registry, tags=tags, max_concurrency=max_concurrency)
    yield saver
    await saver._save_all()


async def save_one(
    obj: Storable,
    *,
    session: AnySession,
    registry: Registry,
    tags: Tags | None = None,
) -> ManifestRecord:
    """Save one storable and return its (detached, always readable) manifest record."""
    manifest, _ = await save_one_with_contents(obj, session=session, registry=registry, tags=tags)
    return manifest


async def save_one_with_contents(
    obj: Storable,
    *,
    session: AnySession,
    registry: Registry,
    tags: Tags | None = None,
    before_commit: Callable[[uuid.UUID], Awaitable[None]] | None = None,
) -> tuple[ManifestRecord, list[ContentRecord]]:
    """``save_one``, with the content records it wrote (detached, ordered by content key,
    as ``get_contents`` would read them back), so no query reads them back.

    ``before_commit(manifest_id)``, when given, runs in the save's own transaction on
    ``session``, after the manifest and contents rows are inserted and before the commit:
    rows it writes are committed together with the record, or not at all (if it raises,
    nothing is committed and its exception is raised). It runs again if the transaction is
    retried after a transient failure, so it must write idempotently (an upsert).
    """
    # A batch's steps for one object, without a batch's machinery (futures, a semaphore,
    # failures to settle): every Prefect result is saved here, and its CPU time is the
    # task's.
    bound = registry_for_session(registry, session)
    database = session_database(session)
    manifest, rows = await _write_object(obj, check_tags(tags), bound, database)
    hook = None if before_commit is None else partial(before_commit, manifest["id"])
    await _insert_and_commit(session, database, [manifest], rows, hook)
    rows.sort(key=_content_key)
    return (
        detached_record(ManifestRecord, manifest),
        [detached_record(ContentRecord, row) for row in rows],
    )


def _content_key(row: dict[str, Any]) -> str:
    return str(row["content_key"])


async def _insert_and_commit(
    session: AnySession,
    database: str,
    manifests: list[dict[str, Any]],
    contents: list[dict[str, Any]],
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Insert the rows of written objects and ``before_commit()``'s, and commit them, in one
    transaction, retried after a transient failure; on failure, roll back and raise."""
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            await _insert_many(session, ManifestRecord, manifests)
            await _insert_many(session, ContentRecord, contents)
            if before_commit is not None:
                await before_commit()
            await commit_session(session)
        except IntegrityError:
            # A retry after a commit whose answer was lost finds its own rows: done.
            await rollback_session(session)
            if attempts == 1 or not await _committed(session, manifests[0]["id"]):
                raise

    try:
        await retrying(attempt, database=database, reset=lambda: rollback_session(session))
    except Exception:
        await _rollback_quietly(session)
        raise


async def _committed(session: AnySession, manifest_id: uuid.UUID) -> bool:
    found = await scalar_in_session(
        session, select(ManifestRecord.id).where(ManifestRecord.id == manifest_id)
    )
    await rollback_session(session)
    return found is not None


async def _rollback_quietly(session: AnySession) -> None:
    try:
        await rollback_session(session)
    except Exception:  # the connection is gone; the original error says why
        return


async def _write_object(
    obj: Storable, tags: dict[str, str], registry: Registry, database: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write ``obj``'s contents to their storages: its manifest row and its content rows."""
    if not isinstance(obj, Storable):
        raise StorableTypeError(
            f"Cannot save a {type(obj).__qualname__}: it is not a Storable. Wrap it in "
            f"StorableValue(...) or derive its class from StorableModel or StorableDataclass."
        )
    cls = type(obj)
    unpacker = registry.infer_unpacker(cls)
    manifest_id = uuid.uuid4()
    now = utcnow()
    if unpacker.unpacks_quickly(obj):
        contents = unpacker.unpack_object(obj, registry)
    else:
        contents = await asyncio.to_thread(unpacker.unpack_object, obj, registry)
    _check_content_keys(contents, cls)
    rows = []
    for key, unpacked in contents.items():
        try:
            rows.append(
                await _write_content(manifest_id, key, unpacked, tags, registry, database, now)
            )
        except Exception as error:
            error.add_note(f"(while saving content {key!r} of a {cls.__qualname__})")
            raise
    manifest = {
        "id": manifest_id,
        "created_at": now,
        "class_id": cls.storable_class_id(),
        "unpacker_name": unpacker.name,
        "tags": tags,
    }
    return manifest, rows


async def _write_content(
    manifest_id: uuid.UUID,
    key: str,
    unpacked: Unpacked,
    tags: dict[str, str],
    registry: Registry,
    database: str,
    now: datetime,
) -> dict[str, Any]:
    if isinstance(unpacked, UnpackedValue):
        serializer = unpacked.serializer or registry.infer_serializer(type(unpacked.value))
        _require_registered(registry.get_serializer, serializer.name)
        if _cheap_to_serialize(unpacked.value):
            serialized, digest = _serialize(serializer, unpacked.value)
        else:
            serialized, digest = await asyncio.to_thread(_serialize, serializer, unpacked.value)
        data = serialized.data
        storage = _registered_storage(unpacked.storage, registry) or registry.storage_for(
            data, digest
        )
        if isinstance(data, memoryview) and not storage.writes_views:
            data = bytes(data)
        await claim(storage, database)
        # A storage that writes views takes the memoryview as it is (Storage.writes_views).
        config = await storage.write_data(cast(bytes, data), digest, tags)
        serializer_name, serializer_config, kind = serializer.name, serialized.config, "value"
    else:
        storage = _registered_storage(unpacked.storage, registry) or registry.default_storage
        stream_serializer = _stream_serializer(unpacked, registry)
        _require_registered(registry.get_stream_serializer, stream_serializer.name)
        serialized_stream = stream_serializer.serialize_data_stream(unpacked.stream)
        _check_media(
            stream_serializer.name,
            serialized_stream.content_type,
            serialized_stream.content_encoding,
        )
        hashing = HashingStream(
            serialized_stream.data_stream,
            serialized_stream.content_type,
            serialized_stream.content_encoding,
        )
        await claim(storage, database)
        config = await storage.write_data_stream(hashing, hashing.digest, tags)
        digest = hashing.digest()
        serializer_name, serializer_config = stream_serializer.name, serialized_stream.config
        kind = "stream"
    return {
        "id": uuid.uuid4(),
        "created_at": now,
        "manifest_id": manifest_id,
        "content_key": key,
        "content_type": digest.content_type,
        "content_encoding": digest.content_encoding,
        "content_size": digest.content_size,
        "content_hash": digest.content_hash,
        "content_hash_algorithm": digest.content_hash_algorithm,
        "serializer_name": serializer_name,
        "serializer_config": serializer_config,
        "serializer_type": kind,
        "storage_name": storage.name,
        "storage_config": config,
    }


def _check_content_keys(contents: Mapping[str, Unpacked], cls: type[Storable]) -> None:
    """Refuse, before any write, content keys that the content table cannot hold."""
    for key in contents:
        if not isinstance(key, str) or len(key) > MAX_CONTENT_KEY_LENGTH:
            shown = repr(key) if not isinstance(key, str) else f"{key[:40]!r}... ({len(key)} chars)"
            raise StorableTypeError(
                f"A {cls.__qualname__} unpacks to the content key {shown}; content keys are "
                f"text of at most {MAX_CONTENT_KEY_LENGTH} characters (the content_key column). "
                f"Shorten the field name, or name the content in the unpacker."
            )


def _serialize(serializer: Serializer[Any], value: Any) -> tuple[SerializedData, Digest]:
    serialized = serializer.serialize_data(value)
    data = serialized.data
    if not (
        type(data) is bytes
        or (isinstance(data, memoryview) and data.format == "B" and data.c_contiguous)
    ):
        raise SerializationError(
            f"Serializer {serializer.name!r} returned {_kind_of(data)}, not bytes; "
            f"serialize_data must return SerializedData(data=<bytes>, ...) (or a contiguous "
            f"memoryview of bytes: memoryview(buffer).cast('B'))."
        )
    _check_media(serializer.name, serialized.content_type, serialized.content_encoding)
    digest = digest_bytes(serialized.data, serialized.content_type, serialized.content_encoding)
    return serialized, digest


def _kind_of(data: Any) -> str:
    if isinstance(data, memoryview):
        layout = "contiguous" if data.c_contiguous else "non-contiguous"
        return f"a {layout} memoryview of format {data.format!r}"
    return type(data).__name__


def _check_media(serializer: str, content_type: str, content_encoding: str | None) -> None:
    """Refuse, before any write, a content type or encoding too long for its column."""
    for what, text, bound in (
        ("content type", content_type, 255),
        ("content encoding", content_encoding, 64),
    ):
        if text is not None and (not isinstance(text, str) or len(text) > bound):
            raise SerializationError(
                f"Serializer {serializer!r} gave the {what} {str(text)[:60]!r}, which is not "
                f"text of at most {bound} characters (the record's column); fix the serializer."
            )


def _stream_serializer(unpacked: UnpackedStream, registry: Registry) -> StreamSerializer[Any]:
    if unpacked.serializer is not None:
        return unpacked.serializer
    if unpacked.item_type is None:
        raise NotRegisteredError(
            "Cannot infer a stream serializer: the stream's item type is unknown. Annotate the "
            "field as AsyncIterable[<item type>] or name a serializer with ContentSpec."
        )
    return registry.infer_stream_serializer(unpacked.item_type)


def _registered_storage(storage: Storage | None, registry: Registry) -> Storage | None:
    if storage is not None:
        _require_registered(registry.get_storage, storage.name)
    return storage


def _require_registered(lookup: Any, name: str) -> None:
    """Refuse to write what could not be loaded back: loads resolve components by name."""
    try:
        lookup(name)
    except NotRegisteredError as error:
        error.add_note("Saving was refused because a load could not resolve this component.")
        raise


def _cheap_to_serialize(value: Any) -> bool:
    if isinstance(value, dict | list | tuple):
        return len(value) <= _INLINE_SERIALIZE_LIMIT
    return (
        isinstance(value, int | float | bool | datetime)
        or value is None
        or (isinstance(value, str | bytes) and len(value) <= 64 * 1024)
    )


async def _insert_many(
    session: AnySession,
    record: type[ManifestRecord] | type[ContentRecord],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """One INSERT statement for the whole batch, executed with every row's parameters.

    The driver batches the rows (asyncpg pipelines them, SQLite loops in C), which keeps
    the cost per row far below one statement per row, without compiling a statement with
    tens of thousands of bind parameters. A single row is executed as such: SQLAlchemy
    prepares an execute for it with less work than an executemany.
    """
    if len(rows) == 1:
        await execute_in_session(session, _INSERTS[record], rows[0])
    elif rows:
        await execute_in_session(session, _INSERTS[record], list(rows))


# Built once: a statement made anew per save is compiled from SQLAlchemy's cache, but its
# cache key is computed again each time.
_INSERTS: dict[type[Any], Insert] = {
    record: insert(cast(Table, record.__table__)) for record in (ManifestRecord, ContentRecord)
}
