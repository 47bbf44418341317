"""``labox-prefect results``: list stored results by tag, and show one in detail."""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import ColumnElement, String, cast, func, select

from labox_prefect.cli.output import (
    console,
    fail,
    human_size,
    parse_since,
    parse_tags,
    reported_errors,
    selected_target,
)
from labox_prefect.core import ContentRecord, ManifestRecord, get_contents
from labox_prefect.core.builtin import StorableStream
from labox_prefect.persistence import open_session
from labox_prefect.results import ResultRef, find_results, get_result
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target

PREVIEW_CHARS = 600
"""Characters of a loaded value's repr that ``show`` prints."""
PREVIEW_ROWS = 5
"""Rows of a DataFrame that ``show`` prints."""
SHORT_ID = 8
"""Hex digits of a record id that ``ls`` shows; ``show`` takes any unique prefix."""
_ID_PREFIX = re.compile(r"[0-9a-f]{4,32}")

results_app = typer.Typer(
    name="results",
    help="Find stored results by tag, and show what one holds.",
    no_args_is_help=True,
)


@results_app.command("ls")
def list_results(
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="key=value the result must carry (repeatable)."),
    ] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Flow name.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task name.")] = None,
    flow_run: Annotated[str | None, typer.Option("--flow-run", help="Flow run id.")] = None,
    prefect_tag: Annotated[
        list[str] | None,
        typer.Option("--prefect-tag", help="Prefect run tag the result must have (repeatable)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only newer results: 30m, 2h, 3d, 1w, or an ISO date or time."
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="At most this many (0: all).")
    ] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array (machine readable).")
    ] = False,
) -> None:
    """List stored results, newest first."""
    tags = parse_tags(tag or [])
    moment = parse_since(since) if since is not None else None
    with reported_errors():
        refs = find_results(
            tags=tags,
            flow_name=flow,
            task_name=task,
            flow_run_id=flow_run,
            prefect_tags=prefect_tag or [],
            since=moment,
            limit=limit or None,
            block=selected_target(),
        )
        if as_json:
            sys.stdout.write(json.dumps([result_json(ref) for ref in refs], indent=2) + "\n")
            return
        console.print(results_table(refs))


@results_app.command("show")
def show_result(
    manifest_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="The record id, or its first digits (at least 4)."),
    ],
    preview: Annotated[
        bool,
        typer.Option("--preview/--no-preview", help="Load the value and print a short preview."),
    ] = True,
) -> None:
    """Show one result: its record, tags, contents and a preview of its value."""
    with reported_errors():
        ref = get_result(_resolve_id(manifest_id), block=selected_target())
        contents = get_runtime().run(_contents(ref.target, ref.manifest_id))
        console.print(record_panel(ref))
        console.print(tags_table(ref))
        console.print(contents_table(contents))
    if not preview:
        return
    with reported_errors():
        value = ref.load()
    console.print(Panel(preview_of(value), title="Preview", title_align="left", expand=False))


# --- rendering -------------------------------------------------------------------------------


def result_json(ref: ResultRef) -> dict[str, Any]:
    """A result as plain JSON: ids, time, class and every tag."""
    return {
        "id": str(ref.manifest_id),
        "created_at": ref.created_at.isoformat(),
        "class_id": str(ref.class_id),
        "class": ref.storable_class_name(),
        "kind": ref.kind,
        "flow_name": ref.flow_name,
        "flow_run_id": _str_or_none(ref.flow_run_id),
        "flow_run_name": ref.flow_run_name,
        "task_name": ref.task_name,
        "task_run_id": _str_or_none(ref.task_run_id),
        "deployment_id": _str_or_none(ref.deployment_id),
        "deployment_name": ref.deployment_name,
        "prefect_tags": list(ref.prefect_tags),
        "tags": dict(sorted(ref.tags.items())),
    }


