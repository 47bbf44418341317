"""The ``labox-prefect`` application: its command groups and commands.

Local variables are never shown in tracebacks: they may hold a database URL's password.
"""

from __future__ import annotations

import typer

from labox_prefect.cli.maintenance import db_app, gc, remove_results, require_database, verify
from labox_prefect.cli.results import results_app

app = typer.Typer(
    name="labox-prefect",
    help="Browse the Prefect results stored through Labox, and look after their database.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
results_app.command("rm")(remove_results)
app.callback()(require_database)
app.add_typer(results_app)
app.add_typer(db_app)
app.command("verify")(verify)
app.command("gc")(gc)

__all__ = ["app"]
