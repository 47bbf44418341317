"""The registry: which storables, unpackers, serializers and storages exist, by name.

Loading resolves every component through the registry by the name a record stores, and
every storable class by its class id, so nothing is ever imported because stored data said
so. Precedence (lowest to highest): components found in ``modules``, then those of
``registries`` (in order), then the ones passed explicitly. A class id no table holds is
looked up among the Storable classes defined in this process (storable.pinned_storable):
a class is known once its class statement ran, never because a record names it.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from labox_prefect.core.digest import Digest
from labox_prefect.core.errors import (
    ClassNotDefinedError,
    ComponentNotRegisteredError,
    NotRegisteredError,
    StorageNotConfiguredError,
)
from labox_prefect.core.inline_storage import DatabaseStorage
from labox_prefect.core.serializer import Serializer, StreamSerializer
from labox_prefect.core.storable import Storable, pinned_storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacker

C = TypeVar("C")

DEFAULT_INLINE_MAX_SIZE = 4096
"""JSON contents up to this many bytes are kept in their content record (0 turns it off)."""


@dataclass
class _Tables:
    storables: dict[uuid.UUID, type[Storable]] = field(default_factory=dict)
    unpackers: dict[str, Unpacker[Any]] = field(default_factory=dict)
    serializers: dict[str, Serializer[Any]] = field(default_factory=dict)
    stream_serializers: dict[str, StreamSerializer[Any]] = field(default_factory=dict)
    serializer_by_type: dict[type[Any], Serializer[Any]] = field(default_factory=dict)
    stream_serializer_by_type: dict[type[Any], StreamSerializer[Any]] = field(default_factory=dict)
    storages: dict[str, Storage] = field(default_factory=dict)
    default_storage: Storage | None = None

    def merge(self, other: _Tables) -> None:
        """Add ``other``'s entries, letting them win over ours."""
        self.storables.update(other.storables)
        self.unpackers.update(other.unpackers)
        self.serializers.update(other.serializers)
        self.stream_serializers.update(other.stream_serializers)
        self.serializer_by_type.update(other.serializer_by_type)
        self.stream_serializer_by_type.update(other.stream_serializer_by_type)
        self.storages.update(other.storages)
        if other.default_storage is not None:
            self.default_storage = other.default_storage


class Registry:
    """Everything a save or load may use, looked up by name, class id or type.

    With no ``default_storage`` (here or in ``registries``) the registry has no storage of
    its own for blobs: the saver then derives one from the database it saves to (a folder
    beside a SQLite file, see ``labox_prefect.core.defaults``), or refuses with
    StorageNotConfiguredError. A registry reads no environment variable.
    """

    def __init__(
        self,
        *,
        modules: Sequence[str | ModuleType] = (),
        registries: Sequence[Registry] = (),
        storables: Sequence[type[Storable]] = (),
        unpackers: Sequence[Unpacker[Any]] = (),
        serializers: Sequence[Serializer[Any] | StreamSerializer[Any]] = (),
        storages: Sequence[Storage] = (),
        default_storage: Storage | None = None,
        inline_max_size: int = DEFAULT_INLINE_MAX_SIZE,
    ) -> None:
        tables = _Tables()
        tables.merge(_tables_from(_module_exports(modules)))
        for registry in registries:
            tables.merge(registry._tables)
        tables.merge(_tables_from([*storables, *unpackers, *serializers, *storages], explicit=True))
        if default_storage is not None:
            tables.storages[default_storage.name] = default_storage
            tables.default_storage = default_storage
        inline = tables.storages.setdefault(
            DatabaseStorage.default_name, DatabaseStorage(max_size=max(inline_max_size, 0))
        )
        self._inline_storage = inline if isinstance(inline, DatabaseStorage) else None
        self._inline_max_size = inline_max_size
        self._tables: _Tables = tables

    # --- lookups by what a record stores -------------------------------------------------

    @property
    def default_storage(self) -> Storage:
        """Where contents with no storage of their own go.

        Raises StorageNotConfiguredError when the registry was made without one.
        """
        storage = self._tables.default_storage
        if storage is None:
            raise StorageNotConfiguredError(
                "This registry has no default storage, so a content too large to keep in its "
                "record has nowhere to go. Pass Registry(default_storage=FileStorage('folder')) "
                "or S3Storage('bucket'), or save to a SQLite file database (blobs then go to "
                "a folder beside it)."
            )
        return storage

    @property
    def has_default_storage(self) -> bool:
        """Whether a default storage was given (here or by a merged registry)."""
        return self._tables.default_storage is not None

    def with_default_storage(self, storage: Storage) -> Registry:
        """This registry with ``storage`` as its default, registered under its name."""
        return Registry(
            registries=[self], default_storage=storage, inline_max_size=self._inline_max_size
        )

    def get_storable(self, class_id: uuid.UUID) -> type[Storable]:
        """The class registered with ``class_id``, else the one defined in this process.

        Every Storable class with a pinned class_id is known once its class statement ran
        (a script's own classes included); registered classes win over those.
        """
        found = self._tables.storables.get(class_id) or pinned_storable(class_id)
        if found is None:
            raise ClassNotDefinedError(
                f"No storable class with class_id {class_id} is registered or defined in this "
                f"process ({_listing(c.__qualname__ for c in self._tables.storables.values())}). "
                f"Import the module that defines it, or pass it with Registry(storables=[...])."
            )
        return found

    def get_unpacker(self, name: str) -> Unpacker[Any]:
        return _lookup(self._tables.unpackers, name, "unpacker", "unpackers")

    def get_serializer(self, name: str) -> Serializer[Any]:
        return _lookup(self._tables.serializers, name, "serializer", "serializers")

    def get_stream_serializer(self, name: str) -> StreamSerializer[Any]:
        return _lookup(self._tables.stream_serializers, name, "stream serializer", "serializers")

    def get_storage(self, name: str) -> Storage:
        return _lookup(self._tables.storages, name, "storage", "storages")

    def storage_for(self, data: bytes | memoryview, digest: Digest) -> Storage:
        """Where a content with no storage of its own goes.

        Small JSON (a storable's body, a small result) is kept in its content record: one
        row insert instead of a file or object round trip per object. Everything else goes
        to the default storage.
        """
        inline = self._inline_storage
        if (
            inline is not None
            and digest.content_size <= self._inline_max_size
            and inline.keeps(data, digest)
        ):
            return inline
        return self.default_storage

    # --- inference from Python types ----------------------------------------------------

    def infer_serializer(self, cls: type[Any]) -> Serializer[Any]:
        """The serializer for values of ``cls``.

        The one registered for exactly ``cls``; else the first whose ``handles_type(cls)``
        takes it by kind (the values serializer takes Enums, NamedTuples, dataclasses,
        models and pandas or numpy scalars, whose bases' serializers would change their
        type); else the one registered for the nearest class in ``cls``'s MRO.
        """
        if (exact := self._tables.serializer_by_type.get(cls)) is not None:
            return exact
        for serializer in self._tables.serializers.values():
            if serializer.handles_type(cls):
                return serializer
        return _infer(
            self._tables.serializer_by_type,
            cls,
            f"No serializer is registered for {_type_name(cls)}",
            "wrap the value in a storable with an explicit serializer",
        )

    def infer_stream_serializer(self, cls: type[Any]) -> StreamSerializer[Any]:
        """The stream serializer registered for the nearest class in ``cls``'s MRO."""
        return _infer(
            self._tables.stream_serializer_by_type,
            cls,
            f"No stream serializer is registered for items of type {_type_name(cls)}",
            "name one in a ContentSpec",
        )

    def infer_unpacker(self, cls: type[Storable]) -> Unpacker[Any]:
        return cls.storable_unpacker()

    # --- what is known (for error messages, the CLI and plugins) ---------------------------

    @property
    def storables(self) -> dict[uuid.UUID, type[Storable]]:
        return dict(self._tables.storables)

    @property
    def storages(self) -> dict[str, Storage]:
        return dict(self._tables.storages)


