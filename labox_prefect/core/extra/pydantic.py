"""Pydantic models as storables.

The JSON body is the model's own ``model_dump(mode="json")`` of its plain fields and the
object is rebuilt with ``model_validate``, so aliases, validators and nested models behave as
the model author defined them.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from labox_prefect.core.builtin.storables.fields import ContentSpec, FieldInfo, FieldsUnpacker
from labox_prefect.core.builtin.storables.fields import content_spec_of as _content_spec_of
from labox_prefect.core.storable import Storable


class StorableModelUnpacker(FieldsUnpacker["StorableModel"]):
    """Body plus contents for pydantic models deriving from StorableModel."""

    name = "labox.pydantic@v1"

    def fields(self, cls: type[StorableModel]) -> tuple[FieldInfo, ...]:
        return _fields(cls)

    def dump_body(self, obj: StorableModel, names: list[str]) -> dict[str, Any]:
        return obj.model_dump(mode="json", include=set(names), by_alias=False)

    def build(
        self, cls: type[StorableModel], body: dict[str, Any], contents: dict[str, Any]
    ) -> StorableModel:
        return cls.model_validate({**body, **contents}, by_name=True)


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


__all__ = ["ContentSpec", "StorableModel", "StorableModelUnpacker"]
