"""A conformance harness for storages: run it against your own storage before you ship it.

Each check is a coroutine that raises AssertionError (with a message saying what the storage
did wrong) or an unexpected exception, and returns None when the storage behaves. Every
check writes content of its own, so all of them may run against one storage, in any order.
The harness does not depend on pytest::

    from labox_prefect.core.testing import STORAGE_CHECKS

    @pytest.mark.parametrize("check", STORAGE_CHECKS)
    async def test_my_storage(check):
        await STORAGE_CHECKS[check](MyStorage(), tamper=my_tamper)

A *tamper* callback changes the stored bytes a config points at behind the storage's back
(edit the file, overwrite the object, or edit a config that holds the bytes itself); the
tampering check shows that the loader's hash verification then refuses them. Checks that do
not apply to a storage should be skipped by the caller, explicitly, with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from labox_prefect.core.digest import (
    HASH_ALGORITHM,
    HashingStream,
    digest_bytes,
    verify_bytes,
    verify_stream,
)
from labox_prefect.core.errors import (
    ContentCorruptedError,
    ContentMissingError,
    StorageKeyError,
)
from labox_prefect.core.storage import Storage, StorageConfig

E = TypeVar("E", bound=BaseException)

Tamper = Callable[[StorageConfig], Awaitable[None]]
"""Changes the bytes stored for a config without going through the storage."""


class StorageCheck(Protocol):
    """The shape of every check in STORAGE_CHECKS."""

    def __call__(self, storage: Storage, *, tamper: Tamper | None = None) -> Awaitable[None]: ...


MAX_READ_CHUNK_SIZE = 8 * 1024 * 1024
"""Largest chunk a storage may yield on a stream read: reads must run in bounded memory."""

LARGE_STREAM_SIZE = 10 * 1024 * 1024 + 123
"""Bytes in the large-stream check: several read chunks and several S3 upload parts."""

LARGE_STREAM_CHUNK_SIZE = 64 * 1024
"""Chunk size the large stream is written in, so a write spans well over a hundred chunks."""

JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"

PATH_ESCAPES: tuple[StorageConfig, ...] = (
    {},
    {"key": ""},
    {"key": None},
    {"key": 42},
    {"key": ["ab", "cd"]},
    {"key": "../../etc/passwd"},
    {"key": "/etc/passwd"},
    {"key": "ab/../../../etc/passwd"},
    {"key": "ab/" + "ab" * 32 + "/../../.."},
    {"key": "../ab/" + "ab" * 32},
    {"key": "/ab/" + "ab" * 32},
    {"key": "ab\\" + "ab" * 32},
    {"key": "ab/" + "ab" * 32 + "\n"},
    {"key": "AB/" + "AB" * 32},
    {"key": "cd/" + "ab" * 32},
    {"key": "ab" * 32},
    {"key": "file:///etc/passwd"},
    {"key": "s3://another-bucket/ab/" + "ab" * 32},
    {"key": "memory://labox/ab/" + "ab" * 32},
    {"key": "http://169.254.169.254/latest/meta-data/"},
    {"path": "/etc/passwd"},
    {"bucket": "another-bucket", "key": "ab/" + "ab" * 32},
    {"text": None},
    {"text": 7},
)
"""Configs no storage may follow: each must raise StorageKeyError on read and on delete."""


# --- the checks ---------------------------------------------------------------------------


async def check_value_round_trip(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A value comes back byte for byte, whole and streamed; its config is plain JSON."""
    data = _json_content(300)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {"check": "value"})
    _require(
        json.loads(json.dumps(config)) == config,
        f"{storage!r} returned a config that does not survive JSON: {config!r}",
    )
    _require(await storage.read_data(config) == data, f"{storage!r} read back other bytes")
    streamed = await _read_all(storage, config)
    _require(streamed == data, f"{storage!r} streamed back other bytes than it stored")


