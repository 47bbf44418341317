"""Content digests: the sha256, size and media type recorded for every stored blob.

Hashes are computed as bytes go by (on save and on load) so that integrity costs one pass
and no extra memory, whatever the size of a stream. The large chunks of a stream are hashed
on a worker thread of the stream's own (hashlib lets go of the GIL), in order, while the
event loop passes the chunks on: hashing overlaps with encoding and writing instead of
adding to them.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import threading
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from labox_prefect.core.errors import ContentCorruptedError, ContentMissingError

HASH_ALGORITHM = "sha256"

THREAD_HASH_MIN_BYTES = 256 * 1024
"""Chunks at least this large are hashed on the stream's hashing thread; smaller ones on the
loop (a thread hop costs more than hashing them), unless larger ones are still pending."""
MAX_PENDING_HASH_BYTES = 16 * 1024 * 1024
"""Bytes handed to the hashing thread and not hashed yet: the most a stream holds for it."""
FILE_CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes read at a time when a local file is checked (into one buffer, reused)."""


@dataclass(frozen=True, slots=True)
class Digest:
    """What is known about a blob once all of its bytes have been seen."""

    content_hash: str
    content_size: int
    content_type: str
    content_encoding: str | None = None
    content_hash_algorithm: str = HASH_ALGORITHM


def digest_bytes(
    data: bytes | memoryview, content_type: str, content_encoding: str | None = None
) -> Digest:
    """Digest a whole value at once (bytes, or a memoryview of bytes: format ``"B"``)."""
    return Digest(
        content_hash=hashlib.sha256(data).hexdigest(),
        content_size=len(data),
        content_type=content_type,
        content_encoding=content_encoding,
    )


class HashingStream:
    """Wrap a byte stream, hashing and counting it as it is consumed.

    ``digest()`` is only valid once the stream is exhausted; storages call it after their
    last write, which is exactly when a content-addressed key can be chosen.
    """

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        content_type: str,
        content_encoding: str | None = None,
    ) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False
        self._content_type = content_type
        self._content_encoding = content_encoding

    async def __aiter__(self) -> AsyncIterator[bytes]:
        hasher = _OrderedHasher(self._hash)
        try:
            async for chunk in self._stream:
                if chunk:
                    await hasher.update(chunk)
                    self._size += len(chunk)
                    yield chunk
            await hasher.finish()
        finally:
            hasher.close()
        self._done = True

    def digest(self) -> Digest:
        if not self._done:
            msg = "The stream's digest was asked for before the stream was fully consumed."
            raise RuntimeError(msg)
        return Digest(
            content_hash=self._hash.hexdigest(),
            content_size=self._size,
            content_type=self._content_type,
            content_encoding=self._content_encoding,
        )


def _check(algorithm: str, actual: str, expected: str, size: int, where: str) -> None:
    if algorithm != HASH_ALGORITHM:
        msg = f"{where}: unknown hash algorithm {algorithm!r}; only {HASH_ALGORITHM} is supported."
        raise ContentCorruptedError(msg)
    if actual != expected:
        msg = (
            f"{where}: stored content is corrupted ({HASH_ALGORITHM} {actual[:16]}... of "
            f"{size} bytes, expected {expected[:16]}...). Restore the blob from a backup or "
            f"delete the record; it will not be loaded."
        )
        raise ContentCorruptedError(msg)


def verify_bytes(data: bytes, expected_hash: str, algorithm: str, where: str) -> bytes:
    """Return ``data`` if it hashes to ``expected_hash``, else raise ContentCorruptedError."""
    _check(algorithm, hashlib.sha256(data).hexdigest(), expected_hash, len(data), where)
    return data


async def verify_stream(
    stream: AsyncIterable[bytes], expected_hash: str, algorithm: str, where: str
) -> AsyncGenerator[bytes, None]:
    """Pass a byte stream through, raising ContentCorruptedError at its end on a mismatch.

    A stream cannot be checked before it is read, so the last chunk is held back until the
    hash is confirmed: a consumer never sees the end of a corrupted stream as a success.
    """
    hash_ = hashlib.sha256()
    hasher = _OrderedHasher(hash_)
    size = 0
    pending: bytes | None = None
    try:
        async for chunk in stream:
            if not chunk:
                continue
            await hasher.update(chunk)
            size += len(chunk)
            if pending is not None:
                yield pending
            pending = chunk
        await hasher.finish()
    finally:
        hasher.close()
    _check(algorithm, hash_.hexdigest(), expected_hash, size, where)
    if pending is not None:
        yield pending


class LocalFile:
    """A local file that holds a stored stream's bytes, and the check of its hash.

    A loader hands one to a stream serializer when the storage keeps the blob as a local
    file (`Storage.local_path`): a format that must seek (Parquet) reads the file in place
    instead of spooling a copy of the stream. Reading it that way skips the hash check of
    the byte stream, so the serializer must await `verify` before it yields its last item
    (running it beside its reads overlaps the two); a failed check raises
    ContentCorruptedError, a file gone ContentMissingError.
    """

    def __init__(self, path: str, expected_hash: str, algorithm: str, where: str) -> None:
        self.path = path
        self._expected = expected_hash
        self._algorithm = algorithm
        self._where = where

    async def verify(self) -> None:
        """Hash the file on a worker thread; return if it matches the recorded hash."""
        stop = threading.Event()
        try:
            await asyncio.to_thread(self._verify, stop)
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next chunk
            raise

    def _verify(self, stop: threading.Event) -> None:
        hash_ = hashlib.sha256()
        buffer = bytearray(FILE_CHUNK_SIZE)
        view = memoryview(buffer)
        size = 0
        try:
            with open(self.path, "rb", buffering=0) as file:
                while not stop.is_set() and (count := file.readinto(buffer)):
                    hash_.update(view[:count])
                    size += count
        except FileNotFoundError:
            raise ContentMissingError(
                f"{self._where}: the blob's file {self.path!r} is gone. It was deleted, or the "
                f"storage now points at another root; restore it or delete the record."
            ) from None
        if not stop.is_set():
            _check(self._algorithm, hash_.hexdigest(), self._expected, size, self._where)


class _OrderedHasher:
    """Feeds chunks to one hash, in order, the large ones on a thread of its own."""

    def __init__(self, hash_: hashlib._Hash) -> None:
        self._hash = hash_
        self._executor: ThreadPoolExecutor | None = None
        self._pending: collections.deque[tuple[Future[None], int]] = collections.deque()
        self._pending_bytes = 0

    async def update(self, chunk: bytes) -> None:
        """Hash ``chunk`` after every chunk before it; wait only while too much is pending."""
        if type(chunk) is not bytes:  # a buffer its producer may reuse: hash it now, in order
            await self.finish()
            self._hash.update(chunk)
            return
        if not self._pending and len(chunk) < THREAD_HASH_MIN_BYTES:
            self._hash.update(chunk)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labox-hash")
        self._pending.append((self._executor.submit(self._hash.update, chunk), len(chunk)))
        self._pending_bytes += len(chunk)
        while self._pending_bytes > MAX_PENDING_HASH_BYTES:
            await self._wait_oldest()

    async def finish(self) -> None:
        """Wait until every chunk given so far is hashed."""
        while self._pending:
            await self._wait_oldest()

    def close(self) -> None:
        """Let the thread end once its work is done; never blocks."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _wait_oldest(self) -> None:
        future, size = self._pending.popleft()
        await asyncio.wrap_future(future)
        self._pending_bytes -= size