def results_table(refs: list[ResultRef]) -> Table:
    """One row per result, narrow enough for a terminal: ids are shortened (see SHORT_ID)."""
    table = Table(
        title=f"{len(refs)} result{'' if len(refs) == 1 else 's'} (newest first)",
        title_justify="left",
    )
    table.add_column("id", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for column in ("flow / run", "task", "class", "tags"):
        table.add_column(column, overflow="fold")
    for ref in refs:
        tags = [f"{key}={value}" for key, value in sorted(ref.user_tags.items())]
        tags += [f"#{tag}" for tag in ref.prefect_tags]
        table.add_row(
            ref.manifest_id.hex[:SHORT_ID],
            ref.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            escape(f"{ref.flow_name or '-'} / {ref.flow_run_name or '-'}"),
            escape(ref.task_name or ("(flow result)" if ref.kind == "flow" else "-")),
            escape(_short_class(ref)),
            escape(", ".join(tags)),
        )
    return table


def record_panel(ref: ResultRef) -> Panel:
    lines = [
        f"[bold]id[/]          {ref.manifest_id}",
        f"[bold]created[/]     {_local(ref.created_at)}",
        f"[bold]class[/]       {escape(ref.storable_class_name() or '(not registered here)')}",
        f"[bold]class id[/]    {ref.class_id}",
        f"[bold]database[/]    {escape(ref.target.database_label)}",
        f"[bold]storage[/]     {escape(ref.target.storage_url)}",
    ]
    return Panel("\n".join(lines), title="Labox record", title_align="left", expand=False)


def tags_table(ref: ResultRef) -> Table:
    table = Table(title="Tags", title_justify="left")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in sorted(ref.tags.items()):
        table.add_row(escape(key), escape(value))
    return table


def contents_table(contents: list[ContentRecord]) -> Table:
    """Each content as a small block of lines, readable at any terminal width."""
    table = Table(title="Contents", title_justify="left", show_header=False, show_lines=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("details", overflow="fold")
    for content in contents:
        content_type = content.content_type or "-"
        if content.content_encoding:
            content_type += f" ({content.content_encoding})"
        details = [
            f"{content_type}, {human_size(content.content_size)}",
            f"{content.content_hash_algorithm}:{content.content_hash}",
            f"serializer {content.serializer_name} ({content.serializer_type})",
            f"storage {_location(content)}",
        ]
        table.add_row(escape(content.content_key), escape("\n".join(details)))
    return table


def preview_of(value: Any) -> str:
    """A short, escaped text view of a loaded value."""
    if isinstance(value, pd.DataFrame):
        head = value.head(PREVIEW_ROWS).to_string()
        return escape(f"DataFrame, {value.shape[0]} rows x {value.shape[1]} columns\n{head}")
    if isinstance(value, StorableStream):
        return "An async stream: it is read when iterated, so show does not read it."
    text = repr(value)
    if len(text) > PREVIEW_CHARS:
        text = f"{text[:PREVIEW_CHARS]}… ({len(text) - PREVIEW_CHARS} more characters)"
    return escape(f"{type(value).__qualname__}: {text}")


def _location(content: ContentRecord) -> str:
    key = (content.storage_config or {}).get("key")
    if isinstance(key, str):
        return f"{content.storage_name} {key}"
    return f"{content.storage_name} (in the content record)"


def _short_class(ref: ResultRef) -> str:
    name = ref.storable_class_name()
    return name.rsplit(".", 1)[-1] if name else str(ref.class_id)


def _local(moment: datetime) -> str:
    """A time in the local timezone, as a person reading a terminal expects."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _resolve_id(text: str) -> uuid.UUID:
    """A full record id, or the one record whose id starts with these hex digits."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        pass
    prefix = text.strip().lower().replace("-", "")
    if not _ID_PREFIX.fullmatch(prefix):
        fail(
            f"{text!r} is not a record id: give the UUID (or its first 4 or more hex digits) "
            f"that `labox-prefect results ls` shows."
        )
    found = get_runtime().run(_ids_starting_with(selected_target(), prefix))
    if not found:
        fail(f"No record id starts with {prefix!r} in the configured database.")
    if len(found) > 1:
        fail(
            f"Several record ids start with {prefix!r} ({', '.join(map(str, found))}, ...); "
            f"give more digits."
        )
    return found[0]


async def _ids_starting_with(target: Target, prefix: str) -> list[uuid.UUID]:
    """At most two ids with this hex prefix (two are enough to call a prefix ambiguous).

    SQLite stores a UUID as 32 hex digits; PostgreSQL prints it with hyphens, removed here.
    """
    async with open_session(target) as session:
        text: ColumnElement[str] = cast(ManifestRecord.id, String)
        if session.get_bind().dialect.name == "postgresql":
            text = func.replace(text, "-", "")
        statement = select(ManifestRecord.id).where(text.like(f"{prefix}%")).limit(2)
        return list(await session.scalars(statement))


async def _contents(target: Target, manifest_id: uuid.UUID) -> list[ContentRecord]:
    async with open_session(target) as session:
        return await get_contents(session, manifest_id)


__all__ = ["preview_of", "result_json", "results_app"]
