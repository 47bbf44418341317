"""``results show``'s preview of a large result: read the head of each content, not the whole.

A record whose contents are all small (at most ``LOAD_LIMIT`` bytes, no stream) is loaded
and shown whole. Otherwise each content is *peeked*, reading only what its preview needs:

- Parquet (a DataFrame, an Arrow table, a stream of frames): the footer, then the first
  ``ROWS`` rows of the first ``COLUMNS`` columns (pyarrow reads the pages they are in);
- an Arrow IPC stream: its first record batch;
- anything else (JSON, JSON lines, text, bytes, ``.npy``): its first ``HEAD_BYTES`` bytes,
  shown as text (the first ``SHOWN_CHARACTERS``) when they decode as UTF-8, else named by
  their format (PNG, JPEG, ...) or in hex.

A peek reads at random offsets through the storage's fsspec filesystem (files, S3, memory);
a storage of another kind is read whole (those keep small data in the database). Peeks are
not hash-checked (``labox-prefect verify`` and every load are): they only show.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from labox_prefect.core import ContentRecord, NotRegisteredError, Registry
from labox_prefect.core.builtin.storages import FsspecStorage
from labox_prefect.core.extra.pyarrow import ARROW_STREAM_CONTENT_TYPE, PARQUET_CONTENT_TYPE
from labox_prefect.preview import human_size, image_format

LOAD_LIMIT = 1024 * 1024
"""Records whose contents add up to at most this many bytes (and hold no stream) are loaded."""
ROWS = 5
COLUMNS = 8
HEAD_BYTES = 2048
SHOWN_CHARACTERS = 600
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


async def peek_contents(contents: list[ContentRecord], registry: Registry) -> list[Peek]:
    """A peek at each content, in order (see the module's docstring for what is read)."""
    return [await peek_content(content, registry) for content in contents]


async def peek_content(content: ContentRecord, registry: Registry) -> Peek:
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
            title, text = await asyncio.to_thread(_parquet_head, file, stream)
        elif media_type == ARROW_STREAM_CONTENT_TYPE:
            title, text = await asyncio.to_thread(_arrow_head, file)
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


def _parquet_head(file: IO[bytes], stream: bool) -> tuple[str, str]:
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
    return title, _table_text(head)


def _arrow_head(file: IO[bytes]) -> tuple[str, str]:
    reader = pa.ipc.open_stream(file)
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return "Arrow stream: no batches", ""
    head = pa.Table.from_batches([batch.slice(0, ROWS)]).select(batch.schema.names[:COLUMNS])
    title = f"Arrow stream: the first {head.num_rows} rows of its first batch ({batch.num_rows:,})"
    return title, _table_text(head)


def _table_text(head: pa.Table) -> str:
    frame = head.to_pandas()
    text: str = frame.to_string(max_colwidth=40)
    return text


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


__all__ = ["LOAD_LIMIT", "Peek", "peek_content", "peek_contents", "worth_loading"]
