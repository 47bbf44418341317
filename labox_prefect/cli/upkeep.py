"""The work of ``labox-prefect db upgrade``, ``verify``, ``gc`` and ``results rm``.

labox_prefect.cli.maintenance holds the commands' options, and imports this module when one
of them runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import make_url

from labox_prefect import migrations
from labox_prefect.cli.ids import resolve_id
from labox_prefect.cli.output import (
    console,
    err_console,
    masked,
    parse_duration,
    parse_since,
    parse_tags,
    reported_errors,
    selected_target,
    usage_error,
)
from labox_prefect.core import collect_garbage, delete_manifests, verify_manifests
from labox_prefect.core.lifecycle import (
    GarbageReport,
    RetentionReport,
    VerifyReport,
)
from labox_prefect.persistence import open_session, registry_for
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target

KEEP_LAST_GROUP = ("prefect.flow_name", "prefect.task_name")
"""The tags ``--keep-last`` groups results by: one group per flow and task."""


def upgrade_database() -> None:
    """``db upgrade``: create or migrate the target's Labox tables."""
    with reported_errors():
        url = selected_target().database_url
        _make_sqlite_folder(url)
        with err_console.status(f"Migrating {escape(masked(url))}…"):
            migrations.upgrade(url)
        core, integration = migrations.current(url)
    console.print(
        f"Database {escape(masked(url))} is at revision [bold]{core}[/] (core) and "
        f"[bold]{integration}[/] (Prefect results)."
    )


def verify(manifest_ids: list[str]) -> None:
    """``verify``: read the contents of ``manifest_ids`` (all when empty) back; exit 1 on a
    bad one."""
    with reported_errors():
        ids = [resolve_id(text) for text in manifest_ids] or None
        target = selected_target()
        with _progress("Verifying contents") as advance:
            report = get_runtime().run(_verify(target, ids, advance))
    _print_verify(report)
    if not report.ok:
        raise typer.Exit(1)


def collect(dry_run: bool, grace: str, claim: bool, forget_owners: list[str]) -> None:
    """``gc``: delete unused blobs and files of killed writes; exit 1 if any is left."""
    keep_for = parse_duration(grace)
    with reported_errors():
        target = selected_target()
        with _progress("Collecting garbage") as advance:
            report = get_runtime().run(
                _collect(target, dry_run, keep_for, claim, forget_owners, advance)
            )
    _print_garbage(report)
    if report.errors:
        raise typer.Exit(1)


def remove(
    older_than: str | None, keep_last: int | None, tag: list[str], dry_run: bool, grace: str
) -> None:
    """``results rm``: delete the results a rule selects, and their unused blobs."""
    tags = parse_tags(tag)
    before = _moment(older_than) if older_than is not None else None
    keep_for = parse_duration(grace)
    if before is None and keep_last is None and not tags:
        usage_error(
            "results rm needs a rule: give at least one of --older-than, --keep-last or --tag "
            "(rm never deletes every result)."
        )
    with reported_errors():
        target = selected_target()
        with _progress("Deleting results") as advance:
            report = get_runtime().run(
                _remove(target, before, keep_last, tags, dry_run, keep_for, advance)
            )
    _print_retention(report)


# --- work on the runtime loop ---------------------------------------------------------------


async def _verify(
    target: Target, ids: list[uuid.UUID] | None, advance: Callable[[int, int | None], None]
) -> VerifyReport:
    registry = registry_for(target)
    async with open_session(target, create_schema=False) as session:
        return await verify_manifests(session, registry, manifest_ids=ids, on_progress=advance)


async def _collect(
    target: Target,
    dry_run: bool,
    grace: timedelta,
    claim: bool,
    forget_owners: list[str],
    advance: Callable[[int, int | None], None],
) -> GarbageReport:
    registry = registry_for(target)
    async with open_session(target, create_schema=False) as session:
        return await collect_garbage(
            session,
            registry,
            dry_run=dry_run,
            grace=grace,
            claim=claim,
            forget_owners=forget_owners,
            on_progress=advance,
        )


async def _remove(
    target: Target,
    before: datetime | None,
    keep_last: int | None,
    tags: dict[str, str],
    dry_run: bool,
    grace: timedelta,
    advance: Callable[[int, int | None], None],
) -> RetentionReport:
    registry = registry_for(target)
    async with open_session(target, create_schema=False) as session:
        return await delete_manifests(
            session,
            registry,
            older_than=before,
            keep_last=keep_last,
            group_by=KEEP_LAST_GROUP if keep_last is not None else None,
            tags=tags or None,
            dry_run=dry_run,
            grace=grace,
            on_progress=advance,
        )


