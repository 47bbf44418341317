"""One saved result told in a few fields: what the UI artifact and the Prefect event say.

Built on the publisher thread (labox_prefect.publication), moments after the result was saved,
from the value itself (labox_prefect.preview bounds the cost); everything after that
(artifact, event) reads only this summary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from labox_prefect.context import FLOW_NAME, FLOW_RUN_ID, PREFIX, TASK_NAME, TASK_RUN_ID
from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.preview import preview_markdown, shape_of, type_name

_HASH_SHOWN = 12


@dataclass(frozen=True)
class ContentLine:
    """One content of the record, as the artifact's details table shows it."""

    key: str
    media_type: str
    size: int
    digest: str
    storage: str


@dataclass(frozen=True)
class ResultSummary:
    """A saved result: ids, tags, class, the value's own type, shape, size and preview."""

    manifest_id: uuid.UUID
    tags: dict[str, str]
    class_name: str
    value_type: str
    shape: str | None
    size: int
    preview: str
    """Markdown of the value's head ("" when only the event was asked for)."""
    database: str
    contents: list[ContentLine] = field(default_factory=list)

    @property
    def flow_name(self) -> str | None:
        return self.tags.get(FLOW_NAME)

    @property
    def task_name(self) -> str | None:
        return self.tags.get(TASK_NAME)

    @property
    def task_run_id(self) -> uuid.UUID | None:
        return _uuid(self.tags.get(TASK_RUN_ID))

    @property
    def flow_run_id(self) -> uuid.UUID | None:
        return _uuid(self.tags.get(FLOW_RUN_ID))

    @property
    def user_tags(self) -> dict[str, str]:
        """The tags the user gave (not the ``prefect.*`` ones the run context adds)."""
        return {key: value for key, value in self.tags.items() if not key.startswith(PREFIX)}


def summarize(
    value: Any,
    manifest: ManifestRecord,
    contents: list[ContentRecord],
    class_name: str,
    database: str,
    preview: bool = True,
) -> ResultSummary:
    """The summary of ``value`` just saved as ``manifest`` with ``contents``; its preview
    (the costly part: a table of a frame's head, an image) only when ``preview``."""
    return ResultSummary(
        manifest_id=manifest.id,
        tags=dict(manifest.tags),
        class_name=class_name,
        value_type=type_name(value),
        shape=shape_of(value),
        size=sum(content.content_size for content in contents),
        preview=preview_markdown(value) if preview else "",
        database=database,
        contents=[_line(content) for content in contents],
    )


def _line(content: ContentRecord) -> ContentLine:
    config = content.storage_config or {}
    key = config.get("key")
    where = f"{content.storage_name} {key}" if isinstance(key, str) else content.storage_name
    digest = f"{content.content_hash_algorithm}:{content.content_hash[:_HASH_SHOWN]}…"
    return ContentLine(
        content.content_key, content.content_type, content.content_size, digest, where
    )


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return None if text is None else uuid.UUID(text)
    except ValueError:
        return None


__all__ = ["ContentLine", "ResultSummary", "summarize"]
