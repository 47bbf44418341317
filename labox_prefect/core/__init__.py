"""labox_prefect.core: the Labox storage framework.

Typed Python objects are saved as a manifest record plus one content record per value or
stream, with the bytes in fsspec storages, and loaded back through a registry that resolves
every component by name. This package never imports Prefect.
"""

from labox_prefect.core.component import Component
from labox_prefect.core.database import BaseRecord, ContentRecord, ManifestRecord
from labox_prefect.core.digest import Digest
from labox_prefect.core.errors import (
    ContentCorruptedError,
    ContentMissingError,
    LaboxError,
    NotRegisteredError,
    SaveNotCompleteError,
    SerializationError,
    StorableTypeError,
    StorageKeyError,
)
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage, StorageConfig
from labox_prefect.core.unpacker import UnpackedStream, UnpackedValue, Unpacker

__all__ = [
    "BaseRecord",
    "Component",
    "ContentCorruptedError",
    "ContentMissingError",
    "ContentRecord",
    "Digest",
    "LaboxError",
    "ManifestRecord",
    "NotRegisteredError",
    "Registry",
    "SaveNotCompleteError",
    "SerializationError",
    "SerializedData",
    "SerializedDataStream",
    "Serializer",
    "Storable",
    "Storage",
    "StorageConfig",
    "StorableTypeError",
    "StorageKeyError",
    "StreamSerializer",
    "UnpackedStream",
    "UnpackedValue",
    "Unpacker",
]
