"""Plain values and async streams as storables, for data without a class of its own."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any, Generic, TypeVar

from labox_prefect.core.builtin.serializers import value_tree_serializer
from labox_prefect.core.builtin.serializers.tree import EncodedTree, decode_value
from labox_prefect.core.builtin.storables._routing import (
    ContentRouter,
    is_small,
    own_serializer,
)
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import Serializer, StreamSerializer
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacked, UnpackedStream, UnpackedValue, Unpacker

T = TypeVar("T")

VALUE_KEY = "value"
STREAM_KEY = "stream"


class LegacyValueUnpacker(Unpacker["StorableValue[Any]"]):
    """Reads records of labox.value@v1 (one content, the value itself)."""

    name = "labox.value@v1"

    def unpack_object(
        self, obj: StorableValue[Any], registry: Registry, /
    ) -> Mapping[str, Unpacked]:
        return {VALUE_KEY: UnpackedValue(obj.value, obj.serializer, obj.storage)}

    def repack_object(
        self, cls: type[StorableValue[Any]], contents: Mapping[str, Any], registry: Registry, /
    ) -> StorableValue[Any]:
        return cls(contents[VALUE_KEY])


class StorableValueUnpacker(Unpacker["StorableValue[Any]"]):
    """The value as one content, or as a typed-value tree plus one content per large leaf.

    A value with a serializer of its own (given, or registered for its type: a str, a
    DataFrame, ...) is one content, as in v1. Any other value is encoded as a typed JSON tree
    (labox.value-tree@v1, see VALUES.md) in which DataFrames, arrays, large bytes and other
    leaves with serializers of their own are contents of their own, referenced by key.
    """

    name = "labox.value@v2"
    legacy = (LegacyValueUnpacker(),)

    def unpack_object(
        self, obj: StorableValue[Any], registry: Registry, /
    ) -> Mapping[str, Unpacked]:
        serializer = obj.serializer or own_serializer(obj.value, registry)
        if serializer is not None:
            return {VALUE_KEY: UnpackedValue(obj.value, serializer, obj.storage)}
        contents: dict[str, Unpacked] = {}
        router = ContentRouter(registry, contents, obj.storage)
        tree = router.encoder.encode(obj.value, VALUE_KEY)
        contents[VALUE_KEY] = UnpackedValue(tree, value_tree_serializer, obj.storage)
        return contents

    def unpacks_quickly(self, obj: StorableValue[Any], /) -> bool:
        return is_small(obj.value)

    def repack_object(
        self, cls: type[StorableValue[Any]], contents: Mapping[str, Any], registry: Registry, /
    ) -> StorableValue[Any]:
        value = contents[VALUE_KEY]
        if isinstance(value, EncodedTree):
            value = value.tree if value.plain else decode_value(value.tree, contents)
        return cls(value)


class StorableStreamUnpacker(Unpacker["StorableStream[Any]"]):
    """One stream content; its serializer is given, or inferred from ``item_type``."""

    name = "labox.stream@v1"

    def unpack_object(
        self, obj: StorableStream[Any], registry: Registry, /
    ) -> Mapping[str, Unpacked]:
        return {STREAM_KEY: UnpackedStream(obj.stream, obj.serializer, obj.storage, obj.item_type)}

    def repack_object(
        self, cls: type[StorableStream[Any]], contents: Mapping[str, Any], registry: Registry, /
    ) -> StorableStream[Any]:
        return cls(contents[STREAM_KEY])


class StorableValue(
    Storable, Generic[T], class_id="9a1b5c0e3f2d4e6a", unpacker=StorableValueUnpacker()
):
    """Any single value: one content by its own serializer (given, or registered for its
    type), or a typed value tree that loads back with the same types (see VALUES.md)."""

    __slots__ = ("serializer", "storage", "value")

    def __init__(
        self,
        value: T,
        serializer: Serializer[T] | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.value = value
        self.serializer = serializer
        self.storage = storage

    def __repr__(self) -> str:
        return f"StorableValue({self.value!r})"


class StorableStream(
    Storable, Generic[T], class_id="4c7e2a9b1d3f5e08", unpacker=StorableStreamUnpacker()
):
    """An async stream of values, saved and loaded in bounded memory."""

    __slots__ = ("item_type", "serializer", "storage", "stream")

    def __init__(
        self,
        stream: AsyncIterable[T],
        serializer: StreamSerializer[T] | None = None,
        storage: Storage | None = None,
        item_type: type[T] | None = None,
    ) -> None:
        self.stream = stream
        self.serializer = serializer
        self.storage = storage
        self.item_type = item_type

    def __repr__(self) -> str:
        return f"StorableStream({self.stream!r})"
