"""The serializer contract: values (or streams of values) to bytes and back.

Serializers are pure and synchronous for values, so the saver can run them in a worker
thread; stream serializers are async generators that may hand their CPU work to threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from labox_prefect.core.component import Component
from labox_prefect.core.digest import LocalFile

T = TypeVar("T")

JsonConfig = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SerializedData:
    """Bytes of one value plus what a reader needs to decode them.

    ``data`` is bytes, or a read-only ``memoryview`` of bytes (format ``"B"``, contiguous)
    over a buffer the serializer wrote into and no longer touches (an Arrow buffer, a
    memory-mapped file): the saver hashes and writes it without a copy, where the storage
    takes views (`Storage.writes_views`), and hands other storages a bytes copy.
    """

    data: bytes | memoryview
    content_type: str
    content_encoding: str | None = None
    config: JsonConfig = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SerializedDataStream:
    """A byte stream of many values plus what a reader needs to decode it."""

    data_stream: AsyncIterable[bytes]
    content_type: str
    content_encoding: str | None = None
    config: JsonConfig = field(default_factory=dict)
    local_file: LocalFile | None = None
    """On load, the local file that holds these bytes, when the storage keeps one (else
    None). A serializer that must seek may read it instead of ``data_stream``, and must
    then await ``local_file.verify()`` before it yields its last item."""


class Serializer(Component, Generic[T]):
    """Turns one value into bytes and back.

    ``types`` lists the Python types this serializer is inferred for (the registry walks a
    value's MRO); ``content_types`` the MIME types it produces.
    """

    types: ClassVar[tuple[type[Any], ...]] = ()
    content_types: ClassVar[tuple[str, ...]] = ()

    def handles_type(self, cls: type[Any], /) -> bool:
        """True if this serializer takes ``cls`` by kind, whatever its bases.

        The registry asks when no serializer is registered for exactly ``cls``, before
        looking at its base classes: plain dataclasses have no common base to register, and
        an IntEnum's base ``int`` would read back as an int.
        """
        return False

    def serialize_data(self, value: T, /) -> SerializedData:
        raise NotImplementedError

    def deserialize_data(self, content: SerializedData, /) -> T:
        raise NotImplementedError


class StreamSerializer(Component, Generic[T]):
    """Turns an async stream of values into a byte stream and back, in bounded memory."""

    types: ClassVar[tuple[type[Any], ...]] = ()
    content_types: ClassVar[tuple[str, ...]] = ()

    def serialize_data_stream(self, stream: AsyncIterable[T], /) -> SerializedDataStream:
        raise NotImplementedError

    def deserialize_data_stream(self, content: SerializedDataStream, /) -> AsyncIterator[T]:
        raise NotImplementedError
