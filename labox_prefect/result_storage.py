"""LaboxResultStorage: a Prefect result-storage block backed by a Labox database and storage.

Prefect writes a result record (small JSON metadata plus the serialized result) under a
storage key, and reads it back by that key. This block keeps the key in the
``labox_prefect_results`` table, so any process or machine sharing the database and the
blob storage reads it back:

- a record whose serializer is LaboxSerializer holds only a pointer to the manifest that
  ``dumps`` saved: the key points at that manifest and the small record is kept beside it,
  so one result is one manifest;
- a record of any other serializer (pickle, json, ...) is saved whole, as the bytes of a
  Labox record of its own, tagged with the run context like every result;
- a failed run's record (LaboxSerializer keeps the error's type and message) is kept under
  its key with no manifest: a failure is not a result.

Prefect calls ``read_path(key, _sync=True)`` / ``write_path(key, content=..., _sync=True)``
from sync code and ``aread_path`` / ``awrite_path`` from async code; both pairs exist, and
the sync names dispatch to the async ones when called bare from async code.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, ClassVar

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from prefect.settings import get_current_settings
from pydantic import Field, SecretStr

from labox_prefect.context import record_tags
from labox_prefect.core import LaboxError, load_one, save_one
from labox_prefect.core.builtin import StorableValue, bytes_serializer
from labox_prefect.result_keys import get_result_key, prewritten_keys, put_result_key
from labox_prefect.runtime import Target, get_runtime
from labox_prefect.serializer import (
    FAILURE_KIND,
    POINTER_KIND,
    LaboxSerializer,
    ResultPointer,
    ResultPointerError,
    RunFailure,
    parse_blob,
    registry_modules,
)
from labox_prefect.settings import current_settings

DEFAULT_BLOCK_NAME = "default"
"""Name of the block ``labox_task`` saves (settings from the environment) when none is given."""

_LABOX_TYPE = LaboxSerializer.model_fields["type"].default
_LABOX_MARK = f'"type":"{_LABOX_TYPE}"'.encode()
_MARK_WINDOW = 4096


class ResultKeyNotFoundError(LaboxError, FileNotFoundError):
    """No result is stored under a Prefect storage key."""


class LaboxResultStorage(WritableFileSystem):
    """Prefect result storage in a Labox database (records) and blob storage (bytes).

    Every field is optional: an empty field means the ``LABOX_*`` setting of the process
    that uses the block, so one saved block serves machines configured by environment.
    """

    _block_type_name: ClassVar[str | None] = "Labox Result Storage"
    _block_type_slug: ClassVar[str | None] = "labox-result-storage"
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
        settings = current_settings()
        target = Target(
            database_url=_secret(self.database_url) or settings.resolved_database_url(),
            storage_url=self.storage_url or settings.resolved_storage_url(),
            s3_endpoint_url=self.s3_endpoint_url
            or settings.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL"),
            s3_key=_secret(self.aws_access_key_id),
            s3_secret=_secret(self.aws_secret_access_key),
        )
        get_runtime().remember_target(target)
        return target

    async def aread_path(self, path: str) -> bytes:
        return await get_runtime().arun(_read(path, self.target()))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]
        """The bytes Prefect stored under ``path`` (a storage key)."""
        return get_runtime().run(_read(path, self.target()))

    async def awrite_path(self, path: str, content: bytes) -> str:
        target = self.target()
        if not _written_with_manifest(target, path, content):
            await get_runtime().arun(_write(path, content, target, record_tags(None)))
        return path

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:  # type: ignore[override]
        """Store Prefect's bytes under ``path`` (a storage key); returns the key."""
        target = self.target()
        if not _written_with_manifest(target, path, content):
            get_runtime().run(_write(path, content, target, record_tags(None)))
        return path


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def labox_blob_in(content: bytes, database_label: str) -> ResultPointer | RunFailure | None:
    """What LaboxSerializer wrote in a Prefect result record (or bare result), if it did.

    A pointer counts only when it points into this very database; anything else is stored
    whole. Large records of other serializers are recognised without parsing them.
    """
    head = content[:_MARK_WINDOW]
    found: ResultPointer | RunFailure | None = None
    if _LABOX_MARK in head:
        try:
            record = json.loads(content)
            if record["metadata"]["serializer"]["type"] == _LABOX_TYPE and isinstance(
                record["result"], str
            ):
                found = parse_blob(record["result"])
        except (ValueError, TypeError, KeyError, ResultPointerError):
            found = None
    elif len(content) < _MARK_WINDOW and (
        POINTER_KIND.encode() in head or FAILURE_KIND.encode() in head
    ):
        try:  # a bare result: Prefect writes metadata elsewhere when a cache policy says so
            found = parse_blob(content)
        except ResultPointerError:
            found = None
    if isinstance(found, ResultPointer) and found.database != database_label:
        return None
    return found


