"""The rules shared by field-based storables (pydantic models and dataclasses).

One object becomes one JSON *body* content holding every plain field, plus one content per
field that should not be inlined: a field annotated with a ``ContentSpec``, an async stream,
or a value the JSON body cannot hold natively (bytes, DataFrames, ...). Large binary values
therefore go to a storage as themselves, never base64 inside the body.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, get_args, get_origin

from labox_prefect.core.builtin.serializers import json_serializer, value_tree_serializer
from labox_prefect.core.builtin.serializers.tree import (
    REF_TAG,
    EncodedTree,
    ValueDecoder,
    ValueEncoder,
)
from labox_prefect.core.builtin.storables._routing import ContentRouter, is_small
from labox_prefect.core.errors import StorableTypeError
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import Serializer, StreamSerializer
from labox_prefect.core.storable import Storable
from labox_prefect.core.storage import Storage
from labox_prefect.core.unpacker import Unpacked, UnpackedStream, UnpackedValue, Unpacker

S = TypeVar("S", bound=Storable)

BODY_KEY = "__body__"
"""Content key of the JSON body; field names are Python identifiers, so it cannot clash."""

_INLINE_TYPES: tuple[type[Any], ...] = (
    str,
    int,
    float,
    bool,
    type(None),
    list,
    tuple,
    dict,
    set,
    frozenset,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
    enum.Enum,
)


@dataclass(frozen=True, slots=True)
class ContentSpec:
    """Annotation metadata that stores a field as its own content.

    ``Annotated[AsyncIterable[pd.DataFrame], ContentSpec(serializer=...)]`` picks the
    serializer (and optionally the storage) for that field instead of the inferred ones.
    """

    serializer: Serializer[Any] | StreamSerializer[Any] | None = None
    storage: Storage | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        # Content fields hold streams or third-party objects pydantic has no schema for;
        # check them by isinstance on their runtime class instead.
        from pydantic_core import core_schema

        try:
            return handler(source)
        except Exception:
            origin = get_origin(source) or source
            if isinstance(origin, type):
                return core_schema.is_instance_schema(origin)
            return core_schema.any_schema()


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """What the unpacker needs to know about one field of a storable class."""

    name: str
    annotation: Any
    spec: ContentSpec | None


def content_spec_of(metadata: typing.Iterable[Any]) -> ContentSpec | None:
    for item in metadata:
        if isinstance(item, ContentSpec):
            return item
    return None


def stream_item_type(annotation: Any) -> type[Any] | None:
    """``X`` for an ``AsyncIterable[X]``-like annotation (through Optional), else None."""
    candidates = [annotation]
    if get_origin(annotation) is typing.Annotated:
        candidates = [get_args(annotation)[0]]
    for candidate in list(candidates):
        if get_origin(candidate) in (typing.Union, types.UnionType):
            candidates.extend(get_args(candidate))
    for candidate in candidates:
        origin = get_origin(candidate)
        if (
            isinstance(origin, type)
            and issubclass(origin, collections.abc.AsyncIterable)
            and (args := get_args(candidate))
            and isinstance(args[0], type)
        ):
            return args[0]
    return None


def is_stream(value: Any) -> bool:
    return isinstance(value, AsyncIterable)


def is_inline(value: Any) -> bool:
    """True for values the JSON body holds natively (nested models and dataclasses too)."""
    if isinstance(value, _INLINE_TYPES):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    return hasattr(type(value), "model_dump")  # nested pydantic models


class TreeFieldsUnpacker(Unpacker[S]):
    """Field-based storables as a typed value tree plus contents; subclasses list fields and
    say how the body is laid out and the object rebuilt."""

    def fields(self, cls: type[S]) -> tuple[FieldInfo, ...]:
        raise NotImplementedError

    def encode_body(self, encoder: ValueEncoder, obj: S, fields: dict[str, Any]) -> Any:
        """The body tree, given the nodes of the fields."""
        raise NotImplementedError

    def build(self, decoder: ValueDecoder, cls: type[S], body: Any) -> S:
        raise NotImplementedError

    def unpack_object(self, obj: S, registry: Registry, /) -> Mapping[str, Unpacked]:
        contents: dict[str, Unpacked] = {}
        router = ContentRouter(registry, contents, None)
        nodes: dict[str, Any] = {}
        for field in self.fields(type(obj)):
            value = getattr(obj, field.name)
            if value is not None and is_stream(value):
                contents[field.name] = UnpackedStream(
                    stream=value,
                    serializer=_stream_serializer(field),
                    storage=field.spec.storage if field.spec else None,
                    item_type=stream_item_type(field.annotation),
                )
                nodes[field.name] = {REF_TAG: field.name}
            elif value is not None and field.spec is not None:
                contents[field.name] = UnpackedValue(
                    value=value, serializer=_value_serializer(field), storage=field.spec.storage
                )
                nodes[field.name] = {REF_TAG: field.name}
            else:
                nodes[field.name] = router.encoder.encode(value, field.name)
        router.encoder.at(type(obj).__qualname__)
        body = self.encode_body(router.encoder, obj, nodes)
        contents[BODY_KEY] = UnpackedValue(body, value_tree_serializer)
        return contents

    def unpacks_quickly(self, obj: S, /) -> bool:
        return all(is_small(getattr(obj, field.name)) for field in self.fields(type(obj)))

    def repack_object(self, cls: type[S], contents: Mapping[str, Any], registry: Registry, /) -> S:
        body = contents.get(BODY_KEY)
        if not isinstance(body, EncodedTree):
            raise StorableTypeError(
                f"The record of {cls.__qualname__} has no value-tree body; it was not saved "
                f"by {self.name}."
            )
        return self.build(ValueDecoder(contents), cls, body.tree)


class FieldsUnpacker(Unpacker[S]):
    """The v1 format of field-based storables: a JSON body dumped by the class's rules."""

    def fields(self, cls: type[S]) -> tuple[FieldInfo, ...]:
        raise NotImplementedError

    def dump_body(self, obj: S, names: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, cls: type[S], body: dict[str, Any], contents: dict[str, Any]) -> S:
        raise NotImplementedError

    def unpack_object(self, obj: S, registry: Registry, /) -> Mapping[str, Unpacked]:
        body_names: list[str] = []
        contents: dict[str, Unpacked] = {}
        for field in self.fields(type(obj)):
            value = getattr(obj, field.name)
            if value is None:
                body_names.append(field.name)
            elif is_stream(value):
                item_type = stream_item_type(field.annotation)
                contents[field.name] = UnpackedStream(
                    stream=value,
                    serializer=_stream_serializer(field),
                    storage=field.spec.storage if field.spec else None,
                    item_type=item_type,
                )
            elif field.spec is not None or not is_inline(value):
                contents[field.name] = UnpackedValue(
                    value=value,
                    serializer=_value_serializer(field),
                    storage=field.spec.storage if field.spec else None,
                )
            else:
                body_names.append(field.name)
        contents[BODY_KEY] = UnpackedValue(
            value=self.dump_body(obj, body_names), serializer=json_serializer
        )
        return contents

    def repack_object(self, cls: type[S], contents: Mapping[str, Any], registry: Registry, /) -> S:
        values = dict(contents)
        body = values.pop(BODY_KEY, None)
        if not isinstance(body, dict):
            raise StorableTypeError(
                f"The record of {cls.__qualname__} has no JSON body; it was not saved by "
                f"{self.name}."
            )
        return self.build(cls, body, values)


def _value_serializer(field: FieldInfo) -> Serializer[Any] | None:
    spec = field.spec
    if spec is None or spec.serializer is None:
        return None
    if isinstance(spec.serializer, StreamSerializer):
        raise StorableTypeError(
            f"Field {field.name!r} holds a single value but its ContentSpec names the stream "
            f"serializer {spec.serializer.name!r}; give it a value serializer."
        )
    return spec.serializer


def _stream_serializer(field: FieldInfo) -> StreamSerializer[Any] | None:
    spec = field.spec
    if spec is None or spec.serializer is None:
        return None
    if not isinstance(spec.serializer, StreamSerializer):
        raise StorableTypeError(
            f"Field {field.name!r} holds an async stream but its ContentSpec names the value "
            f"serializer {spec.serializer.name!r}; give it a stream serializer."
        )
    return spec.serializer
