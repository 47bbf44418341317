"""What a saved value is, in a few words and a small Markdown preview, for people in the UI.

Computed from the value itself, on the publisher thread, at a bounded cost: a frame's
head (5 rows, 8 columns), a model's or mapping's first 12 fields, a ``reprlib`` repr of
anything else (at most 240 characters). Streams are never iterated. Libraries are only used
when the value's own module is already imported (``sys.modules``), so nothing is imported for
a preview. Markdown cells escape what GitHub-flavoured Markdown would interpret
(``|``, ``*``, ``_``, backticks, ``<``), so ``__body__`` shows as ``__body__``, not bold.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import reprlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ROWS = 5
COLUMNS = 8
FIELDS = 12
CELL = 40
SHORT = 240

_repr = reprlib.Repr()
_repr.maxstring = SHORT
_repr.maxother = SHORT
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10
_repr.maxlevel = 3


def type_name(value: Any) -> str:
    """The value's own class name (``DataFrame``, ``ndarray``, ``dict``)."""
    return type(value).__qualname__


def shape_of(value: Any) -> str | None:
    """``1000x3`` for anything with a tuple ``shape``, ``len 12`` for a sized value, else None."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(side, int) for side in shape):
        return "x".join(str(side) for side in shape) if shape else "scalar"
    if _is_stream(value):
        return "stream"
    try:
        return f"len {len(value)}"
    except TypeError:
        return None


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


def preview_markdown(value: Any) -> str:
    """A small Markdown preview: a table for frames, models and mappings, else a code block."""
    if _is_stream(value):
        return f"A stream (`{escape(type_name(value))}`): its items are in the stored record."
    rows = _frame_rows(value)
    if rows is not None:
        return table(rows)
    fields = _fields(value)
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


def _fields(value: Any) -> Iterable[tuple[str, Any]] | None:
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
    "human_size",
    "preview_markdown",
    "shape_of",
    "short_repr",
    "table",
    "type_name",
]