async def check_stream_round_trip(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A small stream written in many tiny chunks comes back byte for byte."""
    data = _json_content(200)
    stream = HashingStream(_chunked(data, 7), JSON_TYPE)
    config = await storage.write_data_stream(stream, stream.digest, {"check": "stream"})
    _require(await storage.read_data(config) == data, f"{storage!r} read back other bytes")
    _require(await _read_all(storage, config) == data, f"{storage!r} streamed other bytes")


async def check_large_stream_round_trip(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A multi-MiB stream round-trips in bounded chunks."""
    data = _binary_content(LARGE_STREAM_SIZE)
    stream = HashingStream(_chunked(data, LARGE_STREAM_CHUNK_SIZE), BINARY_TYPE)
    config = await storage.write_data_stream(stream, stream.digest, {"check": "large"})
    hasher = hashlib.sha256()
    sizes: list[int] = []
    async for chunk in storage.read_data_stream(config):
        hasher.update(chunk)
        sizes.append(len(chunk))
    _require(sum(sizes) == len(data), f"{storage!r} streamed {sum(sizes)} of {len(data)} bytes")
    _require(
        hasher.hexdigest() == hashlib.sha256(data).hexdigest(),
        f"{storage!r} streamed back other bytes than it stored",
    )
    _require(
        max(sizes) <= MAX_READ_CHUNK_SIZE,
        f"{storage!r} yielded a chunk of {max(sizes)} bytes; stream reads must yield chunks "
        f"of at most {MAX_READ_CHUNK_SIZE} bytes so memory stays bounded",
    )


async def check_empty_stream(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """An empty stream (including one of empty chunks) is stored and read back empty."""
    stream = HashingStream(_chunked(b"", 1, empty_chunks=3), JSON_TYPE)
    config = await storage.write_data_stream(stream, stream.digest, {"check": "empty"})
    _require(await storage.read_data(config) == b"", f"{storage!r} read bytes from nothing")
    _require(await _read_all(storage, config) == b"", f"{storage!r} streamed bytes from nothing")


async def check_missing(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A config whose blob is gone raises ContentMissingError naming the storage and key."""
    data = _json_content(50)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {})
    await storage.delete_data(config)
    reads: dict[str, Callable[[StorageConfig], Awaitable[bytes]]] = {
        "read_data": storage.read_data,
        "read_data_stream": lambda config: _read_all(storage, config),
    }
    for method, read in reads.items():
        error = await _raises(
            ContentMissingError, read(config), f"{storage!r} {method} of a deleted blob"
        )
        message = str(error)
        _require(
            storage.name in message and all(str(v) in message for v in config.values()),
            f"{storage!r}: the missing-content error should name the storage and the key: "
            f"{message!r}",
        )


async def check_overwrite(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Writing content that is already stored, as a value or a stream, is not an error."""
    data = _json_content(120)
    digest = digest_bytes(data, JSON_TYPE)
    first = await storage.write_data(data, digest, {"write": "first"})
    again = await storage.write_data(data, digest, {"write": "second"})
    stream = HashingStream(_chunked(data, 16), JSON_TYPE)
    streamed = await storage.write_data_stream(stream, stream.digest, {"write": "stream"})
    _require(
        first == again == streamed,
        f"{storage!r} gave different configs for identical content: {first}, {again}, {streamed}",
    )
    _require(await storage.read_data(first) == data, f"{storage!r} lost overwritten content")


async def check_dedup(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Identical content is stored once (one listed blob), and a second write heals it.

    With a tamper callback, the blob is altered between the writes: the second write must
    leave the right bytes under the key (a storage that skipped it on ``exists`` would keep
    the damage, and every later record of that content would point at it).
    """
    data = _json_content(80)
    digest = digest_bytes(data, JSON_TYPE)
    config = await storage.write_data(data, digest, {})
    if tamper is not None:
        await tamper(config)
    _require(await storage.write_data(data, digest, {}) == config, f"{storage!r} did not dedup")
    listed = [stored async for stored in storage.iter_stored() if stored == config]
    _require(len(listed) == 1, f"{storage!r} lists identical content {len(listed)} times")
    if tamper is not None:
        _require(
            await storage.read_data(config) == data,
            f"{storage!r} kept a damaged blob when the same content was written again; "
            f"rewrite present content (temporary name, then rename or put) so it heals",
        )


async def check_tampering(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Bytes changed behind the storage's back are refused by hash verification on read."""
    if tamper is None:
        raise ValueError("check_tampering needs a tamper callback for this storage.")
    data = _json_content(90)
    digest = digest_bytes(data, JSON_TYPE)
    config = await storage.write_data(data, digest, {})
    await tamper(config)
    where = f"{storage.name} {config}"
    await _raises(
        ContentCorruptedError,
        _verified_value(storage, config, digest.content_hash, where),
        f"{storage!r}: reading tampered bytes through verify_bytes",
    )
    await _raises(
        ContentCorruptedError,
        _verified_stream(storage, config, digest.content_hash, where),
        f"{storage!r}: reading tampered bytes through verify_stream",
    )


async def check_path_escapes(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Configs naming anything but this storage's own blobs raise StorageKeyError.

    Besides PATH_ESCAPES, a real config with an extra bucket or endpoint field is refused:
    a record can never redirect a storage elsewhere.
    """
    data = _json_content(40)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {})
    redirected = (
        {**config, "bucket": "another-bucket"},
        {**config, "endpoint_url": "http://127.0.0.1:1"},
    )
    for evil in (*PATH_ESCAPES, *redirected):
        what = f"{storage!r} given the config {evil!r}"
        await _raises(StorageKeyError, storage.read_data(evil), f"{what} on read_data")
        await _raises(StorageKeyError, _read_all(storage, evil), f"{what} on read_data_stream")
        await _raises(StorageKeyError, storage.delete_data(evil), f"{what} on delete_data")
    _require(await storage.read_data(config) == data, f"{storage!r} lost content")


async def check_local_path(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A local file named for a blob holds exactly its bytes; refused configs stay refused.

    Storages that keep no local files (``local_path`` gives None) pass as they are.
    """
    data = _json_content(80)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {})
    path = storage.local_path(config)
    if path is None:
        return
    held = await asyncio.to_thread(Path(path).read_bytes)
    _require(held == data, f"{storage!r} names a local file {path!r} of other bytes")
    for evil in PATH_ESCAPES:
        try:
            storage.local_path(evil)
        except StorageKeyError:
            continue
        raise AssertionError(f"{storage!r} named a local file for the config {evil!r}")


async def check_delete(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A deleted blob is gone from reads and listings; deleting it again is no error."""
    data = _json_content(60)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {})
    await storage.delete_data(config)
    await storage.delete_data(config)
    await _raises(ContentMissingError, storage.read_data(config), f"{storage!r} after delete")
    listed = [stored async for stored in storage.iter_stored() if stored == config]
    _require(not listed, f"{storage!r} still lists a deleted blob")


async def check_iter_stored(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Every written blob is listed exactly once, by the config its write returned."""
    written = []
    for size in (10, 20, 30):
        data = _json_content(size)
        written.append(await storage.write_data(data, digest_bytes(data, JSON_TYPE), {}))
    stream = HashingStream(_chunked(_json_content(40), 5), JSON_TYPE)
    written.append(await storage.write_data_stream(stream, stream.digest, {}))
    listed = [stored async for stored in storage.iter_stored()]
    for config in written:
        count = listed.count(config)
        _require(count == 1, f"{storage!r} lists {config} {count} times instead of once")


async def check_failed_stream(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A stream that fails midway raises its own error and leaves no blob behind."""
    before = [stored async for stored in storage.iter_stored()]
    failure = _StreamFailure("the source of the stream broke")
    stream = HashingStream(_failing(_binary_content(LARGE_STREAM_SIZE), failure), BINARY_TYPE)
    error = await _raises(
        _StreamFailure,
        storage.write_data_stream(stream, stream.digest, {}),
        f"{storage!r} writing a stream that fails",
    )
    _require(error is failure, f"{storage!r} replaced the stream's own error with {error!r}")
    after = [stored async for stored in storage.iter_stored()]
    _require(after == before, f"{storage!r} kept a blob of a failed stream: {after} != {before}")


async def check_owners(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """Recorded owners are listed back, once each (a storage may decline to record any)."""
    before = await storage.list_owners()
    if before is None:
        return  # it records no owner: garbage collection never deletes from it
    databases = ["sqlite:///tmp/check-a.db", "postgresql://db.example:5432/check-b"]
    for database in [*databases, databases[0]]:
        await storage.add_owner(database)
    after = await storage.list_owners()
    _require(
        after is not None and sorted(after) == sorted({*before, *databases}),
        f"{storage!r} listed owners {after} after recording {databases} over {before}",
    )


async def check_blob_ages(storage: Storage, *, tamper: Tamper | None = None) -> None:
    """A blob is listed once with its last write time, which is timezone-aware when known."""
    data = _json_content(90)
    config = await storage.write_data(data, digest_bytes(data, JSON_TYPE), {})
    listed = [blob async for blob in storage.iter_stored_blobs() if blob.config == config]
    _require(len(listed) == 1, f"{storage!r} lists a new blob {len(listed)} times with its age")
    modified = listed[0].modified
    checked = await storage.blob_modified(config)
    for moment in (modified, checked):
        _require(
            moment is None or moment.tzinfo is not None,
            f"{storage!r} gave a naive modification time {moment!r}; give it a timezone (UTC)",
        )


STORAGE_CHECKS: Mapping[str, StorageCheck] = {
    "value_round_trip": check_value_round_trip,
    "stream_round_trip": check_stream_round_trip,
    "large_stream_round_trip": check_large_stream_round_trip,
    "empty_stream": check_empty_stream,
    "missing": check_missing,
    "overwrite": check_overwrite,
    "dedup": check_dedup,
    "tampering": check_tampering,
    "path_escapes": check_path_escapes,
    "local_path": check_local_path,
    "delete": check_delete,
    "iter_stored": check_iter_stored,
    "failed_stream": check_failed_stream,
    "owners": check_owners,
    "blob_ages": check_blob_ages,
}
"""Every check by name, for parametrized tests."""


async def run_storage_checks(
    storage: Storage,
    *,
    tamper: Tamper | None,
    skip: Mapping[str, str] | None = None,
) -> list[str]:
    """Run every check except those in ``skip`` (name -> why it does not apply).

    Returns the names of the checks that ran. Skipping needs a reason, and the tampering
    check needs a tamper callback unless it is skipped.
    """
    skip = dict(skip or {})
    unknown = sorted(set(skip) - set(STORAGE_CHECKS))
    if unknown:
        raise ValueError(f"Unknown storage checks {unknown}; known: {sorted(STORAGE_CHECKS)}.")
    blank = sorted(name for name, reason in skip.items() if not reason.strip())
    if blank:
        raise ValueError(f"Say why the checks {blank} do not apply to this storage.")
    ran = []
    for name, check in STORAGE_CHECKS.items():
        if name not in skip:
            await check(storage, tamper=tamper)
            ran.append(name)
    return ran


# --- helpers ------------------------------------------------------------------------------


class _StreamFailure(Exception):
    """The error a failing source stream raises, so the check can recognise it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def _raises(expected: type[E], action: Awaitable[object], what: str) -> E:
    try:
        await action
    except expected as error:
        return error
    raise AssertionError(f"{what}: expected {expected.__name__}, nothing was raised")


def _json_content(size: int) -> bytes:
    """Distinct JSON bytes of about ``size`` bytes, acceptable to every storage."""
    body = {"id": uuid.uuid4().hex, "text": "é" + "x" * size, "numbers": list(range(5))}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _binary_content(size: int) -> bytes:
    """Distinct pseudo-random bytes (incompressible, so no server can shortcut them)."""
    return uuid.uuid4().bytes + random.Random(uuid.uuid4().int).randbytes(size - 16)


async def _chunked(data: bytes, size: int, *, empty_chunks: int = 0) -> AsyncIterator[bytes]:
    for _ in range(empty_chunks):
        yield b""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _failing(data: bytes, failure: Exception) -> AsyncIterator[bytes]:
    async for chunk in _chunked(data[: len(data) * 9 // 10], LARGE_STREAM_CHUNK_SIZE):
        yield chunk
    raise failure


async def _read_all(storage: Storage, config: StorageConfig) -> bytes:
    return b"".join([chunk async for chunk in storage.read_data_stream(config)])


async def _verified_value(storage: Storage, config: StorageConfig, hash_: str, where: str) -> None:
    verify_bytes(await storage.read_data(config), hash_, HASH_ALGORITHM, where)


async def _verified_stream(storage: Storage, config: StorageConfig, hash_: str, where: str) -> None:
    stream = verify_stream(storage.read_data_stream(config), hash_, HASH_ALGORITHM, where)
    async for _ in stream:
        pass


__all__ = [
    "LARGE_STREAM_SIZE",
    "MAX_READ_CHUNK_SIZE",
    "PATH_ESCAPES",
    "STORAGE_CHECKS",
    "StorageCheck",
    "Tamper",
    "check_dedup",
    "check_delete",
    "check_empty_stream",
    "check_failed_stream",
    "check_iter_stored",
    "check_large_stream_round_trip",
    "check_local_path",
    "check_missing",
    "check_overwrite",
    "check_path_escapes",
    "check_stream_round_trip",
    "check_tampering",
    "check_value_round_trip",
    "run_storage_checks",
]
