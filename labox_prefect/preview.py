"""What a saved value is, in a few words and one short line, for people in the UI.

Computed from the value itself, on the publisher thread, at a bounded cost: a frame's first
20 column names, a model's or mapping's first 12 fields, a ``reprlib`` repr of anything else
(at most 240 characters before the line is cut to 80), the format and pixel size of image
bytes (PNG, JPEG, GIF, WebP, read from the header). Streams are never iterated. Libraries are
only used when the value's own module is already imported (``sys.modules``), so nothing is
imported for a preview. The line is plain text: Prefect's table artifacts show cells as text.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import reprlib
import sys
from collections.abc import Mapping
from typing import Any

COLUMNS = 20
"""Column names read for a frame's line."""
FIELDS = 12
"""Fields read for a model's, dataclass's or mapping's line."""
SHORT = 240
LINE = 80
"""The longest preview line, in characters."""

_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)

_repr = reprlib.Repr()
_repr.maxstring = SHORT
_repr.maxother = SHORT
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10
_repr.maxlevel = 3


def type_name(value: Any) -> str:
    """The value's own class name (``DataFrame``, ``ndarray``, ``dict``)."""
    return type(value).__qualname__


def shape_of(value: Any) -> str | None:
    """``1000x3`` for anything with a tuple ``shape``, the length of a sized value (``4 keys``,
    ``12 items``, ``1,024 characters``, ``5 bytes``), else None.

    Image bytes read ``PNG 640x480`` (the format, and the size when the header tells it).
    """
    if isinstance(value, bytes | bytearray):
        image = image_format(value)
        if image is not None:
            size = image_size(value)
            return f"{image} {size[0]}x{size[1]}" if size else image
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(side, int) for side in shape):
        return "x".join(str(side) for side in shape) if shape else "scalar"
    if _is_stream(value):
        return "stream"
    try:
        length = len(value)
    except TypeError:
        return None
    if isinstance(value, str):
        unit = "character"
    elif isinstance(value, bytes | bytearray | memoryview):
        unit = "byte"
    else:
        unit = "key" if isinstance(value, Mapping) else "item"
    return f"{length:,} {unit}{'' if length == 1 else 's'}"


def human_size(size: int) -> str:
    """Bytes in binary units with one decimal: ``512 B``, ``23.4 KiB``, ``1.2 GiB``."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def short_repr(value: Any) -> str:
    """A repr of at most about 240 characters, whatever the value's size."""
    return _repr.repr(value)


def image_format(data: bytes | bytearray) -> str | None:
    """``PNG``, ``JPEG``, ``GIF`` or ``WebP`` when ``data`` starts like one, else None."""
    head = bytes(data[:12])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for signature, name in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def image_size(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG or GIF header, else None (not read for others)."""
    head = bytes(data[:32])
    if head.startswith(_IMAGE_SIGNATURES[0][0]) and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    return None


def preview_line(value: Any, length: int = LINE) -> str:
    """One line of at most ``length`` characters (default 80) about what ``value`` holds.

    A frame's column names (``columns: city, price``), a model's, dataclass's or str-keyed
    mapping's first fields (``learning_rate=0.01, layers=3``), ``PNG image`` for image bytes,
    ``stream`` for a generator (never iterated), else a ``reprlib`` repr; whitespace is
    collapsed and a longer line ends with ``…``.
    """
    if isinstance(value, bytes | bytearray):
        image = image_format(value)
        if image is not None:
            return _cut(f"{image} image", length)
    if _is_stream(value):
        return "stream (its items are in the record)"
    columns = _columns(value)
    if columns is not None:
        return _cut("columns: " + ", ".join(str(name) for name in columns), length)
    fields = fields_of(value)
    if fields is not None:
        text = ""
        for name, item in fields:
            text += f"{', ' if text else ''}{name}={short_repr(item)}"
            if len(text) > length:
                break
        return _cut(text, length)
    return _cut(short_repr(value), length)


def cut(text: str, length: int) -> str:
    """``text`` if it has at most ``length`` characters, else its start ending with ``…``."""
    return text if len(text) <= length else text[: length - 1] + "…"


def _cut(text: str, length: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``length``."""
    return cut(" ".join(text.split()), length)


def _is_stream(value: Any) -> bool:
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


def _columns(value: Any) -> list[Any] | None:
    """The first column names of a pandas or polars DataFrame or a pyarrow Table."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return list(value.columns[:COLUMNS])
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(value, polars.DataFrame):
        return list(value.columns[:COLUMNS])
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, pyarrow.Table):
        return list(value.column_names[:COLUMNS])
    return None


def fields_of(value: Any) -> list[tuple[str, Any]] | None:
    """The first 12 fields of a pydantic model or dataclass, or items of a mapping with
    ``str`` keys, as (name, value) pairs; None for other values."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        names = list(type(value).model_fields)[:FIELDS]
        return [(name, getattr(value, name)) for name in names]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)[:FIELDS]]
    if isinstance(value, Mapping) and value:
        keys = list(itertools.islice(value, FIELDS))
        if all(isinstance(key, str) for key in keys):
            return [(key, value[key]) for key in keys]
    return None


__all__ = [
    "cut",
    "fields_of",
    "human_size",
    "image_format",
    "image_size",
    "preview_line",
    "shape_of",
    "short_repr",
    "type_name",
]
