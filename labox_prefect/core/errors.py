"""Errors of the storage framework.

Every error names the problem and, where one exists, the fix. They all derive from
`LaboxError` so callers can catch the framework's failures without catching their own.
"""

from __future__ import annotations


class LaboxError(Exception):
    """Base class of every error raised by labox_prefect.core."""


class NotRegisteredError(LaboxError, LookupError):
    """A component or storable class that a save or load needs is not in the registry."""


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
