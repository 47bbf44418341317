"""Batteries: the storables, serializers and storages every registry starts from.

``Registry(modules=["labox_prefect.core.builtin"])`` registers the serializer instances and
storable classes listed here. Storage *classes* are exported for you to instantiate; no
storage instance is registered by this module (a registry picks its default storage).
"""

from labox_prefect.core.builtin.serializers import (
    BytesSerializer,
    BytesStreamSerializer,
    DatetimeSerializer,
    JsonLinesStreamSerializer,
    JsonSerializer,
    TextSerializer,
    TextStreamSerializer,
    ValuesLinesStreamSerializer,
    ValuesSerializer,
    ValueTreeSerializer,
    bytes_serializer,
    bytes_stream_serializer,
    datetime_serializer,
    json_lines_stream_serializer,
    json_serializer,
    text_serializer,
    text_stream_serializer,
    value_tree_serializer,
    values_lines_stream_serializer,
    values_serializer,
)
from labox_prefect.core.builtin.storables import (
    ContentSpec,
    StorableDataclass,
    StorableDataclassUnpacker,
    StorableStream,
    StorableStreamUnpacker,
    StorableValue,
    StorableValueUnpacker,
)
from labox_prefect.core.builtin.storages import (
    DatabaseStorage,
    FileStorage,
    FsspecStorage,
    MemoryStorage,
    S3Storage,
)

__all__ = [
    "BytesSerializer",
    "BytesStreamSerializer",
    "ContentSpec",
    "DatabaseStorage",
    "DatetimeSerializer",
    "FileStorage",
    "FsspecStorage",
    "JsonLinesStreamSerializer",
    "JsonSerializer",
    "MemoryStorage",
    "S3Storage",
    "StorableDataclass",
    "StorableDataclassUnpacker",
    "StorableStream",
    "StorableStreamUnpacker",
    "StorableValue",
    "StorableValueUnpacker",
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
