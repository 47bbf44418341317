"""``results show``'s preview: a small result loaded, a large one by the head of each content.

A record whose contents are all small (at most ``LOAD_LIMIT`` bytes, no stream) is loaded
and shown by ``preview_text``: a table (a DataFrame, Series or Arrow table) as its head; a
dict, dataclass or model holding tables as its other items, one per line, then each table
under its key; anything else as its repr. Otherwise each content is *peeked*, reading only
what its preview needs:

- Parquet (a DataFrame, an Arrow table, a stream of frames): the footer, then the first
  ``ROWS`` rows of the first ``COLUMNS`` columns (pyarrow reads the pages they are in);
- an Arrow IPC stream: its first record batch;
- anything else (JSON, JSON lines, text, bytes, ``.npy``): its first ``HEAD_BYTES`` bytes,
  shown as text (the first ``SHOWN_CHARACTERS``) when they decode as UTF-8, else named by
  their format (PNG, JPEG, ...) or in hex.

A peek reads at random offsets through the storage's fsspec filesystem (files, S3, memory);
a storage of another kind is read whole (those keep small data in the database). Peeks are
not hash-checked (``labox-prefect verify`` and every load are): they only show.

Every table is printed by ``table_text``: the first ``ROWS`` rows and ``COLUMNS`` columns,
cells cut at ``CELL`` characters, as pandas prints them, wrapped in blocks of columns at the
width it is given (the terminal's, less the panel's border).
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from labox_prefect.core import ContentRecord, NotRegisteredError, Registry
from labox_prefect.core.builtin import StorableStream
from labox_prefect.core.builtin.storages import FsspecStorage
from labox_prefect.core.extra.pyarrow import ARROW_STREAM_CONTENT_TYPE, PARQUET_CONTENT_TYPE
from labox_prefect.preview import (
    FIELDS,
    cut,
    fields_of,
    human_size,
    image_format,
    shape_of,
    short_repr,
    type_name,
)

ROWS = 5
"""Rows of a table that ``show`` prints."""
COLUMNS = 8
"""Columns of a table that ``show`` prints (the first ones)."""
CELL = 40
"""Characters of a table cell that ``show`` prints."""
LOAD_LIMIT = 1024 * 1024
"""Records whose contents add up to at most this many bytes (and hold no stream) are loaded."""
HEAD_BYTES = 2048
SHOWN_CHARACTERS = 600
"""Characters of a peeked text, and of a loaded value's repr, that ``show`` prints."""
INDENT = "  "
"""How far a table inside a dict, dataclass or model is indented under its key."""
_PARQUET_BUFFER = 64 * 1024


@dataclass(frozen=True)
class Peek:
    """What was read of one content: a title line and its text."""

    key: str
    title: str
    text: str


def worth_loading(contents: list[ContentRecord], registry: Registry) -> bool:
    """Whether the whole value is small enough to load for its preview (and holds no stream)."""
    if sum(content.content_size for content in contents) > LOAD_LIMIT:
        return False
    return not any(_is_stream(content, registry) for content in contents)


def preview_text(value: Any, width: int) -> str:
    """A loaded value as plain text (not Rich markup), its table lines at most ``width``
    characters wide (pandas wraps a wider table in blocks of columns)."""
    table = _table_head(value, width)
    if table is not None:
        return table
    if isinstance(value, StorableStream):
        return "An async stream: it is read when iterated, so show does not read it."
    if isinstance(value, bytes) and image_format(value) is not None:
        return (
            f"bytes: a {shape_of(value)} image ({human_size(len(value))}); export "
            f"it with `labox-prefect results get ID -o FILE`"
        )
    fields = fields_of(value)
    if fields is not None and any(_is_table(item) for _, item in fields):
        return _fields_text(value, fields, width)
    text = repr(value)
    if len(text) > SHOWN_CHARACTERS:
        text = f"{text[:SHOWN_CHARACTERS]}… ({len(text) - SHOWN_CHARACTERS} more characters)"
    return f"{type_name(value)}: {text}"


def table_text(head: pd.DataFrame | pa.Table, width: int) -> str:
    """A table's head (already cut to the rows and columns shown) as pandas prints it: cells
    cut at ``CELL`` characters, lines at ``width`` (wider tables in blocks of columns)."""
    frame = head.to_pandas() if isinstance(head, pa.Table) else head
    text: str = frame.to_string(max_colwidth=CELL, line_width=max(width, 20))
    return "\n".join(line.rstrip() for line in text.splitlines())


async def peek_contents(
    contents: list[ContentRecord], registry: Registry, width: int
) -> list[Peek]:
    """A peek at each content, in order (see the module's docstring for what is read); its
    table lines at most ``width`` characters wide."""
    return [await peek_content(content, registry, width) for content in contents]


