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
        problem = _problem(key, value)
        if problem is not None:
            raise InvalidTagsError(problem)
        checked[key] = value
    return checked


def _problem(key: object, value: object) -> str | None:
    """What of the tag ``key: value`` breaks the rule, with the fix; None when it keeps it.

    The rule of the module docstring, stated once: every check of a tag (save, query,
    delete) comes here.
    """
    if not isinstance(key, str) or not isinstance(value, str):
        return (
            f"tag {key!r}: {value!r} is not str to str; convert it, e.g. "
            f"{{{str(key)!r}: {str(value)!r}}}."
        )
    if not key:
        return (
            f"tag {key!r}: {reprlib.repr(value)}: the key is empty; name the tag, e.g. "
            f"{{'label': {reprlib.repr(value)}}}."
        )
    return _text_problem(key, key, "key", MAX_KEY_LENGTH) or _text_problem(
        key, value, "value", MAX_VALUE_LENGTH
    )


def _text_problem(key: str, text: str, part: str, max_length: int) -> str | None:
    if len(text) > max_length:
        return (
            f"tag {reprlib.repr(key)}: the {part} has {len(text)} characters, more than "
            f"{max_length}; shorten it (tags are labels: keep data in the object you save)."
        )
    if "\x00" in text:
        return (
            f"tag {reprlib.repr(key)}: the {part} holds a NUL character ('\\x00'), which "
            f"PostgreSQL cannot store and SQLite cannot query; remove it or replace it (e.g. "
            f"text.replace('\\x00', '')) before saving."
        )
    if not text.isascii() and not _encodes(text):
        return (
            f"tag {reprlib.repr(key)}: the {part} holds a lone surrogate, which has no UTF-8 "
            f"encoding and no database can store; decode the text it came from with "
            f"errors='replace'."
        )
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = ["MAX_KEY_LENGTH", "MAX_VALUE_LENGTH", "InvalidTagsError", "Tags", "check_tags"]
