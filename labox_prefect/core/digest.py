"""Content digests: the sha256, size and media type recorded for every stored blob.

Hashes are computed as bytes go by (on save and on load) so that integrity costs one pass
and no extra memory, whatever the size of a stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass

from labox_prefect.core.errors import ContentCorruptedError

HASH_ALGORITHM = "sha256"


@dataclass(frozen=True, slots=True)
class Digest:
    """What is known about a blob once all of its bytes have been seen."""

    content_hash: str
    content_size: int
    content_type: str
    content_encoding: str | None = None
    content_hash_algorithm: str = HASH_ALGORITHM


def digest_bytes(data: bytes, content_type: str, content_encoding: str | None = None) -> Digest:
    """Digest a whole value at once."""
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
        async for chunk in self._stream:
            if chunk:
                self._hash.update(chunk)
                self._size += len(chunk)
                yield chunk
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
    hasher = hashlib.sha256()
    size = 0
    pending: bytes | None = None
    async for chunk in stream:
        if not chunk:
            continue
        hasher.update(chunk)
        size += len(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    _check(algorithm, hasher.hexdigest(), expected_hash, size, where)
    if pending is not None:
        yield pending
