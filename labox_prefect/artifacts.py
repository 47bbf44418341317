"""A Prefect table artifact for every persisted result, so the UI shows what was stored.

One row per content: the record id, its class, the content's key, type, size and hash, and
where its bytes are. The tags go in the description. On by default; LABOX_ARTIFACTS=false
turns it off. An artifact is a convenience: failing to publish one is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.artifacts import acreate_table_artifact, create_table_artifact

from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.settings import current_settings
from labox_prefect.target import Target

logger = logging.getLogger(__name__)

_HASH_SHOWN = 16


def artifacts_enabled() -> bool:
    """Whether results publish artifacts (LABOX_ARTIFACTS, on unless set false)."""
    return current_settings().artifacts


def result_table(
    manifest: ManifestRecord, contents: list[ContentRecord], class_name: str
) -> list[dict[str, Any]]:
    """The artifact's rows: one per content of the saved record."""
    return [
        {
            "record": str(manifest.id),
            "class": class_name,
            "content": content.content_key,
            "type": content.content_type,
            "size": content.content_size,
            "hash": f"{content.content_hash_algorithm}:{content.content_hash[:_HASH_SHOWN]}…",
            "storage": _location(content),
        }
        for content in contents
    ]


def result_description(manifest: ManifestRecord, target: Target) -> str:
    """Markdown naming the record and listing its tags."""
    tags = ", ".join(f"`{key}={value}`" for key, value in sorted(manifest.tags.items()))
    return (
        f"Labox record `{manifest.id}` in {target.database_label}"
        f" (storage {target.storage_url}). Tags: {tags or 'none'}."
    )


def publish_result_artifact(
    manifest: ManifestRecord, contents: list[ContentRecord], class_name: str, target: Target
) -> None:
    """Publish the artifact from sync code; never raises."""
    try:
        create_table_artifact(
            table=result_table(manifest, contents, class_name),
            description=result_description(manifest, target),
            _sync=True,  # type: ignore[call-arg]
        )
    except Exception as error:
        logger.warning("labox: could not publish the artifact of %s: %s", manifest.id, error)


async def apublish_result_artifact(
    manifest: ManifestRecord, contents: list[ContentRecord], class_name: str, target: Target
) -> None:
    """Publish the artifact from async code; never raises."""
    try:
        await acreate_table_artifact(
            table=result_table(manifest, contents, class_name),
            description=result_description(manifest, target),
        )
    except Exception as error:
        logger.warning("labox: could not publish the artifact of %s: %s", manifest.id, error)


def _location(content: ContentRecord) -> str:
    config = content.storage_config or {}
    key = config.get("key")
    if isinstance(key, str):
        return f"{content.storage_name} {key}"
    return f"{content.storage_name} (in the content record)"


__all__ = [
    "apublish_result_artifact",
    "artifacts_enabled",
    "publish_result_artifact",
    "result_description",
    "result_table",
]
