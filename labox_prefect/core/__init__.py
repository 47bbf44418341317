"""labox_prefect.core: the Labox storage framework.

Typed Python objects are saved as a manifest record plus one content record per value or
stream, with the bytes in fsspec storages, and loaded back through a registry that resolves
every component by name. This package never imports Prefect.
"""

from labox_prefect.core.component import Component
from labox_prefect.core.database import BaseRecord, ContentRecord, ManifestRecord
from labox_prefect.core.digest import Digest
from labox_prefect.core.errors import (
    ClassNotDefinedError,
    ComponentNotRegisteredError,
    ContentCorruptedError,
    ContentMissingError,
    DamagedRecordError,
    DatabaseUnavailableError,
    InvalidArgumentError,
    InvalidTagsError,
    LaboxError,
    ManifestNotFoundError,
    NotRegisteredError,
    SaveNotCompleteError,
    SchemaMismatchError,
    SerializationError,
    StorableTypeError,
    StorageKeyError,
    StorageNotConfiguredError,
    StorageOwnershipError,
    StorageUnavailableError,
    UnsupportedDatabaseError,
)
from labox_prefect.core.future import Future
from labox_prefect.core.lifecycle import (
    collect_garbage,
    delete_manifest,
    delete_manifests,
    verify_manifests,
)
from labox_prefect.core.live_state import live_kind
from labox_prefect.core.loader import Loader, load_one, new_loader
from labox_prefect.core.query import (
    ManifestRow,
    find_manifest_rows,
    find_manifests,
    get_contents,
    get_manifest,
)
from labox_prefect.core.registry import Registry
from labox_prefect.core.saver import Saver, new_saver, save_one, save_one_with_contents
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)
from labox_prefect.core.sessions import AnySession, execute_in_session, session_bind
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage, StorageConfig, StoredBlob
from labox_prefect.core.tags import Tags
from labox_prefect.core.unpacker import UnpackedStream, UnpackedValue, Unpacker

__all__ = [
    "AnySession",
    "BaseRecord",
    "ClassNotDefinedError",
    "Component",
    "ComponentNotRegisteredError",
    "ContentCorruptedError",
    "ContentMissingError",
    "ContentRecord",
    "DamagedRecordError",
    "DatabaseUnavailableError",
    "Digest",
    "Future",
    "InvalidArgumentError",
    "InvalidTagsError",
    "LaboxError",
    "Loader",
    "ManifestNotFoundError",
    "ManifestRecord",
    "ManifestRow",
    "NotRegisteredError",
    "Registry",
    "SaveNotCompleteError",
    "Saver",
    "SchemaMismatchError",
    "SerializationError",
    "SerializedData",
    "SerializedDataStream",
    "Serializer",
    "Storable",
    "StorableTypeError",
    "Storage",
    "StorageConfig",
    "StorageKeyError",
    "StorageNotConfiguredError",
    "StorageOwnershipError",
    "StorageUnavailableError",
    "StoredBlob",
    "StreamSerializer",
    "Tags",
    "UnpackedStream",
    "UnpackedValue",
    "Unpacker",
    "UnsupportedDatabaseError",
    "collect_garbage",
    "delete_manifest",
    "delete_manifests",
    "execute_in_session",
    "find_manifest_rows",
    "find_manifests",
    "get_contents",
    "get_manifest",
    "live_kind",
    "load_one",
    "new_loader",
    "new_saver",
    "save_one",
    "save_one_with_contents",
    "session_bind",
    "verify_manifests",
]
