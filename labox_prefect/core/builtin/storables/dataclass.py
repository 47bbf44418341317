"""Dataclasses as storables.

Plain fields are dumped to the JSON body through pydantic's TypeAdapter for the field's own
annotation, so what JSON cannot say natively comes back as declared: tuples stay tuples,
dates stay dates, nested dataclasses are rebuilt. Bytes and other binary values become
contents of their own (see fields.py), so bytes stay bytes.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from pydantic import ConfigDict, PydanticUserError, TypeAdapter

from labox_prefect.core.builtin.storables.fields import FieldInfo, FieldsUnpacker, content_spec_of
from labox_prefect.core.errors import StorableTypeError
from labox_prefect.core.storable import Storable

D = TypeVar("D", bound="StorableDataclass")

_ADAPTER_CONFIG = ConfigDict(arbitrary_types_allowed=True)


class StorableDataclassUnpacker(FieldsUnpacker["StorableDataclass"]):
    """Body plus contents for dataclasses deriving from StorableDataclass."""

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


class StorableDataclass(Storable, unpacker=StorableDataclassUnpacker()):
    """Base for ``@dataclass`` classes that can be saved; give each a ``class_id``."""


_FIELDS: dict[type[Any], tuple[FieldInfo, ...]] = {}
_ADAPTERS: dict[type[Any], dict[str, TypeAdapter[Any]]] = {}


def _fields(cls: type[Any]) -> tuple[FieldInfo, ...]:
    if (cached := _FIELDS.get(cls)) is not None:
        return cached
    if not dataclasses.is_dataclass(cls):
        raise StorableTypeError(
            f"{cls.__qualname__} derives from StorableDataclass but is not a dataclass; "
            f"decorate it with @dataclasses.dataclass."
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    infos = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        annotation = hints.get(field.name, Any)
        metadata = typing.get_args(annotation)[1:] if _is_annotated(annotation) else ()
        infos.append(FieldInfo(field.name, annotation, content_spec_of(metadata)))
    _FIELDS[cls] = result = tuple(infos)
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
