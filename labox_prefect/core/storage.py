"""The storage contract: where serialized bytes live.

A storage returns a small JSON *config* for every blob it writes; the content record keeps
it and hands it back on read. Configs name locations relative to the storage's own root, and
a storage must refuse any config that would point outside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any

from labox_prefect.core.component import Component
from labox_prefect.core.digest import Digest

StorageConfig = dict[str, Any]
TagMap = Mapping[str, str]


class Storage(Component):
    """Writes and reads blobs. Implementations must be safe to call concurrently."""

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

    async def delete_data(self, config: StorageConfig, /) -> None:
        """Remove the blob a config points at; a missing blob is not an error."""
        raise NotImplementedError

    def iter_stored(self) -> AsyncIterator[StorageConfig]:
        """Yield the config of every blob this storage holds (for garbage collection).

        Storages that keep nothing outside the database yield nothing.
        """
        raise NotImplementedError
