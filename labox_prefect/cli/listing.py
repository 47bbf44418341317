"""The work of ``labox-prefect results``: list, show and write results.

labox_prefect.cli.results holds the commands' options, and imports this module when one of
them runs.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import func, select

from labox_prefect.cli.export import ExportError, FileNameError, export
from labox_prefect.cli.ids import SHORT_ID, resolve_id
from labox_prefect.cli.output import (
    class_missing_fix,
    console,
    human_size,
    missing_database_file,
    parse_deployment,
    parse_since,
    parse_tags,
    print_error,
    reported_errors,
    selected_target,
    usage_error,
)
from labox_prefect.cli.peek import peek_contents, preview_text, worth_loading
from labox_prefect.context import DEPLOYMENT_NAME, FLOW_NAME
from labox_prefect.core import ContentRecord, get_contents
from labox_prefect.errors import ResultClassNotRegisteredError
from labox_prefect.persistence import open_session, registry_for
from labox_prefect.preview import cut
from labox_prefect.results import ResultRef, find_results, get_result
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target, is_embedded_default

MORE_MATCH = "More results match: raise --limit (0: all) or filter (--tag, --flow, --since)."
"""The line after a list that ``--limit`` cut (a note on stderr with ``--json``)."""
PANEL_BORDER = 4
"""Columns a panel's border and padding take: its text is the terminal's width less these."""


def list_results(
    tag: list[str],
    *,
    flow: str | None,
    task: str | None,
    flow_run: str | None,
    prefect_tags: list[str],
    since: str | None,
    deployment: str | None,
    limit: int,
    wide: bool,
    as_json: bool,
) -> None:
    """``results ls``: the options as the command line gave them (see its help)."""
    tags = parse_tags(tag)
    moment = parse_since(since) if since is not None else None
    with reported_errors():
        target = selected_target()
        nothing_saved = _nothing_saved_note(target)
        wanted = [tags]
        if deployment is not None:
            wanted = [{**tags, **extra} for extra in deployment_filters(deployment)]
        found = {
            ref.manifest_id: ref
            for extra in wanted
            for ref in find_results(
                tags=extra,
                flow_name=flow,
                task_name=task,
                flow_run_id=flow_run,
                prefect_tags=prefect_tags,
                since=moment,
                limit=limit + 1 if limit else 0,  # one more than shown: whether more match
                block=target,
            )
        }
        refs = sorted(found.values(), key=lambda ref: ref.created_at, reverse=True)
        more = bool(limit) and len(refs) > limit
        refs = refs[:limit] if limit else refs
        sizes = get_runtime().run(_sizes(target, [ref.manifest_id for ref in refs]))
        if as_json:
            rows = [{**result_json(ref), "size": sizes.get(ref.manifest_id)} for ref in refs]
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            if more:
                print_error(f"[bold]Note:[/] {escape(MORE_MATCH)}")
            return
        lines = result_lines(refs, sizes, console.width, wide=wide, more=more)
        for line in [*lines, MORE_MATCH] if more else lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if nothing_saved is not None:
        print_error(f"[bold]Note:[/] {escape(nothing_saved)}")


def _nothing_saved_note(target: Target) -> str | None:
    """For the embedded default before its first save, a note saying where results would be:
    a mistyped LABOX_HOME would otherwise look like a store with nothing matching."""
    database = missing_database_file(target)
    if database is None or not is_embedded_default(target):
        return None
    return (
        f"Nothing is saved under LABOX_HOME yet (no database at {database}). Results saved "
        f"elsewhere are read with LABOX_HOME or LABOX_DATABASE_URL set as the flows had them, "
        f"or --block NAME."
    )


def deployment_filters(text: str) -> list[dict[str, str]]:
    """Tags matching results of deployment ``flow/deployment`` (``--deployment``).

    Records name it ``flow/deployment`` (Prefect's unique name); records saved before
    labox-prefect 0.2 hold the deployment's name alone, with the flow in ``prefect.flow_name``.
    """
    flow, name = parse_deployment(text)
    return [{DEPLOYMENT_NAME: text}, {DEPLOYMENT_NAME: name, FLOW_NAME: flow}]


def show_result(manifest_id: str, *, preview: bool) -> None:
    """``results show``: a record, its tags and contents, and a preview of its value."""
    with reported_errors():
        ref = get_result(resolve_id(manifest_id), block=selected_target())
        contents = get_runtime().run(_contents(ref.target, ref.manifest_id))
        console.print(record_panel(ref))
        console.print(tags_table(ref))
        console.print(contents_table(contents))
    if not preview:
        return
    missing: ResultClassNotRegisteredError | None = None
    with reported_errors():
        registry = registry_for(ref.target)
        if worth_loading(contents, registry):
            try:
                value = ref.load()
            except ResultClassNotRegisteredError as error:  # show its bytes instead
                missing = error
            else:
                text = escape(preview_text(value, console.width - PANEL_BORDER))
                console.print(Panel(text, title="Preview", title_align="left", expand=False))
                return
        peeks = peek_contents(contents, registry, console.width - PANEL_BORDER)
        for peek in get_runtime().run(peeks):  # each head only
            text = f"[bold]{escape(peek.title)}[/]\n{escape(peek.text)}"
            title = f"Preview of {escape(peek.key)}"
            console.print(Panel(text, title=title, title_align="left", expand=False))
    if missing is not None:
        print_error(f"[bold]Note:[/] {escape(class_missing_fix(missing))}")


def write_result(manifest_id: str, output: Path) -> None:
    """``results get``: the value of a record written to ``output`` (checked by the command)."""
    with reported_errors():
        ref = get_result(resolve_id(manifest_id), block=selected_target())
        value = ref.load()
        try:
            kind = export(value, output)
        except OSError as error:
            usage_error(
                f"Cannot write {output}: {error.strerror or error}; choose a FILE you may write."
            )
        except FileNameError as error:
            usage_error(str(error))
        except ExportError as error:
            if error.parts:
                load = f"value = get_result('{ref.manifest_id}').load()"
                steps = "; ".join(part.python("value") for part in error.parts)
                usage_error(
                    f"{error} Write each in Python: `from labox_prefect.results import "
                    f"get_result; {load}; {steps}`, or see it with `labox-prefect results "
                    f"show {manifest_id}`."
                )
            usage_error(
                f"{error} Print it with `labox-prefect results show {manifest_id}`, or load it "
                f"in Python: labox_prefect.find_results(...) gives ResultRefs, and "
                f"ResultRef.load() the value."
            )
    console.print(f"Wrote {escape(str(output))} ({kind}, {human_size(output.stat().st_size)})")


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


_AGE, _TYPE, _SIZE, _GAP = 5, 14, 9, "  "


def result_lines(
    refs: list[ResultRef],
    sizes: dict[uuid.UUID, int],
    width: int,
    *,
    wide: bool = False,
    more: bool = False,
) -> list[str]:
    """A title, a header and one line per result that fits ``width`` columns; the title
    says when ``more`` results match than are listed.

    The flow/task column takes what the others leave (cut with "…"); ``wide`` keeps every
    name whole and adds the tags (user tags, then ``#`` Prefect run tags).
    """
    fixed = SHORT_ID + _AGE + _TYPE + _SIZE + 4 * len(_GAP)
    room = max(width - fixed, 12)
    header = ["ID".ljust(SHORT_ID), "AGE".ljust(_AGE), "FLOW/TASK", "TYPE", "SIZE"]
    rows = [
        [
            ref.manifest_id.hex[:SHORT_ID],
            _age(ref.created_at),
            _where(ref),
            result_type(ref),
            human_size(sizes.get(ref.manifest_id)),
        ]
        for ref in refs
    ]
    if wide:
        room = max([len(row[2]) for row in rows] + [room])
    counted = f"{len(refs)} result{'' if len(refs) == 1 else 's'}"
    title = f"the newest {counted} (more match)" if more else f"{counted} (newest first)"
    lines = [title, _line(header, room, wide)]
    for row, ref in zip(rows, refs, strict=True):
        line = _line(row, room, wide)
        if wide:
            tags = [f"{key}={value}" for key, value in sorted(ref.user_tags.items())]
            line += _GAP + " ".join(tags + [f"#{tag}" for tag in ref.prefect_tags])
        lines.append(line.rstrip())
    return lines


def result_type(ref: ResultRef) -> str:
    """The value's own type (recorded at save time), else the storable class's name."""
    recorded = ref.result_type  # module:qualname
    return recorded.rpartition(":")[2] if recorded else _short_class(ref)


def _line(cells: list[str], room: int, wide: bool) -> str:
    ident, age, where, kind, size = cells
    return _GAP.join(
        [
            ident.ljust(SHORT_ID),
            age.rjust(_AGE),
            (where if wide else cut(where, room)).ljust(room),
            cut(kind, _TYPE).ljust(_TYPE),
            size.rjust(_SIZE),
        ]
    )


def _where(ref: ResultRef) -> str:
    task = ref.task_name or ("(flow)" if ref.kind == "flow" else "-")
    return f"{ref.flow_name or '-'}/{task}"


_AGE_UNITS = (("y", 365 * 86400, 1), ("w", 7 * 86400, 2), ("d", 86400, 1), ("h", 3600, 1))


def _age(moment: datetime) -> str:
    """How long ago, in the largest whole unit: ``now``, ``12m``, ``3h``, ``5d``, ``3w``, ``2y``.

    Weeks start at 2 (``13d``, then ``2w``), so the first fortnight reads in days.
    """
    seconds = max((datetime.now(UTC) - moment).total_seconds(), 0.0)
    for unit, size, least in _AGE_UNITS:
        if seconds >= size * least:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds // 60)}m" if seconds >= 60 else "now"


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
            f"{content.content_hash_algorithm} hash",
            content.content_hash,  # a line of its own: whole at 80 columns
            f"serializer {content.serializer_name} ({content.serializer_type})",
            f"storage {_location(content)}",
        ]
        table.add_row(escape(content.content_key), escape("\n".join(details)))
    return table


def _location(content: ContentRecord) -> str:
    key = (content.storage_config or {}).get("key")
    if isinstance(key, str):
        return f"{content.storage_name} {key}"
    return f"{content.storage_name} (in the content record)"


def _short_class(ref: ResultRef) -> str:
    name = ref.storable_class_name()
    if name is None:
        return str(ref.class_id)
    short = name.rsplit(".", 1)[-1]
    return "value" if short == "StorableValue" else short  # a record from before result_type


def _local(moment: datetime) -> str:
    """A time in the local timezone, as a person reading a terminal expects, with its offset
    (``2026-12-01 02:47:41+00:00``)."""
    return moment.astimezone().isoformat(sep=" ", timespec="seconds")


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


async def _sizes(target: Target, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The total size of each record's contents, in bytes (one grouped query)."""
    if not ids:
        return {}
    async with open_session(target, create_schema=False) as session:
        statement = (
            select(ContentRecord.manifest_id, func.sum(ContentRecord.content_size))
            .where(ContentRecord.manifest_id.in_(ids))
            .group_by(ContentRecord.manifest_id)
        )
        return {manifest_id: int(total) for manifest_id, total in await session.execute(statement)}


async def _contents(target: Target, manifest_id: uuid.UUID) -> list[ContentRecord]:
    async with open_session(target, create_schema=False) as session:
        return await get_contents(session, manifest_id)


__all__ = ["list_results", "result_json", "show_result", "write_result"]
