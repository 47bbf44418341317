"""The result catalog of a flow run: one Prefect table artifact listing what the run saved.

- **One artifact per flow run** (type ``table``), tied to the flow run (``flow_run_id``, no
  task run), created with the run's first results and updated with the later ones
  (labox_prefect.publication decides when). A result saved outside any flow has a catalog of
  its own task run instead (``task_run_id`` set, no flow run).
- **Key** ``labox-<flow>`` (``labox-<task>`` outside a flow): the name slugified to Prefect's
  rule (lowercase letters, numbers and dashes, prefect.artifacts), at most 64 characters,
  not prefixed twice (``labox-demo``, not ``labox-labox-demo``). Prefect's Artifacts page
  lists one entry per key whose versions are the flow runs; the run's Artifacts tab shows
  its table.
- **Data**: a JSON list of rows (a JSON string, as Prefect's own ``create_table_artifact``
  stores it), one row per result in save order, each with the columns ``task``, ``type``,
  ``shape``, ``size`` (binary units), ``preview`` (one line of at most 80 characters,
  labox_prefect.preview), ``tags`` (the user's tags, ``k=v``, cut to 60 characters) and
  ``record`` (the record id ``labox-prefect results show`` and ``find_results`` take): the
  UI shows the columns in this order, the first five within 1400 px.
  Every cell is plain text, so a row is at most about 400 bytes of JSON.
- **Bounds**: the newest ``ROWS_SHOWN`` (1,000) rows are kept and shown; the description
  then says so.
- **Description** (Markdown): how many results, their total size, the database(s) they are
  in (password hidden, Target.database_label) and the command that shows one. No storage
  location, key or credential reaches an artifact.

On by default; LABOX_ARTIFACTS=false turns it off. Artifacts are published off the task's
critical path (labox_prefect.publication); a failure is logged, never raised.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from dataclasses import dataclass, field

from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

from labox_prefect.preview import cut, human_size
from labox_prefect.settings import current_settings
from labox_prefect.summary import ResultSummary

KEY_LENGTH = 64
ROWS_SHOWN = 1000
"""Rows a catalog keeps and shows: the newest ones."""
_PART_LENGTH = 28
_TASK_SHOWN = 40
_TYPE_SHOWN = 30
_TAGS_SHOWN = 60
_DATABASES_SHOWN = 2


def artifacts_enabled() -> bool:
    """Whether results publish artifacts (LABOX_ARTIFACTS, on unless set false)."""
    return current_settings().artifacts


def slug(text: str, length: int = _PART_LENGTH) -> str:
    """``text`` as lowercase letters, numbers and single dashes, at most ``length`` long."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-")


def catalog_key(summary: ResultSummary) -> str:
    """``labox-<flow>``, or ``labox-<task>`` for a result saved outside a flow; a name that
    starts with "labox" is not prefixed twice (``labox-demo``)."""
    name = summary.flow_name if summary.flow_run_id is not None else summary.task_name
    part = slug(name) if name else ""
    if not re.match(r"labox(-|$)", part):  # no labox-labox-demo
        part = f"labox-{part}" if part else "labox"
    return part[:KEY_LENGTH].strip("-")


def catalog_row(summary: ResultSummary) -> dict[str, str]:
    """The result's row: task, type, shape, size, preview line, user tags and record id."""
    tags = ", ".join(f"{key}={value}" for key, value in sorted(summary.user_tags.items()))
    task = summary.task_name or f"{summary.flow_name or ''} (flow's result)".strip()
    return {
        "task": cut(task, _TASK_SHOWN),
        "type": cut(summary.value_type, _TYPE_SHOWN),
        "shape": cut(summary.shape or "", _TYPE_SHOWN),
        "size": human_size(summary.size),
        "preview": summary.preview,
        "tags": cut(tags, _TAGS_SHOWN),
        "record": str(summary.manifest_id),
    }


@dataclass
class Catalog:
    """The results of one flow run (or of one task run outside a flow), as its artifact shows.

    Holds at most ``ROWS_SHOWN`` rows (the newest); ``count`` and ``size`` cover them all.
    """

    key: str
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    rows: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=ROWS_SHOWN))
    count: int = 0
    size: int = 0
    databases: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, summary: ResultSummary) -> Catalog:
        """An empty catalog for the run ``summary`` came from (its flow run, else task run)."""
        flow_run_id = summary.flow_run_id
        task_run_id = summary.task_run_id if flow_run_id is None else None
        return cls(catalog_key(summary), flow_run_id, task_run_id)

    def add(self, summary: ResultSummary) -> None:
        """Add the row of ``summary``, dropping the oldest beyond ``ROWS_SHOWN``."""
        self.rows.append(catalog_row(summary))
        self.count += 1
        self.size += summary.size
        if summary.database not in self.databases:
            self.databases = [*self.databases, summary.database][-_DATABASES_SHOWN:]

    def description(self) -> str:
        """``**3 results**, 1.2 KiB in total, in `sqlite+aiosqlite:///…`; …`` (Markdown)."""
        plural = "" if self.count == 1 else "s"
        text = f"**{self.count:,} result{plural}**, {human_size(self.size)} in total"
        if self.count > len(self.rows):
            text += f", latest {len(self.rows):,} shown"
        if self.databases:
            text += ", in " + " and ".join(f"`{name}`" for name in self.databases)
        return text + ". `labox-prefect results show <record>` shows one."

    def data(self) -> str:
        """The rows as the JSON text Prefect's table artifacts hold."""
        return json.dumps(list(self.rows), ensure_ascii=False)

    def create_request(self) -> ArtifactCreate:
        """The API request creating the artifact, tied to the flow run (or task run)."""
        return ArtifactCreate(
            key=self.key,
            type="table",
            description=self.description(),
            data=self.data(),
            flow_run_id=self.flow_run_id,
            task_run_id=self.task_run_id,
        )

    def update_request(self) -> ArtifactUpdate:
        """The API request replacing the artifact's rows and description."""
        return ArtifactUpdate(data=self.data(), description=self.description())


__all__ = [
    "KEY_LENGTH",
    "ROWS_SHOWN",
    "Catalog",
    "artifacts_enabled",
    "catalog_key",
    "catalog_row",
    "slug",
]
