"""Tags: the string-to-string labels every manifest carries, and the one rule they follow.

The rule is checked before anything is written (by the saver, per object, and by queries),
so a tag is either stored and found again by itself on every database, or refused:

- keys and values are ``str``;
- keys are not empty: a tag names what it labels;
- no NUL character (``"\\x00"``): PostgreSQL's JSONB cannot hold ``\\u0000`` in text, and
  SQLite's JSON functions stop at it, so such a tag would fail on one database and be
  unfindable on the other;
- no lone surrogate (``"\\ud800"``): it has no UTF-8 encoding, so no database stores it;
- keys are at most ``MAX_KEY_LENGTH`` characters, values at most ``MAX_VALUE_LENGTH``: tags
  are labels that every manifest row carries and every tag query compares, not a place for
  data (put that in the storable).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping

from labox_prefect.core.errors import InvalidTagsError

Tags = Mapping[str, str]

MAX_KEY_LENGTH = 256
"""Longest tag key, in characters."""

MAX_VALUE_LENGTH = 4096
"""Longest tag value, in characters."""


def check_tags(tags: Tags | None) -> dict[str, str]:
    """Return a plain dict copy of ``tags`` or raise InvalidTagsError naming the bad entry."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidTagsError(
            f"tags must be a mapping of str to str, e.g. {{'project': 'x'}}; got "
            f"{type(tags).__name__}."
        )
    checked: dict[str, str] = {}
    for key, value in tags.items():
        # The whole rule in one expression, as cheap as it can be for the tags that pass it
        # (every save checks them): ASCII text needs no trial encoding.
        if not (
            isinstance(key, str)
            and isinstance(value, str)
            and 0 < len(key) <= MAX_KEY_LENGTH
            and len(value) <= MAX_VALUE_LENGTH
            and "\x00" not in key
            and "\x00" not in value
            and (key.isascii() or _encodes(key))
            and (value.isascii() or _encodes(value))
        ):
            _refuse(key, value)
        checked[key] = value
    return checked


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse(key: object, value: object) -> None:
    """Raise InvalidTagsError naming what of the tag ``key: value`` breaks the rule."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidTagsError(
            f"tag {key!r}: {value!r} is not str to str; convert it, e.g. "
            f"{{{str(key)!r}: {str(value)!r}}}."
        )
    if not key:
        raise InvalidTagsError(
            f"tag {key!r}: {reprlib.repr(value)}: the key is empty; name the tag, e.g. "
            f"{{'label': {reprlib.repr(value)}}}."
        )
    _check_text(key, key, "key", MAX_KEY_LENGTH)
    _check_text(key, value, "value", MAX_VALUE_LENGTH)


def _check_text(key: str, text: str, part: str, max_length: int) -> None:
    name = reprlib.repr(key)
    if len(text) > max_length:
        raise InvalidTagsError(
            f"tag {name}: the {part} has {len(text)} characters, more than {max_length}; "
            f"shorten it (tags are labels: keep data in the object you save)."
        )
    if "\x00" in text:
        raise InvalidTagsError(
            f"tag {name}: the {part} holds a NUL character ('\\x00'), which PostgreSQL "
            f"cannot store and SQLite cannot query; remove it or replace it (e.g. "
            f"text.replace('\\x00', '')) before saving."
        )
    if not _encodes(text):
        raise InvalidTagsError(
            f"tag {name}: the {part} holds a lone surrogate, which has no UTF-8 encoding "
            f"and no database can store; decode the text it came from with errors='replace'."
        )


__all__ = ["MAX_KEY_LENGTH", "MAX_VALUE_LENGTH", "InvalidTagsError", "Tags", "check_tags"]