async def peek_content(content: ContentRecord, registry: Registry, width: int) -> Peek:
    """The head of one content, reading only what it shows."""
    storage = registry.get_storage(content.storage_name)
    config = content.storage_config or {}
    media_type = (content.content_type or "").partition(";")[0].strip()
    stream = _is_stream(content, registry)
    size = human_size(content.content_size)
    if isinstance(storage, FsspecStorage):
        path = f"{storage.root}/{storage.key_of(config)}"
        opened: IO[bytes] = await asyncio.to_thread(storage.fs.open, path, "rb")
    else:
        opened = io.BytesIO(await storage.read_data(config))
    with opened as file:
        if media_type == PARQUET_CONTENT_TYPE:
            title, text = await asyncio.to_thread(_parquet_head, file, stream, width)
        elif media_type == ARROW_STREAM_CONTENT_TYPE:
            title, text = await asyncio.to_thread(_arrow_head, file, width)
        else:
            head = await asyncio.to_thread(file.read, HEAD_BYTES)
            title, text = _bytes_head(head, content.content_size, stream)
    return Peek(content.content_key, f"{title}; {size} stored", text)


def _is_stream(content: ContentRecord, registry: Registry) -> bool:
    try:
        registry.get_stream_serializer(content.serializer_name)
    except NotRegisteredError:
        return False
    return True


def _parquet_head(file: IO[bytes], stream: bool, width: int) -> tuple[str, str]:
    parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
    names = parquet.schema_arrow.names
    data_names = [name for name in names if not name.startswith("__index_level_")]
    shown = data_names[:COLUMNS]
    batches = parquet.iter_batches(batch_size=ROWS, columns=shown)
    first = next(batches, None)
    head = (
        pa.Table.from_batches([first]) if first is not None else parquet.schema_arrow.empty_table()
    )
    rows = parquet.metadata.num_rows
    groups = parquet.metadata.num_row_groups
    what = f"frames, {groups} in all" if stream else "a table"
    cut = (
        f", first {len(shown)} of {len(data_names)} columns" if len(shown) < len(data_names) else ""
    )
    title = f"Parquet: {what}, {rows:,} rows; the first {min(ROWS, rows)} rows{cut}"
    return title, table_text(head, width)


def _arrow_head(file: IO[bytes], width: int) -> tuple[str, str]:
    reader = pa.ipc.open_stream(file)
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return "Arrow stream: no batches", ""
    head = pa.Table.from_batches([batch.slice(0, ROWS)]).select(batch.schema.names[:COLUMNS])
    title = f"Arrow stream: the first {head.num_rows} rows of its first batch ({batch.num_rows:,})"
    return title, table_text(head, width)


def _is_table(value: Any) -> bool:
    return isinstance(value, pd.DataFrame | pd.Series | pa.Table)


def _table_head(value: Any, width: int) -> str | None:
    """A table's title line (its type, size and what is shown) and head; None for others."""
    if isinstance(value, pd.Series):
        name = "" if value.name is None else f" {short_repr(value.name)}"
        title = f"Series{name}, {len(value):,} rows"
        head = value.iloc[:ROWS].to_frame(name="" if value.name is None else value.name)
        shown, columns = min(ROWS, len(value)), 1
    elif isinstance(value, pd.DataFrame):
        rows, columns = value.shape
        title = f"DataFrame, {rows:,} rows x {columns:,} columns"
        head, shown = value.iloc[:ROWS, :COLUMNS], min(ROWS, rows)
    elif isinstance(value, pa.Table):
        rows, columns = value.num_rows, value.num_columns
        title = f"Arrow Table, {rows:,} rows x {columns:,} columns"
        head = value.slice(0, ROWS).select(value.column_names[:COLUMNS])
        shown = min(ROWS, rows)
    else:
        return None
    if columns > COLUMNS:
        title += f"; the first {shown} rows and {COLUMNS} columns"
    elif shown < len(value):
        title += f"; the first {shown} rows"
    return f"{title}\n{table_text(head, width)}"


def _fields_text(value: Any, fields: list[tuple[str, Any]], width: int) -> str:
    """A value's type and size, its other items one per line, then each table under its key."""
    shape = shape_of(value)
    lines = [type_name(value) + (f", {shape}" if shape else "")]
    items = fields
    if len(items) == FIELDS and (count := _count(value)) is not None and count > FIELDS:
        lines[0] += f" (the first {FIELDS})"
    for key, item in items:
        if not _is_table(item):
            lines.append(cut(f"{key}: {' '.join(short_repr(item).split())}", width))
    for key, item in items:
        table = _table_head(item, width - len(INDENT))
        if table is not None:
            title, _, text = table.partition("\n")
            lines.append(f"{key}: {title}")
            lines.extend(INDENT + line for line in text.splitlines())
    return "\n".join(lines)


def _count(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _bytes_head(head: bytes, size: int, stream: bool) -> tuple[str, str]:
    kind = "stream, " if stream else ""
    image = image_format(head)
    if image is not None:
        return f"{image} image ({kind}{size:,} bytes)", "(an image: export it with results get)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not just a character cut at the end of the head
            hexed = head[:64].hex(" ")
            return f"bytes ({kind}the first 64 of {size:,})", hexed
        text = head[: error.start].decode("utf-8")
    shown = text[:SHOWN_CHARACTERS]
    more = size - len(shown.encode("utf-8"))
    suffix = f"… ({more:,} more bytes)" if more > 0 else ""
    label = (
        f"the first {len(shown):,} characters of {size:,} bytes" if more > 0 else f"{size:,} bytes"
    )
    return f"text ({kind}{label})", shown + suffix


__all__ = [
    "LOAD_LIMIT",
    "Peek",
    "peek_content",
    "peek_contents",
    "preview_text",
    "table_text",
    "worth_loading",
]
