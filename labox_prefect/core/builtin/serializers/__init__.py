"""Built-in serializers: JSON, text, bytes and datetimes, as values and as streams.

Each serializer is exported both as its class and as a ready-made instance: a registry built
from this module's ``__all__`` registers the instances.
"""

from labox_prefect.core.builtin.serializers.bytes import BytesSerializer, BytesStreamSerializer
from labox_prefect.core.builtin.serializers.datetime import DatetimeSerializer
from labox_prefect.core.builtin.serializers.json import (
    JsonLinesStreamSerializer,
    JsonSerializer,
)
from labox_prefect.core.builtin.serializers.text import TextSerializer, TextStreamSerializer

json_serializer = JsonSerializer()
"""JSON for dicts, lists, numbers, booleans and None (and every storable's body)."""
text_serializer = TextSerializer()
"""UTF-8 for str, so stored text stays readable with any tool."""
bytes_serializer = BytesSerializer()
"""bytes and bytearray stored as they are."""
datetime_serializer = DatetimeSerializer()
"""ISO-8601 datetimes that keep their time zone."""
json_lines_stream_serializer = JsonLinesStreamSerializer()
"""Streams of JSON values (and of str) as JSON Lines, read back item by item."""
bytes_stream_serializer = BytesStreamSerializer()
"""Streams of bytes chunks stored as one blob."""
text_stream_serializer = TextStreamSerializer()
"""Pieces of text stored as one UTF-8 blob; only used when named explicitly."""

__all__ = [
    "BytesSerializer",
    "BytesStreamSerializer",
    "DatetimeSerializer",
    "JsonLinesStreamSerializer",
    "JsonSerializer",
    "TextSerializer",
    "TextStreamSerializer",
    "bytes_serializer",
    "bytes_stream_serializer",
    "datetime_serializer",
    "json_lines_stream_serializer",
    "json_serializer",
    "text_serializer",
    "text_stream_serializer",
]
