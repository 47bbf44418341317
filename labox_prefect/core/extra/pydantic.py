"""Pydantic models as storables.

The body is the model's state as a typed value tree (see fields.py and VALUES.md): every
field with the value and type it holds (a NaN in a ``dict[str, Any]``, a tuple in an ``Any``
field), extra fields (``extra="allow"``), the set of fields set, and private attributes. The
object is rebuilt from that state without validation (as copy and pickle do), so it equals
the saved one field by field; fields added to the class since take their defaults. Records
of the v1 format (``model_dump(mode="json")`` then ``model_validate``) still load.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from labox_prefect.core.builtin.serializers.tree import ValueDecoder, ValueEncoder
from labox_prefect.core.builtin.storables.fields import (
    ContentSpec,
    FieldInfo,
    FieldsUnpacker,
    TreeFieldsUnpacker,
)
from labox_prefect.core.builtin.storables.fields import content_spec_of as _content_spec_of
from labox_prefect.core.storable import Storable


class LegacyModelUnpacker(FieldsUnpacker["StorableModel"]):
    """Reads records of labox.pydantic@v1 (a ``model_dump(mode="json")`` body)."""

    name = "labox.pydantic@v1"

    def fields(self, cls: type[StorableModel]) -> tuple[FieldInfo, ...]:
        return _fields(cls)

    def dump_body(self, obj: StorableModel, names: list[str]) -> dict[str, Any]:
        return obj.model_dump(mode="json", include=set(names), by_alias=False)

    def build(
        self, cls: type[StorableModel], body: dict[str, Any], contents: dict[str, Any]
    ) -> StorableModel:
        return cls.model_validate({**body, **contents}, by_name=True)


class StorableModelUnpacker(TreeFieldsUnpacker["StorableModel"]):
    """Body plus contents for pydantic models deriving from StorableModel."""

    name = "labox.pydantic@v2"
    legacy = (LegacyModelUnpacker(),)

    def fields(self, cls: type[StorableModel]) -> tuple[FieldInfo, ...]:
        return _fields(cls)

    def encode_body(self, encoder: ValueEncoder, obj: StorableModel, fields: dict[str, Any]) -> Any:
        return encoder.model_state(obj, fields)

    def build(self, decoder: ValueDecoder, cls: type[StorableModel], body: Any) -> StorableModel:
        return decoder.model(cls, body)  # type: ignore[no-any-return]


class StorableModel(BaseModel, Storable, unpacker=StorableModelUnpacker()):
    """Base for pydantic models that can be saved; give each a ``class_id``.

    Arbitrary types are allowed so fields can hold DataFrames, tables or async streams,
    which are stored as contents of their own.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(arbitrary_types_allowed=True)


@functools.cache
def _fields(cls: type[StorableModel]) -> tuple[FieldInfo, ...]:
    return tuple(
        FieldInfo(name, info.annotation, _content_spec_of(info.metadata))
        for name, info in cls.model_fields.items()
    )


__all__ = ["ContentSpec", "LegacyModelUnpacker", "StorableModel", "StorableModelUnpacker"]
