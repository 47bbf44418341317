"""Queries the integration tests share: records by tag, straight from the core."""

from __future__ import annotations

import uuid

from labox_prefect.core import ContentRecord, ManifestRecord, find_manifests, get_contents
from labox_prefect.persistence import open_session
from labox_prefect.result_keys import ResultKey, get_result_key
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target


def manifests(**tags: str) -> list[ManifestRecord]:
    """Manifests of the configured database carrying every given tag."""
    target = Target.from_settings()

    async def query() -> list[ManifestRecord]:
        async with open_session(target) as session:
            return await find_manifests(session, tags=tags)

    return get_runtime().run(query())


def contents(manifest_id: uuid.UUID) -> list[ContentRecord]:
    target = Target.from_settings()

    async def query() -> list[ContentRecord]:
        async with open_session(target) as session:
            return await get_contents(session, manifest_id)

    return get_runtime().run(query())


def result_key(storage_key: str) -> ResultKey | None:
    target = Target.from_settings()

    async def query() -> ResultKey | None:
        async with open_session(target) as session:
            return await get_result_key(session, storage_key)

    return get_runtime().run(query())
