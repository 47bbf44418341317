"""JSON values, and streams of them as JSON Lines.

orjson does the work: a storable's JSON body is written for every saved object, so it must be
cheap for many small dicts. Two orjson habits would lose data silently, so they are caught:
NaN and infinities become ``null`` (refused here), and integers beyond 64 bits make it fail
(written by the standard library instead, and read back exactly).
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson

from labox_prefect.core.builtin.serializers._streams import closing_source
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/x-ndjson"

_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_ATOMS = (str, int, float, bool, type(None), enum.Enum, uuid.UUID)
_MAX_DEPTH = 254  # orjson's own nesting limit
_DIGITS_AS_ZEROS = bytes(b"0"[0] if b"0"[0] <= b <= b"9"[0] else b" "[0] for b in range(256))
_LONG_NUMBER = b"0" * 19  # 19+ digits may not fit 64 bits: orjson would read a float
_FLUSH_BYTES = 64 * 1024


def encode_json(value: Any, serializer_name: str) -> bytes:
    """Compact UTF-8 JSON for ``value``, or a SerializationError that names what is wrong."""
    try:
        data = orjson.dumps(value, default=_plain_builtin, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError as error:
        if (problem := _find_problem(value)) is not None:
            raise SerializationError(_refusal(serializer_name, problem)) from None
        return _encode_with_stdlib(value, serializer_name, error)
    # orjson writes non-finite floats as null: look for them only when a null was written.
    if b"null" in data and _has_non_finite_float(value):
        raise SerializationError(_refusal(serializer_name, _find_problem(value) or "NaN"))
    return data


def decode_json(data: bytes | bytearray, serializer_name: str, where: str = "") -> Any:
    """The value of one JSON document; integers of any size come back exact."""
    try:
        if _LONG_NUMBER in data.translate(_DIGITS_AS_ZEROS):
            return json.loads(data, parse_constant=_refuse_constant)
        return orjson.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise SerializationError(
            f"{serializer_name} cannot read{where}: the bytes are not valid UTF-8 JSON "
            f"({error}). The content is corrupted or was not written by {serializer_name}."
        ) from None


class JsonSerializer(Serializer[Any]):
    """Plain JSON for dicts, lists, numbers, booleans and None, used only where named.

    It reads tuples back as lists, so it is inferred for no type: values go through the typed
    values serializer (values.py). It reads the bodies of v1 records.
    """

    name = "labox.json@v1"
    content_types = (JSON_CONTENT_TYPE,)

    def serialize_data(self, value: Any, /) -> SerializedData:
        return SerializedData(data=encode_json(value, self.name), content_type=JSON_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> Any:
        return decode_json(bytes(content.data), self.name)


class JsonLinesStreamSerializer(StreamSerializer[Any]):
    """A stream of JSON values as JSON Lines: one value per line, read back one at a time.

    Plain JSON reads tuples back as lists, so this serializer is used only where named (and
    for records that name it); streams of values go through the typed-values lines of
    values.py, which subclass this one and only change how one line is written and read.
    """

    name = "labox.jsonl-stream@v1"
    content_types = (JSON_LINES_CONTENT_TYPE,)

    def encode_line(self, value: Any, /) -> bytes:
        """One value as one line of JSON, without its newline."""
        return encode_json(value, self.name)

    def decode_line(self, line: bytes, where: str, /) -> Any:
        """The value of one line; ``where`` names the line in error messages."""
        return decode_json(line, self.name, where)

    def serialize_data_stream(self, stream: AsyncIterable[Any], /) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=self._encode(stream), content_type=JSON_LINES_CONTENT_TYPE
        )

    def deserialize_data_stream(self, content: SerializedDataStream, /) -> AsyncIterator[Any]:
        return self._decode(content.data_stream)

    async def _encode(self, stream: AsyncIterable[Any]) -> AsyncIterator[bytes]:
        # Lines are batched into chunks of about 64 KiB: a storage write per value is slow.
        batch: list[bytes] = []
        size = 0
        async with closing_source(stream):
            async for value in stream:
                line = self.encode_line(value)
                batch += (line, b"\n")
                size += len(line) + 1
                if size >= _FLUSH_BYTES:
                    yield b"".join(batch)
                    batch.clear()
                    size = 0
        if batch:
            yield b"".join(batch)

    async def _decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[Any]:
        pending = bytearray()
        line_number = 0
        async with closing_source(source):
            async for chunk in source:
                pending += chunk
                if b"\n" not in chunk:
                    continue
                end = pending.rfind(b"\n")
                complete = pending[:end]
                del pending[: end + 1]
                for line in complete.split(b"\n"):
                    line_number += 1
                    yield self.decode_line(bytes(line), f" line {line_number}")
        if pending:
            raise SerializationError(
                f"{self.name} stream ends in the middle of line {line_number + 1} "
                f"({len(pending)} bytes after the last newline): the content is truncated."
            )


def _plain_builtin(obj: Any) -> Any:
    """Turn subclasses of JSON's types (OrderedDict, namedtuple, ...) into the types."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    raise TypeError  # _find_problem explains it


def _has_non_finite_float(value: Any) -> bool:
    """True if a NaN or infinity is inside ``value`` (which orjson could already write)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if item - item != 0.0:  # nan and inf give nan; finite floats give 0.0
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def _find_problem(value: Any, path: str = "value", depth: int = 0) -> str | None:
    """Where ``value`` stops being JSON, said for a person; None if it is fine."""
    if depth > _MAX_DEPTH:
        shown = path if len(path) <= 80 else f"{path[:80]}..."
        return f"{shown} is nested more than {_MAX_DEPTH} levels deep (or contains itself)"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is {value!r}, which JSON cannot represent; use None or a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (
                    f"{path} has the key {key!r} of type {type(key).__name__}; JSON object "
                    f"keys must be str, so convert the keys first"
                )
            if (problem := _find_problem(item, f"{path}[{key!r}]", depth + 1)) is not None:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if (problem := _find_problem(item, f"{path}[{index}]", depth + 1)) is not None:
                return problem
        return None
    if isinstance(value, _ATOMS):
        return None
    return (
        f"{path} is a {type(value).__module__}.{type(value).__qualname__}, which JSON would "
        f"read back as a different type; store it in its own field or content with a "
        f"serializer for its type, or convert it to str, int, float, bool, None, list or dict"
    )


def _refusal(serializer_name: str, problem: str) -> str:
    return f"{serializer_name} cannot write this value: {problem}."


def _encode_with_stdlib(value: Any, serializer_name: str, cause: Exception) -> bytes:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as error:
        raise SerializationError(
            f"{serializer_name} cannot write this value: {cause}; {error}."
        ) from None
    return text.encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
