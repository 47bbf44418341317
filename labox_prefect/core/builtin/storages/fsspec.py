"""One content-addressed storage over any fsspec filesystem: local files, memory, S3.

Every blob lives at ``<root>/<h[:2]>/<h>`` where ``h`` is the sha256 of its bytes, so the
key alone proves nothing about the bytes (the loader verifies the hash) but the *shape* of a
key is checked strictly before any path is built: a stored config can never point outside
the root, whatever a database row says.

Writes never leave a partial blob under a final key. Filesystems write a temporary file
and rename it; object stores put a value in one request, and upload a stream to a temporary
key that is copied to the final key server-side once complete.

Writes heal: when a value's key already exists on a filesystem, the stored bytes are read
and compared with the value's, a chunk at a time (a read costs less than a write, and the
comparison holds no second copy of the value); if they differ (a damaged
or truncated blob) the blob is rewritten, else only its modification time is refreshed.
Streams and object-store puts always replace what is there. Either way a save of content
already stored repairs it, and leaves it young, which is what keeps a blob a save just
reused out of garbage collection's reach for the grace period.

Maintenance lives beside the blobs: ``.owners/`` holds one small JSON object per database
that wrote here (its label, no credentials), ``.tmp/`` the writes in progress.

fsspec's calls are blocking (s3fs runs them on fsspec's own IO loop), so each one runs in a
worker thread: the storage can be used from any event loop or thread over its life.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import posixpath
import re
import reprlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from fsspec import AbstractFileSystem

from labox_prefect.core.component import check_component_name
from labox_prefect.core.digest import HASH_ALGORITHM, Digest
from labox_prefect.core.errors import ContentMissingError, StorageKeyError, StorageUnavailableError
from labox_prefect.core.storage import Storage, StorageConfig, StoredBlob, TagMap

logger = logging.getLogger(__name__)

READ_CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes per chunk of a stream read: few thread hops per GiB, little memory per stream."""

WRITE_BUFFER_SIZE = 4 * 1024 * 1024
"""Small stream chunks are gathered up to this size before one write in a worker thread."""

COMPARE_CHUNK_SIZE = 1024 * 1024
"""Bytes of a stored blob read at a time when a repeated write compares it (one buffer)."""

WRITE_BLOCK_SIZE = 8 * 1024 * 1024
"""Part size of streamed uploads to object stores (S3 needs at least 5 MiB per part)."""

TEMP_DIR = ".tmp"
"""Folder under the root for writes in progress; never a valid key, so never listed."""

OWNERS_DIR = ".owners"
"""Folder under the root with one ``<sha256 of the label>.json`` per database writing here."""

_HASH = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"(?P<folder>[0-9a-f]{2})/(?P<hash>[0-9a-f]{64})")
_FOLDER = re.compile(r"[0-9a-f]{2}")


def key_for_hash(content_hash: str) -> str:
    """The key of a blob: its sha256 under a folder named by the hash's first two digits."""
    if not _HASH.fullmatch(content_hash):
        msg = (
            f"{content_hash!r} is not a lowercase hex {HASH_ALGORITHM} digest; content-addressed "
            f"storages key blobs by the digest that labox_prefect.core.digest computes."
        )
        raise ValueError(msg)
    return f"{content_hash[:2]}/{content_hash}"


