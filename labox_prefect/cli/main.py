"""The ``labox-prefect`` application: its command groups and commands.

Local variables are never shown in tracebacks: they may hold a database URL's password.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from typer._click import exceptions as click_errors  # tests/integration/cli guard its use
from typer.core import TyperGroup

from labox_prefect.cli.help import PlainHelp
from labox_prefect.cli.maintenance import db_app, gc, remove_results, verify
from labox_prefect.cli.output import deliver_prefect_events, print_error, select_block
from labox_prefect.cli.results import results_app


class OneLineErrors(TyperGroup):
    """Click's usage errors as one line naming the fix, exit code 2 (not a 6-line panel).

    Typer 0.29 runs its own copy of Click (``typer._click``), whose exceptions are caught
    here; tests/integration/cli/test_usage.py fails if that module moves or changes. Before
    the process exits, the events Prefect queued while a block was read are sent
    (``deliver_prefect_events``).
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            self._run_one_line(args, prog_name, complete_var, windows_expand_args, **extra)
        finally:
            deliver_prefect_events()

    def _run_one_line(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        windows_expand_args: bool,
        **extra: Any,
    ) -> NoReturn:
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except click_errors.NoArgsIsHelpError as error:
            print_error(escape(error.format_message()))
            sys.exit(error.exit_code)
        except click_errors.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "labox-prefect"
            print_error(
                f"[bold red]Error:[/] {escape(error.format_message())} "
                f"(see `{escape(command)} --help`)"
            )
            sys.exit(error.exit_code)
        except click_errors.ClickException as error:
            print_error(f"[bold red]Error:[/] {escape(error.format_message())}")
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    rich_markup_mode=None,  # plain help: no <bool> column, wraps at the terminal width
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
    # Only noted: the target is resolved and checked when the command runs, after its own
    # options are parsed, so a mistyped option is the first error and imports nothing heavy.
    select_block(block, creates_database=ctx.invoked_subcommand == "db")


app.add_typer(results_app)
app.add_typer(db_app)
app.command("verify", cls=PlainHelp)(verify)
app.command("gc")(gc)

__all__ = ["app"]
