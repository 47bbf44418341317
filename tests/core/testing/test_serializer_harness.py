"""The serializer harness catches the mistakes it exists to catch."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import pytest

from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)
from labox_prefect.core.testing import (
    EXHAUSTIVE_CHUNK_SIZES,
    check_stream_serializer,
    check_value_serializer,
    iter_chunkings,
    same_value,
)


class StrSerializer(Serializer[Any]):
    """Writes str(); reads digits back as a float (a type change the harness must catch)."""

    name = "test.str@v1"
    content_types = ("text/plain",)

    def __init__(self, *, content_type: str = "text/plain", counter: bool = False) -> None:
        self._content_type = content_type
        self._counter = itertools.count() if counter else None

    def serialize_data(self, value: Any, /) -> SerializedData:
        suffix = f"#{next(self._counter)}" if self._counter else ""
        return SerializedData((str(value) + suffix).encode(), self._content_type)

    def deserialize_data(self, content: SerializedData, /) -> Any:
        text = content.data.decode().split("#")[0]
        return float(text) if text.isdigit() else text


class LineStream(StreamSerializer[str]):
    """Lines of text; ``naive`` readers take each chunk for a line, ``leaky`` ones never close."""

    name = "test.lines@v1"
    content_types = ("text/plain",)

    def __init__(self, *, naive: bool = False, leaky: bool = False) -> None:
        self._naive, self._leaky = naive, leaky

    def serialize_data_stream(self, stream: AsyncIterable[str], /) -> SerializedDataStream:
        async def encode() -> AsyncIterator[bytes]:
            async for line in stream:
                yield line.encode() + b"\n"

        return SerializedDataStream(encode(), "text/plain")

    def deserialize_data_stream(self, content: SerializedDataStream, /) -> AsyncIterator[str]:
        async def decode() -> AsyncIterator[str]:
            pending = b""
            async for chunk in content.data_stream:
                if self._naive:
                    yield chunk.decode().rstrip("\n")
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode()

        async def closing() -> AsyncIterator[str]:
            try:
                async for line in decode():
                    yield line
            finally:
                if not self._leaky:
                    await content.data_stream.aclose()  # type: ignore[attr-defined]

        return closing()


def test_value_check_accepts_a_good_serializer() -> None:
    assert check_value_serializer(StrSerializer(), "abc").data == b"abc"


def test_value_check_catches_nondeterministic_output() -> None:
    with pytest.raises(AssertionError, match="gave different bytes"):
        check_value_serializer(StrSerializer(counter=True), "abc")


def test_value_check_catches_an_undeclared_content_type() -> None:
    with pytest.raises(AssertionError, match="not among its declared content_types"):
        check_value_serializer(StrSerializer(content_type="text/html"), "abc")


def test_value_check_catches_a_changed_type() -> None:
    with pytest.raises(AssertionError, match=r"read back 12.0 after writing 12"):
        check_value_serializer(StrSerializer(), 12)


async def test_stream_check_accepts_a_good_serializer() -> None:
    payload = await check_stream_serializer(LineStream(), ["one", "two", "three"])
    assert payload == b"one\ntwo\nthree\n"


async def test_stream_check_catches_a_reader_that_trusts_chunk_boundaries() -> None:
    with pytest.raises(AssertionError, match="from the bytes cut into chunks of 1 bytes"):
        await check_stream_serializer(LineStream(naive=True), ["one", "two"])


async def test_stream_check_catches_a_reader_that_leaves_its_source_open() -> None:
    with pytest.raises(AssertionError, match="left the byte stream it reads from open"):
        await check_stream_serializer(LineStream(leaky=True), ["one", "two"])


def test_chunkings_cover_every_small_size_and_always_rejoin() -> None:
    payload = bytes(range(200))
    chunkings = list(iter_chunkings(payload, seed=3, cuts=[[5, 500, 17]]))
    labels = [label for label, _ in chunkings]
    for size in range(1, EXHAUSTIVE_CHUNK_SIZES + 1):
        assert f"into chunks of {size} bytes" in labels
    assert "as one chunk" in labels
    assert "at the given positions [5, 17, 98]" in labels  # 500 % 201 == 98
    assert all(b"".join(pieces) == payload for _, pieces in chunkings)
    assert any(b"" in pieces for _, pieces in chunkings), "empty chunks are tried too"


def test_same_value_is_strict_about_types() -> None:
    assert same_value({"a": [1, (2.0, float("nan"))]}, {"a": [1, (2.0, float("nan"))]})
    assert not same_value({"a": 1}, {"a": True})
    assert not same_value([1], [1.0])
    assert not same_value((1,), [1])
