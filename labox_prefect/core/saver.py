"""Saving storables: unpack, serialize, write the bytes, then record them.

Order matters for safety: every blob of an object is written before its manifest exists, and
all manifests and contents of a batch go to the database in one multi-row INSERT each, in
one transaction. An object that fails fails only its own future; the others are committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.core.database import ContentRecord, ManifestRecord, utcnow
from labox_prefect.core.digest import Digest, HashingStream, digest_bytes
from labox_prefect.core.errors import NotRegisteredError, SerializationError, StorableTypeError
from labox_prefect.core.future import Future, raise_first_failure, settle_failures
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, Serializer, StreamSerializer
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.tags import Tags, check_tags
from labox_prefect.core.unpacker import Unpacked, UnpackedStream, UnpackedValue

DEFAULT_MAX_CONCURRENCY = 16
"""Objects written at once: enough to hide storage latency, few enough to bound memory."""

_INLINE_SERIALIZE_LIMIT = 256
"""Containers up to this many items are serialized on the loop; a thread hop costs more."""


@dataclass(slots=True)
class _Request:
    obj: Storable
    tags: dict[str, str]
    future: Future[ManifestRecord]


class Saver:
    """Collects objects with ``save_soon``; they are saved when the context exits."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        registry: Registry,
        tags: Tags | None,
        max_concurrency: int,
    ) -> None:
        self._session = session
        self._registry = registry
        self._tags = check_tags(tags)
        self._max_concurrency = max_concurrency
        self._requests: list[_Request] = []

    def save_soon(self, obj: Storable, tags: Tags | None = None) -> Future[ManifestRecord]:
        """Queue ``obj``; the future resolves to its ManifestRecord after the context."""
        future: Future[ManifestRecord] = Future()
        merged = {**self._tags, **check_tags(tags)}
        self._requests.append(_Request(obj, merged, future))
        return future

    async def _save_all(self) -> None:
        requests, self._requests = self._requests, []
        if not requests:
            return
        limit = asyncio.Semaphore(self._max_concurrency)

        async def write(request: _Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with limit:
                return await _write_object(request, self._registry)

        outcomes = await asyncio.gather(*map(write, requests), return_exceptions=True)
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
            await _insert_many(self._session, ManifestRecord, manifests)
            await _insert_many(self._session, ContentRecord, contents)
            await self._session.commit()
        except Exception as error:
            await self._session.rollback()
            for request, _, _ in written:
                request.future.set_exception(error)
            raise
        for request, manifest, _ in written:
            # A detached record: it stays readable after commit even with
            # expire_on_commit=True, and can be handed to a loader in another session.
            request.future.set_value(ManifestRecord(**manifest))


@asynccontextmanager
async def new_saver(
    *,
    session: AsyncSession,
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
    session: AsyncSession,
    registry: Registry,
    tags: Tags | None = None,
) -> ManifestRecord:
    """Save one storable and return its (detached, always readable) manifest record."""
    async with new_saver(session=session, registry=registry) as saver:
        future = saver.save_soon(obj, tags)
    return future.value


async def _write_object(
    request: _Request, registry: Registry
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    obj = request.obj
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
    rows = []
    for key, unpacked in contents.items():
        try:
            rows.append(
                await _write_content(manifest_id, key, unpacked, request.tags, registry, now)
            )
        except Exception as error:
            error.add_note(f"(while saving content {key!r} of a {cls.__qualname__})")
            raise
    manifest = {
        "id": manifest_id,
        "created_at": now,
        "class_id": cls.storable_class_id(),
        "unpacker_name": unpacker.name,
        "tags": request.tags,
    }
    return manifest, rows


async def _write_content(
    manifest_id: uuid.UUID,
    key: str,
    unpacked: Unpacked,
    tags: dict[str, str],
    registry: Registry,
    now: datetime,
) -> dict[str, Any]:
    if isinstance(unpacked, UnpackedValue):
        serializer = unpacked.serializer or registry.infer_serializer(type(unpacked.value))
        _require_registered(registry.get_serializer, serializer.name)
        if _cheap_to_serialize(unpacked.value):
            serialized, digest = _serialize(serializer, unpacked.value)
        else:
            serialized, digest = await asyncio.to_thread(_serialize, serializer, unpacked.value)
        storage = _registered_storage(unpacked.storage, registry) or registry.storage_for(
            serialized.data, digest
        )
        config = await storage.write_data(serialized.data, digest, tags)
        serializer_name, serializer_config, kind = serializer.name, serialized.config, "value"
    else:
        storage = _registered_storage(unpacked.storage, registry) or registry.default_storage
        stream_serializer = _stream_serializer(unpacked, registry)
        _require_registered(registry.get_stream_serializer, stream_serializer.name)
        serialized_stream = stream_serializer.serialize_data_stream(unpacked.stream)
        hashing = HashingStream(
            serialized_stream.data_stream,
            serialized_stream.content_type,
            serialized_stream.content_encoding,
        )
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


def _serialize(serializer: Serializer[Any], value: Any) -> tuple[SerializedData, Digest]:
    serialized = serializer.serialize_data(value)
    if not isinstance(serialized.data, bytes):
        raise SerializationError(
            f"Serializer {serializer.name!r} returned {type(serialized.data).__name__}, not "
            f"bytes; serialize_data must return SerializedData(data=<bytes>, ...)."
        )
    digest = digest_bytes(serialized.data, serialized.content_type, serialized.content_encoding)
    return serialized, digest


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
    session: AsyncSession, record: type[Any], rows: Sequence[Mapping[str, Any]]
) -> None:
    """One INSERT statement for the whole batch, executed with every row's parameters.

    The driver batches the rows (asyncpg pipelines them, SQLite loops in C), which keeps
    the cost per row far below one statement per row, without compiling a statement with
    tens of thousands of bind parameters.
    """
    if rows:
        await session.execute(insert(record.__table__), list(rows))
