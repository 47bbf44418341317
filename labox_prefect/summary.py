"""One saved result told in a few fields: what the UI artifact's row and the Prefect event say.

Built on the publisher thread (labox_prefect.publication), moments after the result was saved,
from the value itself (labox_prefect.preview bounds the cost); everything after that
(artifact row, event) reads only this summary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from labox_prefect.context import FLOW_NAME, FLOW_RUN_ID, PREFIX, TASK_NAME, TASK_RUN_ID
from labox_prefect.core import ContentRecord, ManifestRecord
from labox_prefect.preview import preview_line, shape_of, type_name


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
    """One line about the value (labox_prefect.preview; "" when only the event was asked for)."""
    database: str
    """The database's URL without its password (Target.database_label)."""
    content_keys: tuple[str, ...] = ()

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
    line only when ``preview`` (only the artifact shows it)."""
    return ResultSummary(
        manifest_id=manifest.id,
        tags=dict(manifest.tags),
        class_name=class_name,
        value_type=type_name(value),
        shape=shape_of(value),
        size=sum(content.content_size for content in contents),
        preview=preview_line(value) if preview else "",
        database=database,
        content_keys=tuple(content.content_key for content in contents),
    )


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return None if text is None else uuid.UUID(text)
    except ValueError:
        return None


__all__ = ["ResultSummary", "summarize"]
