"""Options that more than one command takes, each declared once.

Typer reads an option from its ``Annotated`` type and copies it for every command that
uses it (typer.utils.get_params_from_function), so one declaration serves them all.
"""

from __future__ import annotations

from typing import Annotated

import typer

from labox_prefect.cli.output import checked, parse_duration, parse_tags

TagFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        "-t",
        metavar="KEY=VALUE",
        callback=checked(parse_tags),
        help="A tag the results must carry (repeatable).",
    ),
]
"""``--tag KEY=VALUE`` (repeatable): results carrying every tag given."""

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
]
"""``--dry-run``: a deleting command lists what it would delete."""

DEFAULT_GRACE_TEXT = "60m"
"""The default of ``--grace``: the core's DEFAULT_GRACE (tests/integration/cli checks it)."""

Grace = Annotated[
    str,
    typer.Option(
        "--grace",
        metavar="DURATION",
        callback=checked(parse_duration),
        help="Keep blobs and temporary files younger than this (30m, 1h, 2d): a save may be "
        "using them. 0s only when nothing else is saving.",
    ),
]
"""``--grace DURATION``: what a deleting command keeps of the storage, by age."""

__all__ = ["DEFAULT_GRACE_TEXT", "DryRun", "Grace", "TagFilter"]