# --- output ---------------------------------------------------------------------------------


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr, and the ``on_progress(done, total)`` callback feeding it.

    The callback runs on the runtime thread; rich's Progress is safe to update from there.
    Without a terminal on stderr (a pipe, a log, CI) there is no bar: rich would still end
    it with an empty line, before an error that must be one line.
    """
    if not err_console.is_terminal:
        yield _no_progress
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _no_progress(done: int, total: int | None) -> None:
    """The ``on_progress`` callback when no bar is shown."""


def _print_verify(report: VerifyReport) -> None:
    problems = report.problems
    for check in problems:  # one block per problem: readable at any terminal width
        console.print(
            f"[red]{check.status.value}[/] {check.manifest_id} content "
            f"{escape(repr(check.content_key))} in {escape(check.storage_name)}"
        )
        if check.detail:
            console.print(f"    {escape(check.detail)}")
    for manifest_id in report.missing_manifests:
        console.print(f"[red]No record with id {manifest_id}.[/]")
    checked = len(report.checks)
    if report.ok:
        console.print(
            "[green]Verified 1 content: intact.[/]"
            if checked == 1
            else f"[green]Verified {checked} contents: all intact.[/]"
        )
    else:
        missing = len(report.missing_manifests)
        console.print(
            f"[red]{len(problems)} of {checked} contents failed verification"
            f"{f', {missing} records not found' if missing else ''}.[/]"
        )


def _print_garbage(report: GarbageReport) -> None:
    table = Table(title="Garbage collection" + (" (dry run)" if report.dry_run else ""))
    # Whole at 80 columns: the storage's name (labox.database@v1), and each word of a header.
    names = [storage.storage_name for storage in report.storages]
    table.add_column("storage", no_wrap=True, min_width=max(map(len, names), default=None))
    counts = ("blobs listed", "unreferenced", "young (kept)", "temp files")
    for column in (*counts, "would delete" if report.dry_run else "deleted"):
        word = max(map(len, column.split()))
        table.add_column(column, justify="right", min_width=word, max_width=max(word, 8))
    for storage in report.storages:
        table.add_row(
            escape(storage.storage_name),
            str(storage.listed),
            str(len(storage.unreferenced)),
            str(storage.young),
            str(len(storage.temporary)),
            str(len(storage.unreferenced) if report.dry_run else storage.deleted),
        )
    console.print(table)
    if report.dry_run:
        for storage in report.storages:
            for config in storage.unreferenced:
                console.print(
                    f"would delete blob {escape(storage.storage_name)} {_key(config)}",
                    soft_wrap=True,
                )
            for name in storage.temporary:
                console.print(
                    f"would delete temporary file {escape(storage.storage_name)} {name}",
                    soft_wrap=True,
                )
    for error in report.errors:
        err_console.print(f"[red]Not deleted:[/] {escape(error)}")
    young = f" {report.young} younger than {_span(report.grace)} kept." if report.young else ""
    if report.dry_run:
        console.print(
            f"{report.unreferenced} unreferenced blobs and {report.temporary} temporary files "
            f"would be deleted.{young}"
        )
    else:
        console.print(
            f"Deleted {report.deleted} of {report.unreferenced} unreferenced blobs and "
            f"{report.temporary} temporary files.{young}"
        )


def _print_retention(report: RetentionReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    if report.dry_run:
        for manifest in report.manifests:
            task = "/".join(manifest.tags.get(key, "-") for key in KEEP_LAST_GROUP)
            created = manifest.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            console.print(f"{verb} record {manifest.id} {created} {escape(task)}", soft_wrap=True)
        for storage_name, config in report.blobs.would_delete:
            console.print(f"{verb} blob {escape(storage_name)} {_key(config)}", soft_wrap=True)
    for note in dict.fromkeys(report.blobs.notes):
        err_console.print(f"[yellow]Blobs kept:[/] {escape(note)}")
    blobs = report.blobs.would_delete if report.dry_run else range(report.blobs.deleted)
    console.print(
        f"{verb.capitalize()} {len(report.manifests)} results and {len(blobs)} blobs; "
        f"{report.blobs.kept} blobs kept (still used, or younger than the grace period)."
    )


def _key(config: object) -> str:
    key = config.get("key") if isinstance(config, dict) else None
    return escape(str(key if key is not None else config))


def _span(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _moment(text: str) -> datetime:
    """``--older-than``: a duration before now, or an ISO date or time."""
    try:
        parsed = parse_since(text)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error.message), param_hint="--older-than") from None
    return datetime.now(UTC) - parsed if isinstance(parsed, timedelta) else parsed


def _make_sqlite_folder(url: str) -> None:
    """SQLite creates the database file, but not the folder it goes in."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


__all__ = ["KEEP_LAST_GROUP", "collect", "remove", "upgrade_database", "verify"]
