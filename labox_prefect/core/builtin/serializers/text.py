"""UTF-8 text: str values, and text streams whose concatenation is what matters."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator

from labox_prefect.core.builtin.serializers._streams import closing_source
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


class TextSerializer(Serializer[str]):
    """A str as UTF-8 bytes, readable by any tool that opens the stored file."""

    name = "labox.text@v1"
    types = (str,)
    content_types = (TEXT_CONTENT_TYPE,)

    def serialize_data(self, value: str, /) -> SerializedData:
        return SerializedData(data=encode_text(value, self.name), content_type=TEXT_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> str:
        try:
            return str(content.data, "utf-8")
        except UnicodeDecodeError as error:
            raise _undecodable(self.name, error) from None


class TextStreamSerializer(StreamSerializer[str]):
    """Pieces of text (a log, a generated document) as one UTF-8 byte stream.

    Only the concatenation survives: the pieces read back are cut wherever the storage cut
    the bytes. It is therefore inferred for no type; name it explicitly. For a stream of
    separate strings use the JSON Lines stream serializer, which keeps every item.
    """

    name = "labox.text-stream@v1"
    types = ()
    content_types = (TEXT_CONTENT_TYPE,)

    def serialize_data_stream(self, stream: AsyncIterable[str], /) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=self._encode(stream), content_type=TEXT_CONTENT_TYPE
        )

    def deserialize_data_stream(self, content: SerializedDataStream, /) -> AsyncIterator[str]:
        return self._decode(content.data_stream)

    async def _encode(self, stream: AsyncIterable[str]) -> AsyncIterator[bytes]:
        async with closing_source(stream):
            async for piece in stream:
                if data := encode_text(piece, self.name, "stream piece"):
                    yield data

    async def _decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[str]:
        # The incremental decoder keeps a character cut between two chunks until it is whole.
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            async with closing_source(source):
                async for chunk in source:
                    if text := decoder.decode(chunk):
                        yield text
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise _undecodable(self.name, error) from None


def encode_text(value: str, serializer_name: str, where: str = "value") -> bytes:
    """UTF-8 bytes of ``value``; a non-str or an unpaired surrogate is a SerializationError.

    ``where`` names the value in the message (``value``, ``stream piece``).
    """
    if type(value) is not str:
        raise SerializationError(
            f"{serializer_name} writes str, not {type(value).__name__} (a str subclass would "
            f"come back as str); pick a serializer for {type(value).__name__} (the values "
            f"serializer keeps Enums) or convert the value to str."
        )
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SerializationError(
            unpaired_surrogate_message(where, f" at position {error.start}")
        ) from None


def unpaired_surrogate_message(where: str, position: str = "") -> str:
    """The refusal of the str at ``where`` (``value['s']``), which has no UTF-8 encoding."""
    return (
        f"Cannot save {where} (a str): it holds an unpaired surrogate{position} (such as "
        f"'\\ud800'), which is not valid UTF-8; fix the text, or save it as bytes "
        f"(text.encode('utf-8', 'surrogatepass') keeps it exactly)."
    )


def _undecodable(serializer_name: str, error: UnicodeDecodeError) -> SerializationError:
    return SerializationError(
        f"{serializer_name} cannot read this content: it is not valid UTF-8 ({error.reason} "
        f"at byte {error.start}). The content is corrupted or truncated."
    )
