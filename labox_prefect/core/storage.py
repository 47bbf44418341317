"""The storage contract: where serialized bytes live.

A storage returns a small JSON *config* for every blob it writes; the content record keeps
it and hands it back on read. Configs name locations relative to the storage's own root, and
a storage must refuse any config that would point outside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from labox_prefect.core.component import Component
from labox_prefect.core.digest import Digest

StorageConfig = dict[str, Any]
TagMap = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as a storage lists it: its config and when it was last written (if known)."""

    config: StorageConfig
    modified: datetime | None
    """Timezone-aware; None when the storage cannot tell (garbage collection then keeps it)."""


class Storage(Component):
    """Writes and reads blobs. Implementations must be safe to call concurrently."""

    keeps_data_in_records: ClassVar[bool] = False
    """True for a storage whose data lives in the content records themselves: deleting a
    record deletes its data, so retention and garbage collection have nothing to do there."""

    writes_views: ClassVar[bool] = False
    """True for a storage whose `write_data` takes a ``memoryview`` of bytes as well as
    bytes: the saver then hands it a serializer's buffer as it is (no copy of a large
    value); others get bytes."""

    async def write_data(self, data: bytes, digest: Digest, tags: TagMap, /) -> StorageConfig:
        """Store ``data`` (already digested) and return the config that finds it again."""
        raise NotImplementedError

    async def read_data(self, config: StorageConfig, /) -> bytes:
        """Return the bytes a config points at (raise ContentMissingError if gone)."""
        raise NotImplementedError

    async def write_data_stream(
        self,
        data_stream: AsyncIterable[bytes],
        get_digest: Callable[[], Digest],
        tags: TagMap,
        /,
    ) -> StorageConfig:
        """Store a byte stream; ``get_digest()`` is valid once the stream is exhausted."""
        raise NotImplementedError

    def read_data_stream(self, config: StorageConfig, /) -> AsyncIterator[bytes]:
        """Yield the bytes a config points at, in chunks, in bounded memory."""
        raise NotImplementedError

    def local_path(self, config: StorageConfig, /) -> str | None:
        """The path of a local file that holds the blob's bytes, or None (the default).

        Only for storages that keep blobs as files on this machine, unchanged while they
        exist: a stream serializer that must seek (Parquet) then reads the file in place
        instead of spooling a copy (the loader still checks its hash). Raises what
        ``read_data_stream`` raises for a config this storage refuses; the file may be
        gone (reading it then raises ContentMissingError).
        """
        return None

    async def delete_data(self, config: StorageConfig, /) -> None:
        """Remove the blob a config points at; a missing blob is not an error."""
        raise NotImplementedError

    def iter_stored(self) -> AsyncIterator[StorageConfig]:
        """Yield the config of every blob this storage holds (for garbage collection).

        Storages that keep nothing outside the database yield nothing.
        """
        raise NotImplementedError

    # --- maintenance: garbage collection and ownership (optional, safe defaults) ------------

    async def iter_stored_blobs(self) -> AsyncIterator[StoredBlob]:
        """Like ``iter_stored``, with each blob's last write time where the storage knows it.

        The default knows no time, so garbage collection with a grace period keeps every
        blob of such a storage.
        """
        async for config in self.iter_stored():
            yield StoredBlob(config, None)

    async def blob_modified(self, config: StorageConfig, /) -> datetime | None:
        """When the blob was last written (None: unknown or gone), checked just before a delete."""
        return None

    async def add_owner(self, database: str, /) -> None:
        """Record that ``database`` (a label without credentials) writes to this storage.

        Called by the saver before it writes the first blob of a process for that database;
        must be idempotent. The default records nothing, which is right for storages that
        keep nothing outside the database (nothing of theirs is ever collected).
        """

    async def remove_owner(self, database: str, /) -> None:
        """Forget ``database`` as an owner (it no longer exists); a missing one is no error."""

    async def list_owners(self) -> list[str] | None:
        """The databases recorded by ``add_owner``; None if this storage cannot record them.

        Garbage collection deletes a blob only when the owners are exactly the database it
        reads references from.
        """
        return None

    async def collect_temporary(self, older_than: datetime, *, dry_run: bool) -> list[str]:
        """Remove temporary files of writes that died before ``older_than``; return their names.

        The default has no temporary files.
        """
        return []
