"""``labox-prefect db upgrade``, ``verify``, ``gc`` and ``results rm``: looking after the data.

They act on the selected target (``--block NAME``, the saved ``default`` block, or
LABOX_DATABASE_URL and LABOX_STORAGE_URL), with the registry every result of this process
would use (LABOX_REGISTRY_MODULES), so the storages they see are the ones results are
saved to. Deletions follow the core's rules (``labox_prefect.core.lifecycle``): a blob goes
only when no record uses it, it is older than the grace period, and no other database
writes to its storage.

The commands' options live here; their work lives in labox_prefect.cli.upkeep, imported
when a command runs (see labox_prefect.cli.results).
"""

from __future__ import annotations

from typing import Annotated

import typer

from labox_prefect.cli.options import DEFAULT_GRACE_TEXT, DryRun, Grace, TagFilter
from labox_prefect.cli.output import checked, count_option, parse_since

db_app = typer.Typer(
    name="db", help="The Labox database schema.", no_args_is_help=True, rich_markup_mode=None
)


@db_app.command("upgrade")
def upgrade_database() -> None:
    """Create or migrate the Labox tables of the target's database to the newest revision."""
    import labox_prefect.cli.upkeep as upkeep

    upkeep.upgrade_database()


def verify(
    manifest_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID]...",
            help="Records to verify, by id or the prefix `results ls` shows (default: all).",
        ),
    ] = None,
) -> None:
    """Read every stored content back and check its hash and size.

    Exits with status 1 if any content is corrupted, missing or unreadable.
    """
    import labox_prefect.cli.upkeep as upkeep

    upkeep.verify(manifest_ids or [])


def gc(
    dry_run: DryRun = False,
    grace: Grace = DEFAULT_GRACE_TEXT,
    claim: Annotated[
        bool,
        typer.Option(
            "--claim",
            help="Record this database as the storage's owner first (for storages written "
            "before owners were recorded; only if no other database uses it).",
        ),
    ] = False,
    forget_owner: Annotated[
        list[str] | None,
        typer.Option(
            "--forget-owner",
            metavar="LABEL",
            help="Remove the owner marker of a database that no longer exists (its label as "
            "gc names it; repeatable).",
        ),
    ] = None,
) -> None:
    """Delete stored blobs that no record points at, and files of killed writes.

    Safe while flows save: young blobs are kept for the grace period, and nothing is
    deleted from a storage that another database also writes to.
    """
    import labox_prefect.cli.upkeep as upkeep

    upkeep.collect(dry_run, grace, claim, forget_owner or [])


def remove_results(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="WHEN",
            callback=checked(parse_since),
            help="Results created before: 30d, 12h, or an ISO date or time.",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last",
            metavar="N",
            callback=count_option,
            help="Keep the newest N results of each task of each flow.",
        ),
    ] = None,
    tag: TagFilter = None,
    dry_run: DryRun = False,
    grace: Grace = DEFAULT_GRACE_TEXT,
) -> None:
    """Delete results by age, beyond the newest N per task, or by tag, and their unused blobs.

    The filters combine: a result goes when it matches every one given. Blobs another
    record (or another database) uses stay.
    """
    import labox_prefect.cli.upkeep as upkeep

    upkeep.remove(older_than, keep_last, tag or [], dry_run, grace)


__all__ = [
    "DEFAULT_GRACE_TEXT",
    "db_app",
    "gc",
    "remove_results",
    "verify",
]
