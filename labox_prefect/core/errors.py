"""Every error of the storage framework, in one module.

Every error names the problem and, where one exists, the fix. They all derive from
`LaboxError` so callers can catch the framework's failures without catching their own, and
each also derives from the built-in exception a caller would naturally catch (LookupError,
ValueError, ConnectionError...). All of them are exported from ``labox_prefect.core``.
"""

from __future__ import annotations


class LaboxError(Exception):
    """Base class of every error raised by labox_prefect.core."""


class NotRegisteredError(LaboxError, LookupError):
    """A component or storable class that a save or load needs is not in the registry."""


class ComponentNotRegisteredError(NotRegisteredError):
    """A serializer, stream serializer, unpacker or storage named by a record (or asked for
    by name) is not in the registry; ``kind`` and ``name`` say which."""

    def __init__(self, message: str, kind: str = "component", name: str = "") -> None:
        super().__init__(message, kind, name)
        self.kind = kind
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class ClassNotDefinedError(NotRegisteredError):
    """A class that a record or stored data names (by class_id, or ``module:qualname``) is
    not registered or defined in this process (nothing is imported because data names it);
    ``module`` and ``qualname`` say which (both empty when only a class_id names it)."""

    def __init__(self, message: str, module: str = "", qualname: str = "") -> None:
        super().__init__(message, module, qualname)
        self.module = module
        self.qualname = qualname

    def __str__(self) -> str:
        return str(self.args[0])


class ContentCorruptedError(LaboxError):
    """Stored bytes do not match the hash recorded when they were saved."""


class ContentMissingError(LaboxError, FileNotFoundError):
    """A content record points at bytes that its storage no longer has."""


class StorageKeyError(LaboxError, ValueError):
    """A stored pointer names a location outside the storage's own root or bucket."""


class StorableTypeError(LaboxError, TypeError):
    """An object or class cannot be saved or loaded as the storable it claims to be."""


class SerializationError(LaboxError, ValueError):
    """A value cannot be turned into bytes (or back) by the serializer chosen for it."""


class SaveNotCompleteError(LaboxError, RuntimeError):
    """A future's value was read before the saver or loader that owns it finished."""


class InvalidArgumentError(LaboxError, ValueError):
    """An argument of a public function (``find_manifests``, ``delete_manifests``,
    ``find_results``, ``labox_task``...) has a value it does not take; the message names the
    argument, the value and what it takes."""


class InvalidTagsError(LaboxError, TypeError, ValueError):
    """Tags break the one tag rule of ``labox_prefect.core.tags`` (type, characters, length)."""


class ManifestNotFoundError(LaboxError, LookupError):
    """No manifest record has the requested id."""


class DamagedRecordError(LaboxError, ValueError):
    """A manifest's rows cannot be rebuilt into an object: contents gone, or the wrong class."""


class UnsupportedDatabaseError(LaboxError, NotImplementedError):
    """A query needs a database feature that only PostgreSQL and SQLite are known to have."""


class SchemaMismatchError(LaboxError, RuntimeError):
    """Existing Labox tables have no recorded revision and differ from the known schema."""


class StorageNotConfiguredError(LaboxError, LookupError):
    """A save needs a blob storage and the registry has none for this database."""


class StorageOwnershipError(LaboxError, PermissionError):
    """Blobs cannot be deleted: the storage is (or may be) used by a database not in view."""


class StorageUnavailableError(LaboxError, ConnectionError):
    """The storage (an S3 endpoint, a folder on a network mount) cannot be reached."""


class DatabaseUnavailableError(LaboxError, ConnectionError):
    """The database cannot be reached, closed the connection, or refuses more connections."""


__all__ = [
    "ClassNotDefinedError",
    "ComponentNotRegisteredError",
    "ContentCorruptedError",
    "ContentMissingError",
    "DamagedRecordError",
    "DatabaseUnavailableError",
    "InvalidArgumentError",
    "InvalidTagsError",
    "LaboxError",
    "ManifestNotFoundError",
    "NotRegisteredError",
    "SaveNotCompleteError",
    "SchemaMismatchError",
    "SerializationError",
    "StorableTypeError",
    "StorageKeyError",
    "StorageNotConfiguredError",
    "StorageOwnershipError",
    "StorageUnavailableError",
    "UnsupportedDatabaseError",
]
