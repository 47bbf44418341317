"""Serializers of the typed value tree (tree.py; format: VALUES.md).

``labox.values@v1`` writes and reads whole values, ``labox.value-tree@v1`` the trees that
unpackers encode themselves (bodies that may reference other contents), and
``labox.values-lines@v1`` streams of values as JSON Lines, one tree per line.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import pathlib
import uuid
from typing import Any

import orjson

from labox_prefect.core.builtin.serializers.json import (
    JSON_CONTENT_TYPE,
    JsonLinesStreamSerializer,
)
from labox_prefect.core.builtin.serializers.tree import (
    EncodedTree,
    ValueEncoder,
    decode_value,
    encode_value,
    handled_by_kind,
)
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import SerializedData, Serializer


def dump_tree(tree: Any, where: str = "value") -> bytes:
    """Compact UTF-8 JSON of an encoded tree; ``where`` names its root in error messages.

    Raises SerializationError when the JSON encode refuses the tree: a str holding an unpaired
    surrogate is named by its path (the encoder walks the tree, ValueEncoder.walk: the text
    of a plain value is checked only here), else the tree nests too deep.
    """
    try:
        return orjson.dumps(tree)
    except orjson.JSONEncodeError as error:
        ValueEncoder().walk(tree, where)
        raise SerializationError(
            f"Cannot save this value: {error}. JSON documents nest at most 254 levels "
            f"(flatten the value)."
        ) from None


class ValuesSerializer(Serializer[Any]):
    """Python values as a typed JSON tree: the format of plain results.

    Read back equal in value and type (see VALUES.md for every type and its tag), or refused
    when saved with a SerializationError naming where in the value the problem is.
    """

    name = "labox.values@v1"
    types = (
        dict,
        list,
        tuple,
        set,
        frozenset,
        int,
        float,
        bool,
        type(None),
        complex,
        bytearray,
        decimal.Decimal,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
        pathlib.PurePath,
        enum.Enum,
    )
    content_types = (JSON_CONTENT_TYPE,)

    def handles_type(self, cls: type[Any], /) -> bool:
        """True for the user's classes the tree encodes by kind, whatever their bases."""
        return handled_by_kind(cls)

    def serialize_data(self, value: Any, /) -> SerializedData:
        return SerializedData(data=dump_tree(encode_value(value)), content_type=JSON_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> Any:
        tree = load_tree(bytes(content.data), self.name)
        return tree.tree if tree.plain else decode_value(tree.tree)


class ValueTreeSerializer(Serializer[Any]):
    """Trees an unpacker encoded itself (bodies that may reference other contents).

    Writes a tree as JSON and reads it back as an `EncodedTree`, undecoded: only the
    unpacker has the contents its ``{"!ref": key}`` nodes name.
    """

    name = "labox.value-tree@v1"
    content_types = (JSON_CONTENT_TYPE,)

    def serialize_data(self, value: Any, /) -> SerializedData:
        return SerializedData(data=dump_tree(value), content_type=JSON_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> EncodedTree:
        return load_tree(bytes(content.data), self.name)


class ValuesLinesStreamSerializer(JsonLinesStreamSerializer):
    """A stream of values as JSON Lines, one typed value tree per line (see VALUES.md).

    Items come back with their types (a tuple stays a tuple); an item that cannot be kept
    stops the stream with a SerializationError naming it.
    """

    name = "labox.values-lines@v1"
    types = (str, *ValuesSerializer.types)

    def encode_line(self, value: Any, /) -> bytes:
        return dump_tree(encode_value(value, "stream item"), "stream item")

    def decode_line(self, line: bytes, where: str, /) -> Any:
        tree = load_tree(line, self.name)
        return tree.tree if tree.plain else decode_value(tree.tree)


def load_tree(data: bytes, serializer_name: str) -> EncodedTree:
    """The JSON tree in ``data``, marked plain if it holds no tag at all."""
    try:
        tree = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise SerializationError(
            f"{serializer_name} cannot read this content: it is not valid UTF-8 JSON "
            f"({error}). The content is corrupted or was not written by {serializer_name}."
        ) from None
    # A tag is an object whose first key starts with "!"; inside strings '"' is escaped.
    return EncodedTree(tree, plain=b'{"!' not in data)
