"""The unpacker contract: a storable object to named contents and back.

An unpacker splits an object into contents (values or async streams), each of which
becomes one content record; repacking gets the same contents back by key.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from labox_prefect.core.component import Component
from labox_prefect.core.serializer import Serializer, StreamSerializer
from labox_prefect.core.storage import Storage

if TYPE_CHECKING:
    from labox_prefect.core.registry import Registry
    from labox_prefect.core.storable import Storable

S = TypeVar("S", bound="Storable")


@dataclass(frozen=True, slots=True)
class UnpackedValue:
    """One value to store; serializer and storage default to what the registry infers."""

    value: Any
    serializer: Serializer[Any] | None = None
    storage: Storage | None = None


@dataclass(frozen=True, slots=True)
class UnpackedStream:
    """One async stream to store; a stream serializer must be given or inferable."""

    stream: AsyncIterable[Any]
    serializer: StreamSerializer[Any] | None = None
    storage: Storage | None = None
    item_type: type[Any] | None = None


Unpacked = UnpackedValue | UnpackedStream


class Unpacker(Component, Generic[S]):
    """Splits storables of some family into contents and builds them back.

    ``legacy`` lists unpackers of the family's older formats: a registry that knows this
    unpacker also knows them, so records written in an older format still load.
    """

    legacy: ClassVar[tuple[Unpacker[Any], ...]] = ()

    def unpack_object(self, obj: S, registry: Registry, /) -> Mapping[str, Unpacked]:
        raise NotImplementedError

    def unpacks_quickly(self, obj: S, /) -> bool:
        """False if ``unpack_object`` may take long enough to stall the event loop.

        The saver then runs it in a worker thread (a hop costs more than small objects do).
        """
        return True

    def repack_object(self, cls: type[S], contents: Mapping[str, Any], registry: Registry, /) -> S:
        raise NotImplementedError
