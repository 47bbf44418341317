"""The ``labox-prefect`` application: its command groups and commands.

Local variables are never shown in tracebacks: they may hold a database URL's password.
"""

from __future__ import annotations

from typing import Annotated

import typer

from labox_prefect.cli.maintenance import db_app, gc, remove_results, require_database, verify
from labox_prefect.cli.output import select_block
from labox_prefect.cli.results import results_app

app = typer.Typer(
    name="labox-prefect",
    help="Browse the Prefect results stored through Labox, and look after their database.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
results_app.command("rm")(remove_results)


@app.callback()
def main(
    ctx: typer.Context,
    block: Annotated[
        str | None,
        typer.Option(
            "--block",
            metavar="NAME",
            help="Read the target of this saved LaboxResultStorage block (default: the saved "
            "'default' block when one exists on PREFECT_API_URL, else the LABOX_* environment).",
        ),
    ] = None,
) -> None:
    """Browse the Prefect results stored through Labox, and look after their database."""
    select_block(block)
    require_database(ctx)


app.add_typer(results_app)
app.add_typer(db_app)
app.command("verify")(verify)
app.command("gc")(gc)

__all__ = ["app"]
