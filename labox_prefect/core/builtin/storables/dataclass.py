"""Dataclasses as storables.

Every field goes into a typed value tree (see fields.py and VALUES.md), so each comes back
with the value and type it had, whatever its annotation says; the object is rebuilt without
calling ``__init__`` (as copy and pickle do), fields added to the class since the save take
their defaults. Records of the v1 format (fields dumped through pydantic's TypeAdapter for
their annotations) still load.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from pydantic import ConfigDict, PydanticUserError, TypeAdapter

from labox_prefect.core.builtin.serializers.tree import ValueDecoder, ValueEncoder
from labox_prefect.core.builtin.storables.fields import (
    FieldInfo,
    FieldsUnpacker,
    TreeFieldsUnpacker,
    content_spec_of,
)
from labox_prefect.core.errors import StorableTypeError
from labox_prefect.core.storable import Storable

D = TypeVar("D", bound="StorableDataclass")

_ADAPTER_CONFIG = ConfigDict(arbitrary_types_allowed=True)


class LegacyDataclassUnpacker(FieldsUnpacker["StorableDataclass"]):
    """Reads records of labox.dataclass@v1 (fields dumped by pydantic's TypeAdapter)."""

    name = "labox.dataclass@v1"

    def fields(self, cls: type[StorableDataclass]) -> tuple[FieldInfo, ...]:
        return _fields(cls)

    def dump_body(self, obj: StorableDataclass, names: list[str]) -> dict[str, Any]:
        adapters = _adapters(type(obj))
        return {n: adapters[n].dump_python(getattr(obj, n), mode="json") for n in names}

    def build(
        self, cls: type[StorableDataclass], body: dict[str, Any], contents: dict[str, Any]
    ) -> StorableDataclass:
        adapters = _adapters(cls)
        kwargs = {n: adapters[n].validate_python(v) for n, v in body.items() if n in adapters}
        kwargs.update(contents)
        return cls(**kwargs)


class StorableDataclassUnpacker(TreeFieldsUnpacker["StorableDataclass"]):
    """Body plus contents for dataclasses deriving from StorableDataclass."""

    name = "labox.dataclass@v2"
    legacy = (LegacyDataclassUnpacker(),)

    def fields(self, cls: type[StorableDataclass]) -> tuple[FieldInfo, ...]:
        return _fields(cls, with_non_init=True)

    def encode_body(
        self, encoder: ValueEncoder, obj: StorableDataclass, fields: dict[str, Any]
    ) -> Any:
        return fields

    def build(
        self, decoder: ValueDecoder, cls: type[StorableDataclass], body: Any
    ) -> StorableDataclass:
        return decoder.dataclass(cls, body)  # type: ignore[no-any-return]


class StorableDataclass(Storable, unpacker=StorableDataclassUnpacker()):
    """Base for ``@dataclass`` classes that can be saved; give each a ``class_id``."""


_FIELDS: dict[tuple[type[Any], bool], tuple[FieldInfo, ...]] = {}
_ADAPTERS: dict[type[Any], dict[str, TypeAdapter[Any]]] = {}


def _fields(cls: type[Any], with_non_init: bool = False) -> tuple[FieldInfo, ...]:
    if (cached := _FIELDS.get((cls, with_non_init))) is not None:
        return cached
    if not dataclasses.is_dataclass(cls):
        raise StorableTypeError(
            f"{cls.__qualname__} derives from StorableDataclass but is not a dataclass; "
            f"decorate it with @dataclasses.dataclass."
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    infos = []
    for field in dataclasses.fields(cls):
        if not (field.init or with_non_init):
            continue
        annotation = hints.get(field.name, Any)
        metadata = typing.get_args(annotation)[1:] if _is_annotated(annotation) else ()
        infos.append(FieldInfo(field.name, annotation, content_spec_of(metadata)))
    _FIELDS[cls, with_non_init] = result = tuple(infos)
    return result


def _adapters(cls: type[Any]) -> dict[str, TypeAdapter[Any]]:
    if (cached := _ADAPTERS.get(cls)) is None:
        cached = {f.name: _adapter(f.annotation) for f in _fields(cls)}
        _ADAPTERS[cls] = cached
    return cached


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(annotation, config=_ADAPTER_CONFIG)
    except PydanticUserError:
        # Models, dataclasses and TypedDicts carry their own config and refuse ours.
        return TypeAdapter(annotation)


def _is_annotated(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Annotated
