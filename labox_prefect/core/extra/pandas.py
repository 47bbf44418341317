"""pandas DataFrames as Parquet: one frame as one file, a stream of frames as one file too.

A stream is written one row group per frame, and its bytes leave as each row group is
flushed, so saving holds one frame at a time. Parquet keeps its index of row groups in a
footer at the end, so reading spools the bytes to a temporary file first, then reads one row
group (one frame) at a time: memory stays bounded by the largest frame either way. Arrow
conversion and Parquet encoding run off the event loop: a stream's writes on a thread of its
own, its reads in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, ParamSpec, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from labox_prefect.core.builtin.serializers._streams import closing_source
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra.pyarrow import (
    PARQUET_COMPRESSION,
    PARQUET_CONTENT_TYPE,
    ChunkSink,
    describe_schema_change,
    read_parquet,
    write_parquet,
)
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

RANGE_INDEXES_KEY = "labox.range_indexes"
"""Footer metadata key: each frame's RangeIndex (start, stop, step), as pandas' metadata
records only the first frame's."""
MAX_FRAME_ROWS = 64 * 1024 * 1024
"""Parquet writers split larger row groups; a stream frame must stay one row group."""
STREAM_PIECE_SIZE = 1024 * 1024
"""A row group leaves in pieces of about this size: never a second copy of a whole frame."""
_SPOOL_FLUSH_BYTES = 1024 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class ParquetDataFrameSerializer(Serializer[pd.DataFrame]):
    """A DataFrame as one Parquet file, written and read the way ``to_parquet`` does.

    The index round-trips as with ``to_parquet``: a RangeIndex as metadata, any other index
    as columns.
    """

    name = "labox.pandas.parquet@v1"
    types = (pd.DataFrame,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pd.DataFrame, /) -> SerializedData:
        table = frame_to_table(value, self.name, "the value")
        return SerializedData(data=write_parquet(table), content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pd.DataFrame:
        frame: pd.DataFrame = read_parquet(content.data, self.name).to_pandas()
        return frame


class ParquetDataFrameStreamSerializer(StreamSerializer[pd.DataFrame]):
    """A stream of DataFrames as one Parquet file with one row group per frame.

    Every frame must have the same columns, Arrow types and kind of index as the first
    (an empty frame, or a column that is all null, is cast to the first frame's types and
    read back with them); each frame's own RangeIndex is kept. An empty stream is a valid
    file with no row groups.
    """

    name = "labox.pandas.parquet-stream@v1"
    types = (pd.DataFrame,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data_stream(self, stream: AsyncIterable[pd.DataFrame], /) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=self._encode(stream), content_type=PARQUET_CONTENT_TYPE
        )

    def deserialize_data_stream(
        self, content: SerializedDataStream, /
    ) -> AsyncIterator[pd.DataFrame]:
        return self._decode(content.data_stream)

    async def _encode(self, stream: AsyncIterable[pd.DataFrame]) -> AsyncIterator[bytes]:
        sink = ChunkSink()
        arrow = _ArrowThread()
        writer: pq.ParquetWriter | None = None
        layout: _Layout | None = None
        ranges: list[list[int] | None] = []
        try:
            async with closing_source(stream):
                async for frame in stream:
                    what = f"frame {len(ranges) + 1} of the stream"
                    table = await arrow.run(frame_to_table, frame, self.name, what)
                    if layout is None:
                        layout = _Layout.of(table)
                        writer = pq.ParquetWriter(
                            sink, table.schema, compression=PARQUET_COMPRESSION
                        )
                    else:
                        table = layout.conform(table, self.name, what)
                    if table.num_rows > MAX_FRAME_ROWS:
                        raise SerializationError(
                            f"{self.name}: {what} has {table.num_rows} rows, more than one "
                            f"Parquet row group holds ({MAX_FRAME_ROWS}); yield smaller frames."
                        )
                    assert writer is not None
                    await arrow.run(
                        writer.write_table, table, row_group_size=max(table.num_rows, 1)
                    )
                    ranges.append(_range_of(table))
                    # Hold neither this frame nor its bytes while the next one is made.
                    del frame, table
                    for piece in sink.drain_pieces(STREAM_PIECE_SIZE):
                        yield piece
            if writer is None:
                writer = pq.ParquetWriter(sink, pa.schema([]))  # an empty stream stays readable
            if any(r is not None for r in ranges):
                writer.add_key_value_metadata({RANGE_INDEXES_KEY: json.dumps(ranges)})
            await arrow.run(writer.close)
            yield sink.drain()
        finally:
            if writer is not None and writer.is_open:
                writer.close()  # after a failure: release it; its bytes are dropped
            arrow.close()

    async def _decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[pd.DataFrame]:
        descriptor, path = tempfile.mkstemp(prefix="labox-spool-", suffix=".parquet")
        try:
            with os.fdopen(descriptor, "wb") as spool:
                await _spool(source, spool)
            parquet = await asyncio.to_thread(self._open, path)
            try:
                ranges = _stored_ranges(parquet, self.name)
                for index, stored in enumerate(ranges):
                    # A fresh RangeIndex per frame, held only by that frame: pandas caches an
                    # index's values on it (frame.index.values, hashing, joins), so an index
                    # kept here would hold 8 bytes per row of every frame until the end.
                    yield await asyncio.to_thread(
                        read_frame, parquet, index, None if stored is None else stored.to_index()
                    )
            finally:
                parquet.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _open(self, path: str) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise SerializationError(
                f"{self.name} cannot read this content as Parquet ({error}); the content is "
                f"corrupted, truncated or was not written by {self.name}."
            ) from None


def frame_to_table(frame: Any, serializer_name: str, what: str) -> pa.Table:
    """``frame`` as an Arrow table with its index kept as ``to_parquet`` keeps it."""
    if not isinstance(frame, pd.DataFrame):
        raise SerializationError(
            f"{serializer_name}: {what} is a {type(frame).__name__}, not a pandas.DataFrame; "
            f"convert it (a Series: series.to_frame()) or pick a serializer for it."
        )
    try:
        return pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise SerializationError(
            f"{serializer_name} cannot convert {what} to Arrow: {error}. Give each object "
            f"column a single type (e.g. df[column].astype(str))."
        ) from None


def read_frame(
    parquet: pq.ParquetFile, index: int, range_index: pd.RangeIndex | None
) -> pd.DataFrame:
    """Row group ``index`` as a DataFrame, with the RangeIndex its frame had when written."""
    frame: pd.DataFrame = parquet.read_row_group(index).to_pandas()
    if range_index is not None:
        frame.index = range_index
    return frame


class _ArrowThread:
    """One worker thread for all the Arrow work of writing one stream, started on first use.

    Arrow's allocator (mimalloc) keeps memory freed on a thread in that thread's heap for a
    while. Spread over the event loop's shared pool of threads, each row group's encoding
    buffers would land in another heap, and the peak memory of saving a stream varied from
    run to run by up to two frames; on one thread, each row group reuses the memory of the
    one before. (Reading measured the same either way, so it uses the shared pool.)
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` on this stream's thread, with the caller's context."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labox-arrow")
        call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Let the thread end once its current work (if any) is done; never blocks."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)


@dataclass(frozen=True)
class _Layout:
    """What every frame of a stream must share with the first: Arrow schema and index kind."""

    schema: pa.Schema
    index: list[Any]

    @classmethod
    def of(cls, table: pa.Table) -> _Layout:
        return cls(table.schema.remove_metadata(), _index_kind(table))

    def conform(self, table: pa.Table, serializer_name: str, what: str) -> pa.Table:
        """``table`` if it fits the layout (empty frames and all-null columns are cast to it)."""
        index = _index_kind(table)
        schema = table.schema.remove_metadata()
        if index == self.index and schema.equals(self.schema):
            return table
        # No values are lost by giving an empty frame, or an all-null column, the first types.
        if index == self.index and schema.names == self.schema.names:
            expected = self.schema.with_metadata(table.schema.metadata)
            if table.num_rows == 0:
                return expected.empty_table()
            if _differs_only_by_null_columns(schema, self.schema):
                with contextlib.suppress(pa.ArrowException):
                    return table.cast(expected)
        if index != self.index:
            change = f"its index is {_describe_index(index)}, not {_describe_index(self.index)}"
        else:
            change = describe_schema_change(self.schema, schema)
        raise SerializationError(
            f"{serializer_name}: {what} does not match the first frame ({change}). Every frame "
            f"must have the same columns, dtypes and kind of index: cast columns explicitly "
            f"(df.astype(...)) and reset non-range indexes alike (df.reset_index(drop=True))."
        )


def _pandas_metadata(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(b"pandas")
    return json.loads(raw) if raw else {}


def _index_kind(table: pa.Table) -> list[Any]:
    """The index descriptors of pandas' metadata, without a RangeIndex's bounds."""
    kinds = []
    for descriptor in _pandas_metadata(table).get("index_columns", []):
        if isinstance(descriptor, dict):
            descriptor = {k: v for k, v in descriptor.items() if k not in ("start", "stop", "step")}
        kinds.append(descriptor)
    return kinds


def _describe_index(kind: list[Any]) -> str:
    if len(kind) == 1 and isinstance(kind[0], dict) and kind[0].get("kind") == "range":
        return f"a RangeIndex named {kind[0].get('name')!r}"
    return f"stored as the columns {kind}" if kind else "absent"


def _range_of(table: pa.Table) -> list[int] | None:
    for descriptor in _pandas_metadata(table).get("index_columns", []):
        if isinstance(descriptor, dict) and descriptor.get("kind") == "range":
            return [descriptor["start"], descriptor["stop"], descriptor["step"]]
    return None


def _differs_only_by_null_columns(schema: pa.Schema, expected: pa.Schema) -> bool:
    return all(
        field.equals(want) or field.type == pa.null()
        for field, want in zip(schema, expected, strict=True)
    )


@dataclass(frozen=True, slots=True)
class _StoredRange:
    """A frame's RangeIndex as the footer records it: plain numbers until its frame is read."""

    start: int
    stop: int
    step: int
    name: Any

    def to_index(self) -> pd.RangeIndex:
        return pd.RangeIndex(self.start, self.stop, self.step, name=self.name)


def _stored_ranges(parquet: pq.ParquetFile, serializer_name: str) -> list[_StoredRange | None]:
    """Each frame's RangeIndex, as recorded in the footer (None where there is none)."""
    metadata = parquet.metadata.metadata or {}
    raw = metadata.get(RANGE_INDEXES_KEY.encode())
    if raw is None:
        return [None] * parquet.num_row_groups
    ranges = json.loads(raw)
    if not isinstance(ranges, list) or len(ranges) != parquet.num_row_groups:
        raise SerializationError(
            f"{serializer_name} cannot read this content: its footer does not list one index "
            f"per row group ({parquet.num_row_groups}). It was not written by {serializer_name}."
        )
    # pandas' metadata holds the first frame's index; its name is every frame's name.
    pandas_metadata = json.loads(metadata.get(b"pandas", b"{}"))
    name = next(
        (
            descriptor.get("name")
            for descriptor in pandas_metadata.get("index_columns", [])
            if isinstance(descriptor, dict)
        ),
        None,
    )
    return [None if r is None else _StoredRange(r[0], r[1], r[2], name) for r in ranges]


async def _spool(source: AsyncIterable[bytes], spool: IO[bytes]) -> None:
    """Copy the byte stream to ``spool``, writing in batches from a worker thread."""
    batch: list[bytes] = []
    size = 0
    async with closing_source(source):
        async for chunk in source:
            batch.append(chunk)
            size += len(chunk)
            if size >= _SPOOL_FLUSH_BYTES:
                await asyncio.to_thread(spool.writelines, batch)
                batch, size = [], 0
    if batch:
        await asyncio.to_thread(spool.writelines, batch)


parquet_data_frame_serializer = ParquetDataFrameSerializer()
"""DataFrames as Parquet, as fast as ``to_parquet``."""
parquet_data_frame_stream_serializer = ParquetDataFrameStreamSerializer()
"""DataFrame streams as one Parquet file, one row group per frame, in bounded memory."""

__all__ = [
    "ParquetDataFrameSerializer",
    "ParquetDataFrameStreamSerializer",
    "parquet_data_frame_serializer",
    "parquet_data_frame_stream_serializer",
]
