"""Which leaves of a value become contents of their own, and the tree that references them.

A leaf whose type has a registered serializer of its own (a DataFrame, an ndarray, an Arrow
table, ...: anything the registry infers for it besides the typed-values serializer), and
bytes larger than BYTES_INLINE_MAX, are stored as one content each, under the key of their
path in the value (``value['frames']['a']``, or a field's name); the body holds
``{"!ref": key}`` in their place. Everything else is encoded inline by the value tree.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from labox_prefect.core.builtin.serializers.tree import ValueEncoder, handled_by_kind
from labox_prefect.core.builtin.serializers.values import ValuesSerializer
from labox_prefect.core.errors import NotRegisteredError
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import Serializer
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacked, UnpackedValue

SMALL_NODES = 1024
"""Values with up to this many nodes are encoded on the event loop; larger ones in a thread."""

MAX_KEY_LENGTH = 200
"""Content keys are at most 255 characters in the database; longer paths are shortened."""

_BUILTIN_BASES = (str, int, float, bytes, bytearray, list, dict, tuple, datetime.date)
"""A subclass of these read back by their serializer would come back as the base type."""

_SCALARS = frozenset({int, float, bool, type(None)})


def own_serializer(value: Any, registry: Registry) -> Serializer[Any] | None:
    """The serializer that stores ``value`` as one content, or None for the value tree.

    The registry's inferred serializer, unless it is the values serializer (the tree is its
    format), or it was found for a builtin base class of the value's type (a str or dict
    subclass would come back as the base: the tree refuses it with a clear error).
    """
    cls = type(value)
    try:
        serializer = registry.infer_serializer(cls)
    except NotRegisteredError:
        return None
    if isinstance(serializer, ValuesSerializer):
        return None
    if cls not in serializer.types and issubclass(cls, _BUILTIN_BASES):
        return None
    return serializer


class ContentRouter:
    """Encodes values, sending leaves with serializers of their own to ``contents``."""

    def __init__(
        self, registry: Registry, contents: dict[str, Unpacked], storage: Storage | None
    ) -> None:
        self._registry = registry
        self._storage = storage
        self.contents = contents
        self.encoder = ValueEncoder(route=self._route)

    def _route(self, leaf: Any, where: str) -> str | None:
        serializer = own_serializer(leaf, self._registry)
        if serializer is None:
            return None
        if len(where) > MAX_KEY_LENGTH:  # a long path (a bytes dict key...): cut, keep unique
            digest = hashlib.sha256(where.encode("utf-8", "backslashreplace")).hexdigest()
            where = f"{where[: MAX_KEY_LENGTH - 20]}...{digest[:16]}"
        key = where
        n = 1
        while key in self.contents:
            n += 1
            key = f"{where}#{n}"
        self.contents[key] = UnpackedValue(leaf, serializer, self._storage)
        return key


def is_small(value: Any) -> bool:
    """True if ``value`` has at most SMALL_NODES items, counted through its containers.

    Stops counting at the limit, so a large value costs the same few microseconds as a
    value of the limit's size.
    """
    budget = SMALL_NODES
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) in _SCALARS:  # the commonest leaves, with nothing inside to count
            continue
        if isinstance(item, (list, tuple, set, frozenset)):
            budget -= len(item)
            pending.extend(item)
        elif isinstance(item, dict):
            budget -= len(item)
            pending.extend(item.values())
        elif isinstance(item, (str, bytes, bytearray)):
            budget -= len(item) // 4096
        elif handled_by_kind(type(item)) and hasattr(item, "__dict__"):  # dataclass, model
            attributes = vars(item)
            budget -= len(attributes)
            pending.extend(attributes.values())
        if budget < 0:
            return False
    return True
