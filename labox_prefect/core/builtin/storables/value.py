"""Plain values and async streams as storables, for data without a class of its own."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any, Generic, TypeVar

from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import Serializer, StreamSerializer
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacked, UnpackedStream, UnpackedValue, Unpacker

T = TypeVar("T")

VALUE_KEY = "value"
STREAM_KEY = "stream"


class StorableValueUnpacker(Unpacker["StorableValue[Any]"]):
    """One content, the value itself, with the serializer given or inferred."""

    name = "labox.value@v1"

    def unpack_object(
        self, obj: StorableValue[Any], registry: Registry, /
    ) -> Mapping[str, Unpacked]:
        return {VALUE_KEY: UnpackedValue(obj.value, obj.serializer, obj.storage)}

    def repack_object(
        self, cls: type[StorableValue[Any]], contents: Mapping[str, Any], registry: Registry, /
    ) -> StorableValue[Any]:
        return cls(contents[VALUE_KEY])


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
    """Any single value the registry has a serializer for (or that names its own)."""

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
