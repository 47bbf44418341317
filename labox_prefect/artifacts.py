"""A Prefect Markdown artifact for every saved result: the result catalog of the Prefect UI.

- **Key** ``labox-<flow>-<task>`` (``labox-<flow>`` for a flow's return value), slugified
  to Prefect's rule (lowercase letters, numbers and dashes, prefect.artifacts) and at most
  64 characters: Prefect's Artifacts page lists one entry per key, each with its versions.
- **Description**: ``task → Type shape · size · a few user tags``, the line the UI shows on
  cards and lists.
- **Body**: a preview of the value (labox_prefect.preview), then a compact details table
  (content, format, size, hash prefix, where the bytes are: the storage and the end of the
  key) that fits the artifact page at 1400 px.

On by default; LABOX_ARTIFACTS=false turns it off. Artifacts are published off the task's
critical path (labox_prefect.publication); a failure is logged, never raised.
"""

from __future__ import annotations

import re

from prefect.client.schemas.actions import ArtifactCreate

from labox_prefect.preview import escape, human_size, table
from labox_prefect.settings import current_settings
from labox_prefect.summary import ResultSummary

KEY_LENGTH = 64
_PART_LENGTH = 28
_TAGS_SHOWN = 3
_STORAGE_SHOWN = 36
_KEY_SHOWN = 12


def artifacts_enabled() -> bool:
    """Whether results publish artifacts (LABOX_ARTIFACTS, on unless set false)."""
    return current_settings().artifacts


def slug(text: str, length: int = _PART_LENGTH) -> str:
    """``text`` as lowercase letters, numbers and single dashes, at most ``length`` long."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-")


def artifact_key(summary: ResultSummary) -> str:
    """``labox-<flow>-<task>``, or ``labox-<flow>`` for a flow's own result; a flow whose
    name starts with "labox" is not prefixed twice (``labox-demo-measure``)."""
    parts = [slug(name) for name in (summary.flow_name, summary.task_name) if name]
    parts = [part for part in parts if part]
    if not parts or not re.match(r"labox(-|$)", parts[0]):  # no labox-labox-demo-...
        parts.insert(0, "labox")
    return "-".join(parts)[:KEY_LENGTH].strip("-")


def artifact_description(summary: ResultSummary) -> str:
    """One Markdown line: what was saved, how big, with a few user tags."""
    what = summary.task_name or summary.flow_name or "result"
    shape = f" {summary.shape}" if summary.shape else ""
    line = f"**{escape(what)}** → `{summary.value_type}`{shape} · {human_size(summary.size)}"
    tags = sorted(summary.user_tags.items())
    if tags:
        shown = ", ".join(f"{escape(key)}={escape(value)}" for key, value in tags[:_TAGS_SHOWN])
        more = f" (+{len(tags) - _TAGS_SHOWN})" if len(tags) > _TAGS_SHOWN else ""
        line += f" · {shown}{more}"
    return line


def artifact_markdown(summary: ResultSummary) -> str:
    """The artifact's body: the preview, the tags, then the details in a compact table."""
    shape = f", {summary.shape}" if summary.shape else ""
    details = table(
        [
            {
                "content": line.key,
                "format": _short_media_type(line.media_type),
                "size": human_size(line.size),
                "hash": line.digest,
                "stored in": _shorten(line.storage),
            }
            for line in summary.contents
        ]
    )
    tags = " · ".join(
        f"{escape(key)}={escape(value)}" for key, value in sorted(summary.user_tags.items())
    )
    return "\n\n".join(
        [
            f"### `{summary.value_type}`{shape} · {human_size(summary.size)}",
            summary.preview,
            f"**Tags:** {tags}" if tags else "**Tags:** none",
            "#### Details",
            f"Record `{summary.manifest_id}`{_stored_class(summary.class_name)} "
            f"in {escape(summary.database)}",
            details,
        ]
    )


def artifact_request(summary: ResultSummary) -> ArtifactCreate:
    """The API request creating the artifact, tied to the result's task and flow runs."""
    return ArtifactCreate(
        key=artifact_key(summary),
        type="markdown",
        description=artifact_description(summary),
        data=artifact_markdown(summary),
        task_run_id=summary.task_run_id,
        flow_run_id=summary.flow_run_id,
    )


def _short_media_type(media_type: str) -> str:
    """``application/vnd.apache.parquet`` → ``parquet``, ``application/json`` → ``json``."""
    subtype = media_type.partition(";")[0].rpartition("/")[2]
    return subtype.rpartition(".")[2].removeprefix("x-") or media_type


def _shorten(storage: str) -> str:
    """``labox.file@v1 …8e2ccab1df1e``: the storage's name, and the end of a long key."""
    if len(storage) <= _STORAGE_SHOWN:
        return storage
    name, _, key = storage.partition(" ")
    return f"{name} …{key[-_KEY_SHOWN:]}" if key else storage[: _STORAGE_SHOWN - 1] + "…"


def _stored_class(class_name: str) -> str:
    """`` (module.Class)`` for a Storable of the user's; nothing for a plain value's wrapper."""
    if class_name.rpartition(".")[2] == "StorableValue":
        return ""
    return f" ({escape(class_name)})"


__all__ = [
    "artifact_description",
    "artifact_key",
    "artifact_markdown",
    "artifact_request",
    "artifacts_enabled",
    "slug",
]
