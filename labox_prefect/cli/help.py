"""Help that reads naturally: arguments named by their metavar alone.

Typer 0.29 prints an argument as ``ID <str>`` in the help and ``{ID}`` in the usage line;
commands made with ``cls=PlainHelp`` print ``ID`` (required) or ``[ID]...`` (optional,
repeatable) instead, and their argument's own help text. Options are printed as Typer
prints them.
"""

from __future__ import annotations

from typer._click import Context, HelpFormatter  # tests/integration/cli guard their use
from typer.core import TyperArgument, TyperCommand


class PlainHelp(TyperCommand):
    """A command whose help names each argument by its metavar, without a type."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_name(param) for param in self._arguments(ctx)]

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        arguments = [(_name(param), param.help or "") for param in self._arguments(ctx)]
        options = [
            record
            for param in self.get_params(ctx)
            if param.param_type_name == "option"
            and (record := param.get_help_record(ctx)) is not None
        ]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def _arguments(self, ctx: Context) -> list[TyperArgument]:
        return [
            param
            for param in self.get_params(ctx)
            if isinstance(param, TyperArgument) and not param.hidden
        ]


def _name(argument: TyperArgument) -> str:
    """``ID`` for a required argument, its metavar as written (``[ID]...``) otherwise."""
    return argument.metavar or (argument.name or "ARG").upper()


__all__ = ["PlainHelp"]
