"""Raw bytes: values stored as they are, and byte streams passed through in bounded memory."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from labox_prefect.core.builtin.serializers._streams import closing_source
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

BYTES_CONTENT_TYPE = "application/octet-stream"

_BINARY = (bytes, bytearray, memoryview)


class BytesSerializer(Serializer[bytes | bytearray]):
    """bytes and bytearray stored as themselves (read back as bytes), never base64."""

    name = "labox.bytes@v1"
    types = (bytes,)  # a bytearray would read back as bytes: the values tree keeps it
    content_types = (BYTES_CONTENT_TYPE,)

    def serialize_data(self, value: bytes | bytearray, /) -> SerializedData:
        return SerializedData(data=as_bytes(value, self.name), content_type=BYTES_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> bytes:
        return bytes(content.data)


class BytesStreamSerializer(StreamSerializer[bytes | bytearray]):
    """A stream of bytes chunks (a download, a file being produced) stored as one blob.

    Only the concatenation survives: chunks read back are cut wherever the storage cut them.
    """

    name = "labox.bytes-stream@v1"
    types = (bytes, bytearray)
    content_types = (BYTES_CONTENT_TYPE,)

    def serialize_data_stream(
        self, stream: AsyncIterable[bytes | bytearray], /
    ) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=self._encode(stream), content_type=BYTES_CONTENT_TYPE
        )

    def deserialize_data_stream(self, content: SerializedDataStream, /) -> AsyncIterator[bytes]:
        return self._decode(content.data_stream)

    async def _encode(self, stream: AsyncIterable[bytes | bytearray]) -> AsyncIterator[bytes]:
        async with closing_source(stream):
            async for chunk in stream:
                if data := as_bytes(chunk, self.name):
                    yield data

    async def _decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async with closing_source(source):
            async for chunk in source:
                if chunk:
                    yield bytes(chunk)


def as_bytes(value: object, serializer_name: str) -> bytes:
    """``value`` as bytes if it is binary, else a SerializationError naming its type."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, _BINARY):
        return bytes(value)
    raise SerializationError(
        f"{serializer_name} writes bytes or bytearray, not {type(value).__name__}; encode the "
        f"value first (e.g. str.encode()) or pick a serializer for {type(value).__name__}."
    )
