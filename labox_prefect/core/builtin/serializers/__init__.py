"""Built-in serializers: typed values, JSON, text, bytes and datetimes, values and streams.

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
from labox_prefect.core.builtin.serializers.tree import EncodedTree
from labox_prefect.core.builtin.serializers.values import (
    ValuesLinesStreamSerializer,
    ValuesSerializer,
    ValueTreeSerializer,
)

values_serializer = ValuesSerializer()
"""Plain values (dicts, lists, tuples, sets, numbers, dates, ..., the user's dataclasses,
models, Enums and NamedTuples) as a typed JSON tree that reads back the same types."""
value_tree_serializer = ValueTreeSerializer()
"""Typed JSON trees encoded by unpackers: the bodies of storables (v2 formats)."""
json_serializer = JsonSerializer()
"""Plain JSON, only where named (the bodies of v1 records); values use values_serializer."""
text_serializer = TextSerializer()
"""UTF-8 for str, so stored text stays readable with any tool."""
bytes_serializer = BytesSerializer()
"""bytes and bytearray stored as they are."""
datetime_serializer = DatetimeSerializer()
"""ISO-8601 datetimes that keep their time zone."""
values_lines_stream_serializer = ValuesLinesStreamSerializer()
"""Streams of values (and of str) as JSON Lines of typed value trees, read back item by item."""
json_lines_stream_serializer = JsonLinesStreamSerializer()
"""Streams of plain JSON values as JSON Lines, only where named (records that name it)."""
bytes_stream_serializer = BytesStreamSerializer()
"""Streams of bytes chunks stored as one blob."""
text_stream_serializer = TextStreamSerializer()
"""Pieces of text stored as one UTF-8 blob; only used when named explicitly."""

__all__ = [
    "BytesSerializer",
    "BytesStreamSerializer",
    "DatetimeSerializer",
    "EncodedTree",
    "JsonLinesStreamSerializer",
    "JsonSerializer",
    "TextSerializer",
    "TextStreamSerializer",
    "ValueTreeSerializer",
    "ValuesLinesStreamSerializer",
    "ValuesSerializer",
    "bytes_serializer",
    "bytes_stream_serializer",
    "datetime_serializer",
    "json_lines_stream_serializer",
    "json_serializer",
    "text_serializer",
    "text_stream_serializer",
    "value_tree_serializer",
    "values_lines_stream_serializer",
    "values_serializer",
]
