"""Digests of values, streams and local files: large chunks are hashed on a thread, in order."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labox_prefect.core.digest import (
    HASH_ALGORITHM,
    THREAD_HASH_MIN_BYTES,
    HashingStream,
    LocalFile,
    verify_stream,
)
from labox_prefect.core.errors import ContentCorruptedError, ContentMissingError

BIG = THREAD_HASH_MIN_BYTES + 1


def mixed_chunks() -> list[bytes]:
    """Large chunks (hashed on the thread) between small ones (hashed on the loop)."""
    return [
        b"head",
        bytes(range(256)) * (BIG // 256 + 1),
        b"",
        b"x" * 10,
        b"\x01" * (3 * BIG),
        b"tail",
        b"\x02" * BIG,
    ]


async def stream_of(chunks: list[bytes | bytearray]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk  # type: ignore[misc]


async def test_a_stream_of_large_and_small_chunks_hashes_like_hashlib() -> None:
    chunks = mixed_chunks()
    hashing = HashingStream(stream_of(list(chunks)), "application/octet-stream")
    passed = [chunk async for chunk in hashing]
    assert passed == [chunk for chunk in chunks if chunk]
    digest = hashing.digest()
    assert digest.content_hash == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert digest.content_size == sum(map(len, chunks))


async def test_a_reused_buffer_is_hashed_before_its_producer_changes_it() -> None:
    buffer = bytearray(b"a" * BIG)

    async def reusing() -> AsyncIterator[bytes]:
        yield b"b" * BIG  # pending on the thread while the buffer comes
        yield buffer  # type: ignore[misc]
        buffer[:] = b"c" * BIG
        yield bytes(buffer)

    hashing = HashingStream(reusing(), "application/octet-stream")
    async for _ in hashing:
        pass
    expected = hashlib.sha256(b"b" * BIG + b"a" * BIG + b"c" * BIG).hexdigest()
    assert hashing.digest().content_hash == expected


async def test_a_verified_stream_of_large_chunks_fails_before_its_last_chunk() -> None:
    chunks = mixed_chunks()
    good = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert [c async for c in verify_stream(stream_of(list(chunks)), good, HASH_ALGORITHM, "w")]
    altered = [*chunks[:-1], b"\x03" * BIG]
    seen: list[bytes] = []
    with pytest.raises(ContentCorruptedError, match="w: stored content is corrupted"):
        async for chunk in verify_stream(stream_of(list(altered)), good, HASH_ALGORITHM, "w"):
            seen.append(chunk)
    assert b"\x03" * BIG not in seen


async def test_a_local_file_is_verified_missing_or_corrupted(tmp_path: Path) -> None:
    data = b"\x05" * (3 * BIG)
    path = tmp_path / "blob"
    path.write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    await LocalFile(str(path), good, HASH_ALGORITHM, "here").verify()
    path.write_bytes(data[:-1] + b"\x06")
    with pytest.raises(ContentCorruptedError, match="here: stored content is corrupted"):
        await LocalFile(str(path), good, HASH_ALGORITHM, "here").verify()
    path.unlink()
    with pytest.raises(ContentMissingError, match="is gone"):
        await LocalFile(str(path), good, HASH_ALGORITHM, "here").verify()
