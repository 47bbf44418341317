"""Record ids as a person types them: the full UUID, or the first digits ``results ls`` shows."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import ColumnElement, String, cast, func, select

from labox_prefect.cli.output import selected_target, usage_error
from labox_prefect.core import ManifestRecord
from labox_prefect.persistence import open_session
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target

SHORT_ID = 8
"""Hex digits of a record id that ``ls`` shows; every id argument takes any unique prefix."""
_ID_PREFIX = re.compile(r"[0-9a-f]{4,32}")


def resolve_id(text: str) -> uuid.UUID:
    """A full record id, or the one record whose id starts with these hex digits.

    An id no record has (whole or a prefix) is a usage error (one line, exit code 2).
    """
    try:
        prefix: str | None = uuid.UUID(text.strip()).hex
    except ValueError:
        prefix = None
    whole = prefix is not None
    prefix = prefix or text.strip().lower().replace("-", "")
    if not _ID_PREFIX.fullmatch(prefix):
        usage_error(
            f"{text!r} is not a record id: give the UUID (or its first 4 or more hex digits) "
            f"that `labox-prefect results ls` shows."
        )
    target = selected_target()
    found = get_runtime().run(_ids_starting_with(target, prefix))
    if not found:
        usage_error(
            f"No record has the id {uuid.UUID(prefix)} in {target.database_label}."
            if whole
            else f"No record id starts with {prefix!r} in {target.database_label}."
        )
    if len(found) > 1:
        usage_error(
            f"Several record ids start with {prefix!r} ({', '.join(map(str, found))}, ...); "
            f"give more digits."
        )
    return found[0]


async def _ids_starting_with(target: Target, prefix: str) -> list[uuid.UUID]:
    """At most two ids with this hex prefix (two are enough to call a prefix ambiguous).

    SQLite stores a UUID as 32 hex digits; PostgreSQL prints it with hyphens, removed here.
    """
    async with open_session(target, create_schema=False) as session:
        text: ColumnElement[str] = cast(ManifestRecord.id, String)
        if session.get_bind().dialect.name == "postgresql":
            text = func.replace(text, "-", "")
        statement = select(ManifestRecord.id).where(text.like(f"{prefix}%")).limit(2)
        return list(await session.scalars(statement))


__all__ = ["SHORT_ID", "resolve_id"]
