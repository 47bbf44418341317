"""What a saved value is, in a few words and a small Markdown preview, for people in the UI.

Computed from the value itself, on the publisher thread, at a bounded cost: a frame's
head (5 rows, 8 columns), a model's or mapping's first 12 fields, a ``reprlib`` repr of
anything else (at most 240 characters), an inline image for image bytes (PNG, JPEG, GIF,
WebP up to ``IMAGE_BYTES``, as a ``data:`` URI: Prefect's Markdown renderer shows it as an
``<img>``). Streams are never iterated. Libraries are only used
when the value's own module is already imported (``sys.modules``), so nothing is imported for
a preview. Markdown cells escape what GitHub-flavoured Markdown would interpret
(``|``, ``*``, ``_``, backticks, ``<``), so ``__body__`` shows as ``__body__``, not bold.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import itertools
import reprlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ROWS = 5
COLUMNS = 8
FIELDS = 12
CELL = 40
SHORT = 240
IMAGE_BYTES = 512 * 1024
"""Image bytes up to this size are shown inline in an artifact; larger ones are described."""

_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png"),
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
    (b"GIF87a", "GIF", "image/gif"),
    (b"GIF89a", "GIF", "image/gif"),
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
    for signature, name, _ in _IMAGE_SIGNATURES:
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


def image_markdown(data: bytes | bytearray) -> str | None:
    """Image bytes as a Markdown image (a ``data:`` URI), or a line when too large; else None."""
    name = image_format(data)
    if name is None:
        return None
    media_type = "image/webp" if name == "WebP" else _media_type(name)
    size = image_size(data)
    label = f"{name} image" + (f", {size[0]}x{size[1]}" if size else "")
    if len(data) > IMAGE_BYTES:
        return (
            f"_{label}, {human_size(len(data))}: too large to show here "
            f"(`labox-prefect results get ID -o FILE` exports it)._"
        )
    encoded = base64.b64encode(bytes(data)).decode("ascii")
    return f"![{label}](data:{media_type};base64,{encoded})"


def _media_type(name: str) -> str:
    return next(media for _, known, media in _IMAGE_SIGNATURES if known == name)


def preview_markdown(value: Any) -> str:
    """A small Markdown preview: a table for frames, models and mappings, an image for image
    bytes, else a code block."""
    if isinstance(value, bytes | bytearray):
        image = image_markdown(value)
        if image is not None:
            return image
    if _is_stream(value):
        return f"A stream (`{escape(type_name(value))}`): its items are in the stored record."
    rows = _frame_rows(value)
    if rows is not None:
        return table(rows)
    fields = fields_of(value)
    if fields is not None:
        return table([{"field": name, "value": short_repr(item)} for name, item in fields])
    return f"```\n{short_repr(value)}\n```"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (the first row's keys are the header)."""
    if not rows:
        return "_(empty)_"
    header = list(rows[0])
    lines = [
        "| " + " | ".join(escape(str(name)) for name in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(name, "")) for name in header) + " |")
    return "\n".join(lines)


def cell(value: Any) -> str:
    """One table cell: text cut to 40 characters, escaped."""
    text = value if isinstance(value, str) else short_repr(value)
    text = " ".join(text.split())
    if len(text) > CELL:
        text = text[: CELL - 1] + "…"
    return escape(text)


def escape(text: str) -> str:
    """Text that Markdown shows as is."""
    for char in ("\\", "|", "*", "_", "`", "<", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def _is_stream(value: Any) -> bool:
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


def _frame_rows(value: Any) -> list[dict[str, Any]] | None:
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        head = value.iloc[:ROWS, :COLUMNS]
        return [
            {str(name): item for name, item in zip(head.columns, row, strict=True)}
            for row in head.itertuples(index=False)
        ] or [{str(name): "" for name in head.columns}]
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(value, polars.DataFrame):
        head = value.select(value.columns[:COLUMNS]).head(ROWS)
        rows: list[dict[str, Any]] = head.to_dicts()
        return rows or [dict.fromkeys(head.columns, "")]
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, pyarrow.Table):
        head = value.select(value.column_names[:COLUMNS]).slice(0, ROWS)
        rows = head.to_pylist()
        return rows or [dict.fromkeys(head.column_names, "")]
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
    "cell",
    "escape",
    "fields_of",
    "human_size",
    "image_format",
    "image_markdown",
    "image_size",
    "preview_markdown",
    "shape_of",
    "short_repr",
    "table",
    "type_name",
]
