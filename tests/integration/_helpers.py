"""Queries the integration tests share: records by tag, straight from the core."""

from __future__ import annotations

import uuid

from labox_prefect.core import ContentRecord, ManifestRecord, find_manifests, get_contents
from labox_prefect.result_keys import ResultKey, get_result_key
from labox_prefect.runtime import get_runtime
from labox_prefect.serializer import settings_target


def manifests(**tags: str) -> list[ManifestRecord]:
    """Manifests of the configured database carrying every given tag."""
    target = settings_target()

    async def query() -> list[ManifestRecord]:
        sessions = await get_runtime().sessions(target.database_url)
        async with sessions() as session:
            return await find_manifests(session, tags=tags)

    return get_runtime().run(query())


def contents(manifest_id: uuid.UUID) -> list[ContentRecord]:
    target = settings_target()

    async def query() -> list[ContentRecord]:
        sessions = await get_runtime().sessions(target.database_url)
        async with sessions() as session:
            return await get_contents(session, manifest_id)

    return get_runtime().run(query())


def result_key(storage_key: str) -> ResultKey | None:
    target = settings_target()

    async def query() -> ResultKey | None:
        sessions = await get_runtime().sessions(target.database_url)
        async with sessions() as session:
            return await get_result_key(session, storage_key)

    return get_runtime().run(query())
