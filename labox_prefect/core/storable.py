"""Storable classes and their stable ids.

A class id is what a manifest records instead of an import path: loading finds the class by
id in the registry, so stored data can never make us import code. Ids belong to exactly one
class: a subclass never inherits its parent's id.
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from labox_prefect.core.errors import StorableTypeError
from labox_prefect.core.unpacker import Unpacker

_CLASS_ID_NAMESPACE = uuid.UUID("6f1d3c1e-6b0a-4c35-9a37-3c8f3e0b7a51")
_HEX = re.compile(r"^[0-9a-fA-F]{8,32}$")

_pinned: dict[uuid.UUID, type[Storable]] = {}
"""Every Storable class defined in this process, by its pinned class_id (or, without one,
its id derived from module and name).

A class enters it by being defined (its class statement runs ``__init_subclass__``), never
because stored data names it. A later class with the same pinned id replaces an earlier one
(a module or notebook cell run again redefines its classes)."""


def _derived_class_id(qualified: str) -> uuid.UUID:
    return normalize_class_id(uuid.uuid5(_CLASS_ID_NAMESPACE, qualified).hex[:16])


def pinned_storable(class_id: uuid.UUID) -> type[Storable] | None:
    """The class defined in this process with ``class_id`` (pinned, else derived), if any."""
    return _pinned.get(class_id)


@contextmanager
def forgotten(*classes: type[Storable]) -> Iterator[None]:
    """Act, inside the block, as a process that never imported ``classes`` (for tests)."""
    ids = [
        cls.__dict__.get("_storable_class_id")
        or _derived_class_id(f"{cls.__module__}.{cls.__qualname__}")
        for cls in classes
    ]
    removed = {
        class_id: _pinned.pop(class_id)
        for cls, class_id in zip(classes, ids, strict=True)
        if _pinned.get(class_id) is cls
    }
    try:
        yield
    finally:
        _pinned.update(removed)


def normalize_class_id(class_id: str | uuid.UUID, owner: str = "a storable class") -> uuid.UUID:
    """Turn 8 to 32 hex digits (or a UUID) into the UUID stored in manifests."""
    if isinstance(class_id, uuid.UUID):
        return class_id
    text = class_id.replace("-", "")
    if not _HEX.match(text):
        msg = (
            f"class_id {class_id!r} of {owner} must be 8 to 32 hexadecimal digits, "
            f"e.g. class_id={uuid.uuid4().hex[:16]!r}."
        )
        raise ValueError(msg)
    return uuid.UUID(text.lower().ljust(32, "0"))


class Storable:
    """Base of everything that can be saved as a manifest plus contents.

    Give a concrete class its id once and keep it forever::

        class Experiment(StorableModel, class_id="1f0c2d8e6a7b4c3d"):
            ...
    """

    _storable_class_id: ClassVar[uuid.UUID | None] = None
    _storable_unpacker: ClassVar[Unpacker[Any] | None] = None
    _storable_id_warned: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        class_id: str | uuid.UUID | None = None,
        unpacker: Unpacker[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        cls._storable_class_id = (
            None if class_id is None else normalize_class_id(class_id, qualified)
        )
        cls._storable_id_warned = False
        if cls._storable_class_id is not None:
            _pinned[cls._storable_class_id] = cls
        else:  # known by its derived id too, unless a pinned class holds that id
            _pinned.setdefault(_derived_class_id(qualified), cls)
        if unpacker is not None:
            cls._storable_unpacker = unpacker

    @classmethod
    def has_explicit_class_id(cls) -> bool:
        return cls.__dict__.get("_storable_class_id") is not None

    @classmethod
    def storable_class_id(cls) -> uuid.UUID:
        """The id of exactly this class; derived from its qualified name if none was given.

        A derived id changes when the class is renamed or moved, so we warn once with the id
        to pin in the class statement.
        """
        explicit = cls.__dict__.get("_storable_class_id")
        if explicit is not None:
            return explicit  # type: ignore[no-any-return]
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        derived = _derived_class_id(qualified)
        if not cls.__dict__.get("_storable_id_warned", False):
            cls._storable_id_warned = True
            warnings.warn(
                f"{qualified} has no class_id; using {derived.hex[:16]!r} derived from its "
                f"name. Pin it with `class {cls.__name__}(..., class_id="
                f"{derived.hex[:16]!r})` so renaming the class keeps old records loadable.",
                stacklevel=3,
            )
        return derived

    @classmethod
    def storable_unpacker(cls) -> Unpacker[Any]:
        if cls._storable_unpacker is None:
            msg = (
                f"{cls.__qualname__} has no unpacker: derive it from StorableModel, "
                f"StorableDataclass, or pass `unpacker=` in the class statement."
            )
            raise StorableTypeError(msg)
        return cls._storable_unpacker
