"""What a Prefect result record holds for a Labox result: a pointer, or a run failure.

Format (compact JSON, UTF-8, as ``LaboxSerializer.dumps`` returns it; Prefect embeds it as
the ``result`` string of its result record, whose ``metadata.serializer.type`` is
``"labox"``):

- a result: ``{"kind":"labox-result","manifest_id":"<uuid>","database":"<url>"}``, where
  ``database`` is the database URL with its password hidden (where to look, never a
  credential);
- a failed run's exception: ``{"kind":"labox-failure","type":"<module.QualName>",
  "message":"<str(error)>"}``: no manifest, never pickled, and loading never imports the
  type it names.

Anything else is refused with ``ResultPointerError``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Final

from labox_prefect.core import LaboxError
from labox_prefect.errors import ResultPointerError

SERIALIZER_TYPE: Final = "labox"
"""The ``type`` of LaboxSerializer, stored in every Prefect result record it writes."""

BLOCK_TYPE_SLUG: Final = "labox-result-storage"
"""Prefect's name for the LaboxResultStorage block type, stored with every saved block."""

POINTER_KIND = "labox-result"
"""The ``kind`` of a pointer to a manifest."""

FAILURE_KIND = "labox-failure"
"""The ``kind`` of a failed run's exception."""

_SERIALIZER_MARK = f'"type":"{SERIALIZER_TYPE}"'.encode()
_MARK_WINDOW = 4096


@dataclass(frozen=True)
class ResultPointer:
    """A manifest, and the database (password hidden) it is in."""

    manifest_id: uuid.UUID
    database: str

    def dump(self) -> bytes:
        body = {"kind": POINTER_KIND, "manifest_id": str(self.manifest_id)}
        return json.dumps({**body, "database": self.database}, separators=(",", ":")).encode()


class RunFailure(LaboxError):
    """The exception of a failed run, as LaboxSerializer records it.

    Prefect persists a failed run's exception with the result serializer. Labox keeps its
    type's name and its message only: an exception object is not a result (no manifest is
    made), and loading never imports a type a record names.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    @classmethod
    def of(cls, error: BaseException) -> RunFailure:
        if isinstance(error, RunFailure):
            return error
        kind = type(error)
        return cls(f"{kind.__module__}.{kind.__qualname__}", str(error))

    def dump(self) -> bytes:
        body = {"kind": FAILURE_KIND, "type": self.type_name, "message": self.message}
        return json.dumps(body, separators=(",", ":")).encode()


def parse_blob(blob: bytes | str) -> ResultPointer | RunFailure:
    """What LaboxSerializer.dumps wrote: a pointer to a manifest, or a run failure."""
    try:
        body = json.loads(blob)
        kind = body.get("kind")
        if kind == POINTER_KIND:
            return ResultPointer(uuid.UUID(body["manifest_id"]), str(body["database"]))
        if kind == FAILURE_KIND:
            return RunFailure(str(body["type"]), str(body["message"]))
        raise ValueError(f"kind is {kind!r}")
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ResultPointerError(
            f"These bytes are not a Labox result pointer ({error}); LaboxSerializer.loads "
            f"reads only what LaboxSerializer.dumps wrote."
        ) from None


def labox_blob_in(content: bytes, database_label: str) -> ResultPointer | RunFailure | None:
    """What LaboxSerializer wrote in a Prefect result record (or bare result), if it did.

    A pointer counts only when it points into this very database; anything else is stored
    whole. Large records of other serializers are recognised without parsing them.
    """
    head = content[:_MARK_WINDOW]
    found: ResultPointer | RunFailure | None = None
    if _SERIALIZER_MARK in head:
        try:
            record = json.loads(content)
            if record["metadata"]["serializer"]["type"] == SERIALIZER_TYPE and isinstance(
                record["result"], str
            ):
                found = parse_blob(record["result"])
        except (ValueError, TypeError, KeyError, ResultPointerError):
            found = None
    elif len(content) < _MARK_WINDOW and (
        POINTER_KIND.encode() in head or FAILURE_KIND.encode() in head
    ):
        try:  # a bare result: Prefect writes metadata elsewhere when a cache policy says so
            found = parse_blob(content)
        except ResultPointerError:
            found = None
    if isinstance(found, ResultPointer) and found.database != database_label:
        return None
    return found


__all__ = [
    "BLOCK_TYPE_SLUG",
    "FAILURE_KIND",
    "POINTER_KIND",
    "SERIALIZER_TYPE",
    "ResultPointer",
    "RunFailure",
    "labox_blob_in",
    "parse_blob",
]
