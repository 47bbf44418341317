"""LaboxResultStorage: Prefect's ``WritableFileSystem`` interface over the door.

Prefect writes a result record (small JSON metadata plus the serialized result) under a
storage key, and reads it back by that key. This block keeps the key in the
``labox_prefect_results`` table (labox_prefect.result_keys), so any process or machine
sharing the database and the blob storage reads it back:

- a record whose serializer is LaboxSerializer holds only a pointer to the manifest that
  ``dumps`` saved: the key points at that manifest and the small record is kept beside it,
  so one result is one manifest;
- a record of any other serializer (pickle, json, ...) is saved whole, as the bytes of a
  Labox record of its own, tagged with the run context like every result;
- a failed run's record (LaboxSerializer keeps the error's type and message) is kept under
  its key with no manifest: a failure is not a result.

Prefect calls ``read_path(key, _sync=True)`` / ``write_path(key, content=..., _sync=True)``
from sync code and ``aread_path`` / ``awrite_path`` from async code; both pairs exist. Called
bare (no ``_sync``) from a thread with a running event loop, the sync names return the
async method's coroutine, as Prefect's own blocks do.

Defining this class registers the ``labox-result-storage`` block type with Prefect; the
module reaches the door only when called (see labox_prefect.registration for why).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from prefect.filesystems import WritableFileSystem
from pydantic import Field, SecretStr

from labox_prefect.pointer import BLOCK_TYPE_SLUG

if TYPE_CHECKING:
    from labox_prefect.target import Target


class LaboxResultStorage(WritableFileSystem):
    """Prefect result storage in a Labox database (records) and blob storage (bytes).

    Every field is optional: an empty field means the ``LABOX_*`` setting of the process
    that uses the block, so one saved block serves machines configured by environment.
    """

    _block_type_name: ClassVar[str | None] = "Labox Result Storage"
    _block_type_slug: ClassVar[str | None] = BLOCK_TYPE_SLUG
    _description: ClassVar[str | None] = (
        "Stores Prefect results as typed, tagged Labox records in a SQL database and an "
        "fsspec storage (local folder or S3)."
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL (it may hold a password). Default: LABOX_DATABASE_URL.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Folder, s3://bucket/prefix or memory://. Default: LABOX_STORAGE_URL.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint. Default: LABOX_S3_ENDPOINT_URL, AWS_ENDPOINT_URL.",
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None, description="S3 access key. Default: the usual AWS environment."
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key. Default: the usual AWS environment."
    )

    def target(self) -> Target:
        """Where this block stores results, with empty fields filled from the settings."""
        from labox_prefect.target import target_of_block

        return target_of_block(self)

    async def aread_path(self, path: str) -> bytes:
        from labox_prefect import persistence

        return await persistence.aread_record(self.target(), path)

    def read_path(  # type: ignore[override]
        self, path: str, _sync: bool | None = None
    ) -> bytes | Coroutine[Any, Any, bytes]:
        """The bytes Prefect stored under ``path`` (a storage key)."""
        if _async_call(_sync):
            return self.aread_path(path)
        from labox_prefect import persistence

        return persistence.read_record(self.target(), path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        from labox_prefect import persistence

        await persistence.awrite_record(self.target(), path, content)
        return path

    def write_path(  # type: ignore[override]
        self, path: str, content: bytes, _sync: bool | None = None
    ) -> str | Coroutine[Any, Any, str]:
        """Store Prefect's bytes under ``path`` (a storage key); returns the key."""
        if _async_call(_sync):
            return self.awrite_path(path, content)
        from labox_prefect import persistence

        persistence.write_record(self.target(), path, content)
        return path


def _async_call(sync: bool | None) -> bool:
    """Whether a bare call (``_sync`` not given) comes from a thread running an event loop."""
    if sync is not None:
        return not sync
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_default_lock = threading.Lock()


def saved_default_block() -> LaboxResultStorage:
    """The block named ``default`` on the current Prefect API, saved on first need.

    A block must be saved before Prefect can use it; an existing ``default`` block is used
    as it is (it may name a production database). Looked up once per API and process.
    """
    from labox_prefect.target import DEFAULT_BLOCK_NAME, remember_block, saved_block_or_none

    with _default_lock:
        found = saved_block_or_none(DEFAULT_BLOCK_NAME)
        if found is None:
            block = LaboxResultStorage()
            try:
                block.save(DEFAULT_BLOCK_NAME, _sync=True)  # type: ignore[call-arg]
            except Exception:  # another process saved it in between: use theirs
                loaded: Any = LaboxResultStorage.load(DEFAULT_BLOCK_NAME, _sync=True)  # type: ignore[call-arg]
                block = loaded
            remember_block(DEFAULT_BLOCK_NAME, block)
            found = block
    assert isinstance(found, LaboxResultStorage)
    return found


__all__ = ["LaboxResultStorage", "saved_default_block"]
