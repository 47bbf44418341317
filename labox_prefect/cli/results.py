"""``labox-prefect results``: list stored results by tag, and show one in detail.

The commands' options live here; their work lives in labox_prefect.cli.listing, imported
when a command runs, so ``--help`` and a mistyped option (or option value: the callbacks
check them) never import Prefect, SQLAlchemy,
pandas or pyarrow (tests/integration/cli/test_startup.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from labox_prefect.cli.help import PlainHelp
from labox_prefect.cli.options import TagFilter
from labox_prefect.cli.output import (
    checked,
    count_option,
    parse_deployment,
    parse_since,
)

results_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no <bool> column, wraps at the terminal width
    name="results",
    help="Find stored results by tag, and show what one holds.",
    no_args_is_help=True,
)


@results_app.command("ls")
def list_results(
    tag: TagFilter = None,
    flow: Annotated[str | None, typer.Option("--flow", metavar="NAME", help="Flow name.")] = None,
    task: Annotated[str | None, typer.Option("--task", metavar="NAME", help="Task name.")] = None,
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run",
            metavar="UUID",
            callback=flow_run_option,
            help="Flow run id, the full UUID (as `prefect flow-run ls` prints it).",
        ),
    ] = None,
    prefect_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--prefect-tag",
            metavar="TAG",
            help="Prefect run tag the result must have (repeatable).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            callback=checked(parse_since),
            help="Only newer results: 30m, 2h, 3d, 1w, or an ISO date or time.",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            metavar="FLOW/DEPLOYMENT",
            callback=checked(parse_deployment),
            help="Results of runs of this deployment (as `prefect deployment ls` names it).",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", metavar="N", callback=count_option, help="At most N (0: all)."
        ),
    ] = 100,
    wide: Annotated[bool, typer.Option("--wide", help="Add the tags; never cut a name.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array with every tag (for scripts).")
    ] = False,
) -> None:
    """List stored results, newest first: id, age, flow/task, type and size, one per line.

    When --limit leaves results out, a last line says so (with --json, a note on stderr).
    """
    import labox_prefect.cli.listing as listing

    listing.list_results(
        tag or [],
        flow=flow,
        task=task,
        flow_run=flow_run,
        prefect_tags=prefect_tag or [],
        since=since,
        deployment=deployment,
        limit=limit,
        wide=wide,
        as_json=as_json,
    )


def flow_run_option(value: str | None) -> str | None:
    """``--flow-run``: a full UUID (records are matched on their exact flow run id tag)."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a full flow run id: give the whole UUID, as `prefect flow-run "
            f"ls` or `labox-prefect results ls --json` (flow_run_id) prints it.",
            param_hint="--flow-run",
        ) from None


@results_app.command("show", cls=PlainHelp)
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
    """Show one result: its record, tags, contents and a preview of its value.

    A large result (over 1 MiB, or holding a stream) is previewed from the head of each
    content (a frame's first rows, a stream's first frame, a value's first bytes), never
    loaded whole.
    """
    import labox_prefect.cli.listing as listing

    listing.show_result(manifest_id, preview=preview)


@results_app.command("get", cls=PlainHelp)
def get_result_file(
    manifest_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="The record id, or its first digits (at least 4)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="The file to write.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write a result to FILE in its natural format (Parquet, .npy, JSON, bytes, text)."""
    if output.exists() and not force:
        raise typer.BadParameter(
            f"{output} exists; choose another file or pass --force to replace it.",
            param_hint="--output",
        )
    if not output.parent.is_dir():
        raise typer.BadParameter(
            f"the folder {output.parent} does not exist; create it or choose a FILE in an "
            f"existing folder.",
            param_hint="--output",
        )
    import labox_prefect.cli.listing as listing

    listing.write_result(manifest_id, output)


__all__ = ["results_app"]