def _tables_from(components: Iterable[Any], explicit: bool = False) -> _Tables:
    tables = _Tables()
    for item in components:
        if isinstance(item, type) and issubclass(item, Storable):
            # A base like StorableModel brings its family's unpacker; a class is found by
            # id only when it pinned one (or was passed explicitly).
            if item._storable_unpacker is not None:
                _add_unpacker(tables, item.storable_unpacker())
            if explicit or item.has_explicit_class_id():
                tables.storables[item.storable_class_id()] = item
        elif isinstance(item, Unpacker):
            _add_unpacker(tables, item)
        elif isinstance(item, Serializer):
            tables.serializers[item.name] = item
            tables.serializer_by_type.update(dict.fromkeys(item.types, item))
        elif isinstance(item, StreamSerializer):
            tables.stream_serializers[item.name] = item
            tables.stream_serializer_by_type.update(dict.fromkeys(item.types, item))
        elif isinstance(item, Storage):
            tables.storages[item.name] = item
        elif explicit:
            raise TypeError(f"{item!r} is not a storable class, unpacker, serializer or storage.")
    return tables


def _add_unpacker(tables: _Tables, unpacker: Unpacker[Any]) -> None:
    for older in unpacker.legacy:
        tables.unpackers.setdefault(older.name, older)
    tables.unpackers[unpacker.name] = unpacker


def _module_exports(modules: Iterable[str | ModuleType]) -> Iterator[Any]:
    for module in modules:
        mod = importlib.import_module(module) if isinstance(module, str) else module
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in names:
            yield getattr(mod, name)


def _infer(table: dict[type[Any], C], cls: type[Any], problem: str, alternative: str) -> C:
    for base in cls.__mro__:
        if base in table:
            return table[base]
    raise NotRegisteredError(
        f"{problem} (types with one: {_names(_type_name(t) for t in table)}). Register one "
        f"with Registry(serializers=[...]) or {alternative}."
    )


def _lookup(table: dict[str, C], name: str, what: str, kwarg: str) -> C:
    try:
        return table[name]
    except KeyError:
        raise ComponentNotRegisteredError(
            f"No {what} named {name!r} is registered ({_listing(table)}). "
            f"Pass it with Registry({kwarg}=[...]) or add its module to Registry(modules=[...]).",
            what,
            name,
        ) from None


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(set(names))) or "none"


def _listing(names: Iterable[str]) -> str:
    items = _names(names)
    return "none are registered" if items == "none" else f"registered: {items}"


def _type_name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__name__
