"""``labox-prefect db upgrade``, ``verify`` and ``gc``: looking after the stored data.

They act on the selected target (``--block NAME``, the saved ``default`` block, or
LABOX_DATABASE_URL and LABOX_STORAGE_URL), with the registry every result of this process
would use (LABOX_REGISTRY_MODULES), so the storages they see are the ones results are
saved to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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
from labox_prefect.cli.output import (
    console,
    err_console,
    fail,
    masked,
    reported_errors,
    selected_target,
)
from labox_prefect.core import collect_garbage, verify_manifests
from labox_prefect.core.lifecycle import GarbageReport, VerifyReport
from labox_prefect.persistence import registry_for
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target

db_app = typer.Typer(name="db", help="The Labox database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_database() -> None:
    """Create or migrate the Labox tables of the target's database to the newest revision."""
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


def verify(
    manifest_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[ID]...", help="Records to verify (default: all of them)."),
    ] = None,
) -> None:
    """Read every stored content back and check its hash and size.

    Exits with status 1 if any content is corrupted, missing or unreadable.
    """
    ids = [_uuid(text) for text in manifest_ids or []] or None
    with reported_errors():
        target = selected_target()
        with _progress("Verifying contents") as advance:
            report = get_runtime().run(_verify(target, ids, advance))
    _print_verify(report)
    if not report.ok:
        raise typer.Exit(1)


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete stored blobs that no record points at any more.

    Run it while no flow is saving results: a blob written just before its record commits
    could be taken for garbage.
    """
    with reported_errors():
        target = selected_target()
        with _progress("Collecting garbage") as advance:
            report = get_runtime().run(_collect(target, dry_run, advance))
    _print_garbage(report)
    if report.errors:
        raise typer.Exit(1)


# --- work on the runtime loop ---------------------------------------------------------------


async def _verify(
    target: Target, ids: list[uuid.UUID] | None, advance: Callable[[int, int | None], None]
) -> VerifyReport:
    registry = registry_for(target)
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        return await verify_manifests(session, registry, manifest_ids=ids, on_progress=advance)


async def _collect(
    target: Target, dry_run: bool, advance: Callable[[int, int | None], None]
) -> GarbageReport:
    registry = registry_for(target)
    sessions = await get_runtime().sessions(target.database_url)
    async with sessions() as session:
        return await collect_garbage(session, registry, dry_run=dry_run, on_progress=advance)


# --- output ---------------------------------------------------------------------------------


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr, and the ``on_progress(done, total)`` callback feeding it.

    The callback runs on the runtime thread; rich's Progress is safe to update from there.
    """
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
        console.print(f"[green]All {checked} contents verified.[/]")
    else:
        missing = len(report.missing_manifests)
        console.print(
            f"[red]{len(problems)} of {checked} contents failed verification"
            f"{f', {missing} records not found' if missing else ''}.[/]"
        )


def _print_garbage(report: GarbageReport) -> None:
    table = Table(title="Garbage collection" + (" (dry run)" if report.dry_run else ""))
    for column in ("storage", "blobs listed", "unreferenced", "deleted"):
        table.add_column(column)
    for storage in report.storages:
        table.add_row(
            escape(storage.storage_name),
            str(storage.listed),
            str(len(storage.unreferenced)),
            "-" if report.dry_run else str(storage.deleted),
        )
    console.print(table)
    for error in report.errors:
        err_console.print(f"[red]Not deleted:[/] {escape(error)}")
    if report.dry_run:
        console.print(f"{report.unreferenced} unreferenced blobs would be deleted.")
    else:
        console.print(f"Deleted {report.deleted} of {report.unreferenced} unreferenced blobs.")


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not a record id (a UUID such as {uuid.UUID(int=0)}).")


def _make_sqlite_folder(url: str) -> None:
    """SQLite creates the database file, but not the folder it goes in."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


__all__ = ["db_app", "gc", "verify"]