def _written_with_manifest(target: Target, key: str, content: bytes) -> bool:
    """Whether labox_task already stored this very record under ``key``, with its manifest."""
    return prewritten_keys.already_written(target.database_label, key, content)


async def _read(key: str, target: Target) -> bytes:
    runtime = get_runtime()
    # Most reads are Prefect's cache checks of keys never written: one plain SELECT.
    engine = await runtime.engine(target.database_url)
    async with engine.connect() as connection:
        found = await get_result_key(connection, key)
    if found is None:
        raise ResultKeyNotFoundError(
            f"No Prefect result is stored under key {key!r} in {target.database_label}."
        )
    if found.record is not None or found.manifest_id is None:
        return (found.record or "").encode("utf-8")
    registry = runtime.registry(target, registry_modules())
    sessions = await runtime.sessions(target.database_url)
    async with sessions() as session:
        stored = await load_one(
            found.manifest_id, StorableValue, session=session, registry=registry
        )
    data: bytes = stored.value
    return data


async def _write(key: str, content: bytes, target: Target, tags: dict[str, str]) -> None:
    runtime = get_runtime()
    sessions = await runtime.sessions(target.database_url)
    found = labox_blob_in(content, target.database_label)
    async with sessions() as session:
        if found is not None:
            manifest_id = found.manifest_id if isinstance(found, ResultPointer) else None
            await put_result_key(session, key, manifest_id, content.decode("utf-8"))
            return
        registry = runtime.registry(target, registry_modules())
        manifest = await save_one(
            StorableValue(bytes(content), serializer=bytes_serializer),
            session=session,
            registry=registry,
            tags=tags,
        )
        await put_result_key(session, key, manifest.id, None)


_default_blocks: dict[str, LaboxResultStorage] = {}
_default_blocks_lock = threading.Lock()


def saved_default_block() -> LaboxResultStorage:
    """The block named ``default`` on the current Prefect API, saved on first need.

    A block must be saved before Prefect can use it; an existing ``default`` block is used
    as it is (it may name a production database). Looked up once per API and process.
    """
    api = str(get_current_settings().api.url)
    with _default_blocks_lock:
        block = _default_blocks.get(api)
        if block is not None:
            return block
        block = _load_or_save_default()
        _default_blocks[api] = block
        return block


def _load_or_save_default() -> LaboxResultStorage:
    try:
        loaded: Any = LaboxResultStorage.load(DEFAULT_BLOCK_NAME, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        block = LaboxResultStorage()
        try:
            block.save(DEFAULT_BLOCK_NAME, _sync=True)  # type: ignore[call-arg]
        except Exception:
            # Another process saved it in between: use theirs.
            loaded = LaboxResultStorage.load(DEFAULT_BLOCK_NAME, _sync=True)  # type: ignore[call-arg]
        else:
            return block
    if not isinstance(loaded, LaboxResultStorage):
        raise TypeError(f"The block {DEFAULT_BLOCK_NAME!r} is not a LaboxResultStorage.")
    return loaded


__all__ = [
    "DEFAULT_BLOCK_NAME",
    "LaboxResultStorage",
    "ResultKeyNotFoundError",
    "labox_blob_in",
    "saved_default_block",
]
