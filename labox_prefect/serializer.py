"""LaboxSerializer: Prefect's ``Serializer`` interface over the door (labox_prefect.persistence).

``dumps`` returns the pointer of the Labox record holding the object (saved by labox_task's
eager save, or now), ``loads`` loads the record a pointer names; the format is in
labox_prefect.pointer, the sequence in labox_prefect.persistence. Nothing is pickled, and
nothing is imported because a record names it.

Prefect stores a serializer's fields in every result record and restores them on load, so
the only field is the (non-secret) user tags. The database and storage come from the
target (labox_prefect.target), never from the serializer.

Defining this class registers the ``labox`` serializer type with Prefect; the module reaches
the door only when called (see labox_prefect.registration for why).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect.serializers import Serializer
from pydantic import Field, field_validator

from labox_prefect.pointer import SERIALIZER_TYPE


class LaboxSerializer(Serializer):
    """Prefect result serializer that stores results as typed, tagged Labox records.

    ``tags``: user tags added to every record it saves (keys may not start with
    ``prefect.``; the run context fills those), checked once, when the serializer is made.
    A failed run's exception is recorded by its type's name and message (RunFailure), not
    saved as a result. Use it with ``LaboxResultStorage`` (as ``labox_task`` does) so that a
    result is one Labox manifest, found by Prefect's key.
    """

    type: Literal["labox"] = SERIALIZER_TYPE
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags", mode="before")
    @classmethod
    def _check_tags(cls, value: Any) -> dict[str, str]:
        from labox_prefect.context import check_user_tags

        return check_user_tags(value)

    def dumps(self, obj: Any) -> bytes:
        from labox_prefect import persistence

        return persistence.dump(obj, self.tags)

    def loads(self, blob: bytes) -> Any:
        from labox_prefect import persistence

        return persistence.load(blob)


__all__ = ["LaboxSerializer"]
