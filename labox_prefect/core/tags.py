"""Tags: the string-to-string labels every manifest carries."""

from __future__ import annotations

from collections.abc import Mapping

from labox_prefect.core.errors import LaboxError

Tags = Mapping[str, str]


class InvalidTagsError(LaboxError, TypeError):
    """Tags must map strings to strings."""


def check_tags(tags: Tags | None) -> dict[str, str]:
    """Return a plain dict copy of ``tags`` or raise an error naming the bad entry."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidTagsError(
            f"tags must be a mapping of str to str, e.g. {{'project': 'x'}}; got "
            f"{type(tags).__name__}."
        )
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidTagsError(
                f"tag {key!r}: {value!r} is not str to str; convert it, e.g. "
                f"{{{str(key)!r}: {str(value)!r}}}."
            )
        checked[key] = value
    return checked