class FsspecStorage(Storage):
    """A content-addressed storage under ``root`` of an fsspec filesystem.

    ``object_store`` says how writes stay atomic: True for stores where one put is atomic
    and there are no folders to create (S3); False for filesystems, where a temporary file
    is renamed into place.

    Tags are not attached to blobs: one blob serves every record whose content has the same
    bytes, so tags belong to the records that point at it.
    """

    writes_views = True

    def __init__(
        self,
        fs: AbstractFileSystem,
        root: str,
        *,
        name: str,
        object_store: bool,
    ) -> None:
        self.name = check_component_name(name, self)
        self._fs = fs
        self._root = root.rstrip("/")
        self._object_store = object_store
        self._unavailable_errors: tuple[type[BaseException], ...] = ()

    @property
    def root(self) -> str:
        """Where this storage keeps its blobs, as its filesystem spells the path."""
        return self._root

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem underneath (for maintenance tools and tests)."""
        return self._fs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} at {self._root!r}>"

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn the filesystem's "cannot connect" errors into StorageUnavailableError."""
        try:
            yield
        except self._unavailable_errors as error:
            raise StorageUnavailableError(
                f"{self.name}: the storage at {self._root!r} cannot be reached "
                f"({type(error).__name__}: {error}). Check that the server runs and its "
                f"endpoint and network; a save that fails here records nothing of its object."
            ) from error

    # --- the storage contract -------------------------------------------------------------

    async def write_data(
        self, data: bytes | memoryview, digest: Digest, tags: TagMap, /
    ) -> StorageConfig:
        with self._reachable():
            key = key_for_hash(digest.content_hash)
            await asyncio.to_thread(self._write_bytes, data, self._path(key))
            return {"key": key}

    async def read_data(self, config: StorageConfig, /) -> bytes:
        with self._reachable():
            key = self.key_of(config)
            try:
                data: bytes = await asyncio.to_thread(self._fs.cat_file, self._path(key))
            except FileNotFoundError:
                raise self._missing(key) from None
            return data

    async def write_data_stream(
        self,
        data_stream: AsyncIterable[bytes],
        get_digest: Callable[[], Digest],
        tags: TagMap,
        /,
    ) -> StorageConfig:
        with self._reachable():
            temp = f"{self._root}/{TEMP_DIR}/{uuid.uuid4().hex}"
            file: IO[bytes] = await asyncio.to_thread(
                self._fs.open, temp, "wb", block_size=WRITE_BLOCK_SIZE
            )
            try:
                try:
                    await _copy_stream(data_stream, file)
                finally:
                    await asyncio.to_thread(file.close)
                key = key_for_hash(get_digest().content_hash)
                await asyncio.to_thread(self._move_into_place, temp, self._path(key))
            except BaseException:
                await asyncio.to_thread(self._discard_temp, temp)
                raise
            return {"key": key}

    async def read_data_stream(self, config: StorageConfig, /) -> AsyncIterator[bytes]:
        with self._reachable():
            key = self.key_of(config)
            try:
                file: IO[bytes] = await asyncio.to_thread(
                    self._fs.open, self._path(key), "rb", block_size=READ_CHUNK_SIZE
                )
            except FileNotFoundError:
                raise self._missing(key) from None
            try:
                while chunk := await asyncio.to_thread(file.read, READ_CHUNK_SIZE):
                    yield chunk
            finally:
                await asyncio.to_thread(file.close)

    async def delete_data(self, config: StorageConfig, /) -> None:
        with self._reachable():
            key = self.key_of(config)
            await asyncio.to_thread(self._remove_quietly, self._path(key))

    async def iter_stored(self) -> AsyncIterator[StorageConfig]:
        async for blob in self.iter_stored_blobs():
            yield blob.config

    # --- maintenance ----------------------------------------------------------------------

    async def iter_stored_blobs(self) -> AsyncIterator[StoredBlob]:
        with self._reachable():
            # One folder at a time: memory stays bounded by the largest folder, not the store.
            for folder, _ in await asyncio.to_thread(self._list, self._root):
                if not _FOLDER.fullmatch(folder):
                    continue  # .tmp, .owners, or files someone else put under the root
                for name, info in await asyncio.to_thread(self._list, f"{self._root}/{folder}"):
                    key = f"{folder}/{name}"
                    if _is_key(key):
                        yield StoredBlob({"key": key}, _modified(info))

    async def blob_modified(self, config: StorageConfig, /) -> datetime | None:
        with self._reachable():
            path = self._path(self.key_of(config))
            try:
                info = await asyncio.to_thread(self._fs.info, path)
            except FileNotFoundError:
                return None
            return _modified(info)

    async def add_owner(self, database: str, /) -> None:
        with self._reachable():
            path = self._owner_path(database)
            if await asyncio.to_thread(self._fs.exists, path):
                return
            body = json.dumps({"database": database}, sort_keys=True).encode("utf-8")
            await asyncio.to_thread(self._write_bytes, body, path)

    async def remove_owner(self, database: str, /) -> None:
        with self._reachable():
            await asyncio.to_thread(self._remove_quietly, self._owner_path(database))

    async def list_owners(self) -> list[str]:
        with self._reachable():
            owners: list[str] = []
            for name, _ in await asyncio.to_thread(self._list, f"{self._root}/{OWNERS_DIR}"):
                if not name.endswith(".json"):
                    continue
                try:
                    raw = await asyncio.to_thread(
                        self._fs.cat_file, f"{self._root}/{OWNERS_DIR}/{name}"
                    )
                    database = json.loads(raw)["database"]
                except FileNotFoundError:
                    continue
                except (ValueError, KeyError, TypeError):
                    database = f"<unreadable owner marker {name}>"  # unknown: counts as a stranger
                owners.append(str(database))
            return sorted(owners)

    async def collect_temporary(self, older_than: datetime, *, dry_run: bool) -> list[str]:
        with self._reachable():
            removed: list[str] = []
            for name, info in await asyncio.to_thread(self._list, f"{self._root}/{TEMP_DIR}"):
                modified = _modified(info)
                if modified is None or modified >= older_than:
                    continue  # a write may still be in progress
                if not dry_run:
                    await asyncio.to_thread(self._remove_quietly, f"{self._root}/{TEMP_DIR}/{name}")
                removed.append(f"{TEMP_DIR}/{name}")
            return removed

    # --- keys and paths -------------------------------------------------------------------

    def key_of(self, config: StorageConfig) -> str:
        """The key in a stored config, if the config is exactly one this storage writes.

        Anything else (another shape, extra fields such as a bucket, a path with ``..``, an
        absolute path or a URL) raises StorageKeyError before a path is ever built.
        """
        key = config.get("key") if isinstance(config, dict) and set(config) == {"key"} else None
        if not isinstance(key, str) or not _is_key(key):
            msg = (
                f"{self.name}: refusing the storage config {reprlib.repr(config)}; this "
                f"storage only reads configs like {{'key': 'ab/ab…'}} (a {HASH_ALGORITHM} "
                f"digest under its first two digits) inside {self._root!r}. The record was "
                f"not written by this storage, or was altered."
            )
            raise StorageKeyError(msg)
        return key

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _owner_path(self, database: str) -> str:
        digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:32]
        return f"{self._root}/{OWNERS_DIR}/{digest}.json"

    def _missing(self, key: str) -> ContentMissingError:
        return ContentMissingError(
            f"{self.name}: no blob at key {key!r} under {self._root!r}. It was deleted, or "
            f"the storage now points at another root; restore it or delete the record."
        )

    # --- blocking filesystem work (always run in a worker thread) --------------------------

    def _write_bytes(self, data: bytes | memoryview, path: str) -> None:
        if self._object_store:
            # One put, also over a present key: the object appears whole or not at all, a
            # damaged one is replaced, and its age is refreshed (a GET to compare costs as
            # much as the put). Object-store clients are given bytes.
            self._fs.pipe_file(path, bytes(data) if isinstance(data, memoryview) else data)
            return
        if self._intact(path, data) and self._refresh_age(path):
            return  # the same bytes are there: keep them, now young again for gc's grace
        temp = f"{self._root}/{TEMP_DIR}/{uuid.uuid4().hex}"
        try:
            self._fs.pipe_file(temp, data)
            self._move_into_place(temp, path)
        except BaseException:
            self._discard_temp(temp)
            raise

    def _intact(self, path: str, data: bytes | memoryview) -> bool:
        """Whether ``path`` holds exactly ``data`` (reading costs less than writing).

        Read a chunk at a time into one buffer: never a second copy of a large value.
        """
        expected = memoryview(data)
        try:
            file: IO[bytes] = self._fs.open(path, "rb")
        except FileNotFoundError:
            return False
        buffer = bytearray(COMPARE_CHUNK_SIZE)
        offset = 0
        with file:
            while count := file.readinto(buffer):  # type: ignore[attr-defined]
                # bytearray against a buffer compares with memcmp (a memoryview against a
                # memoryview would compare byte by byte in Python's loop).
                present = buffer if count == len(buffer) else buffer[:count]
                if present != expected[offset : offset + count]:
                    return False
                offset += count
        return offset == len(expected)

    def _refresh_age(self, path: str) -> bool:
        """Mark a reused blob as just written; False if this filesystem cannot."""
        try:
            self._fs.touch(path, truncate=False)
        except NotImplementedError:
            return False
        return True

    def _move_into_place(self, temp: str, path: str) -> None:
        """Put a complete temporary blob under its final key, replacing what is there."""
        if self._object_store:
            self._fs.cp_file(temp, path)  # a server-side copy: the object appears whole
            self._fs.rm_file(temp)
        else:
            self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self._fs.mv(temp, path)  # a rename within one filesystem: atomic, replaces

    def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(path)

    def _discard_temp(self, temp: str) -> None:
        """Remove a failed write's temporary blob without hiding the failure that caused it."""
        try:
            self._remove_quietly(temp)
        except Exception:
            logger.warning("%s: could not remove the temporary blob %r", self.name, temp)

    def _list(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        """(base name, fsspec info) of each entry of a folder; empty if it does not exist.

        An object store may list an emptied folder as an entry of itself (SeaweedFS keeps
        the folder ``.tmp/`` once its last object is gone, and s3fs lists it under its own
        name): that entry is not one of its contents.
        """
        try:
            entries: Iterable[Any] = self._fs.ls(path, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        folder = path.rstrip("/")
        named = [
            (str(entry["name"]).rstrip("/"), entry) for entry in entries if isinstance(entry, dict)
        ]
        return [(posixpath.basename(name), entry) for name, entry in named if name != folder]


def _modified(info: dict[str, Any]) -> datetime | None:
    """The last write time in an fsspec info dict (local, memory and S3 spell it apart)."""
    for field in ("mtime", "LastModified", "created"):
        value = info.get(field)
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    return None


def _is_key(key: str) -> bool:
    match = _KEY.fullmatch(key)
    return match is not None and match["hash"].startswith(match["folder"])


async def _copy_stream(stream: AsyncIterable[bytes], file: IO[bytes]) -> None:
    """Write a stream to a blocking file, in worker threads, a few MiB at a time.

    One write is in flight while the next few MiB are gathered: the stream's producer
    (encoding, hashing) and the file's writes overlap instead of waiting on each other.
    """
    pending: list[bytes] = []
    pending_size = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in stream:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= WRITE_BUFFER_SIZE:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(_write_all, file, pending))
                pending, pending_size = [], 0
        if writing is not None:
            await writing
        if pending:
            await asyncio.to_thread(_write_all, file, pending)
    finally:
        if writing is not None and not writing.done():
            await asyncio.wait([writing])  # the caller closes the file: never under a write


def _write_all(file: IO[bytes], chunks: list[bytes]) -> None:
    for chunk in chunks:
        file.write(chunk)
