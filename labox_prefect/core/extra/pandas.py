"""pandas values as Parquet: a DataFrame, Series, Index or Categorical as one file, a
stream of frames as one file too. Each loads back equal in value and type (dtypes, index,
labels, names, categories; see `labox_prefect.core.extra._frames` for the descriptor that
keeps them), or is refused when saved with a SerializationError naming the column.

A stream is written one row group per frame, and its bytes leave as each row group is
flushed, so saving holds one frame at a time. Parquet keeps its index of row groups in a
footer at the end, so reading needs the whole file: a stream kept as a local file
(`FileStorage`) is read in place, its hash checked on a thread beside the reads; any other
is spooled to a temporary file first. Either way one row group (one frame) is read at a
time: memory stays bounded by the largest frame. Arrow conversion, Parquet encoding and
decoding run off the event loop, on a thread of the stream's own.
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
from labox_prefect.core.digest import LocalFile
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra._frames import (
    decode_frame,
    decode_name,
    encode_frame,
    encode_name,
    index_to_table,
    read_descriptor,
    with_descriptor,
)
from labox_prefect.core.extra.pyarrow import (
    PARQUET_COMPRESSION,
    PARQUET_CONTENT_TYPE,
    PARQUET_DICTIONARY_PAGE_LIMIT,
    ChunkSink,
    describe_schema_change,
    read_parquet,
    type_fits,
    write_parquet,
)
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

FRAMES_KEY = "labox.pandas.frames"
"""Footer metadata key: each frame's descriptor, one per row group (see `_FrameDescriptors`)."""
RANGE_INDEXES_KEY = "labox.range_indexes"
"""Footer metadata key of streams written before descriptors: each frame's RangeIndex
(start, stop, step), as pandas' metadata records only the first frame's."""
SERIES_COLUMN = "values"
"""The column a Series or Categorical is stored in (a Series' own name is in the descriptor)."""
MAX_FRAME_ROWS = 64 * 1024 * 1024
"""Parquet writers split larger row groups; a stream frame must stay one row group."""
STREAM_PIECE_SIZE = 1024 * 1024
"""A row group leaves in pieces of about this size: never a second copy of a whole frame."""
_SPOOL_FLUSH_BYTES = 1024 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class ParquetDataFrameSerializer(Serializer[pd.DataFrame]):
    """A DataFrame as one Parquet file that loads back equal in value and type.

    Values are written as ``to_parquet`` writes them (other tools read the file as usual);
    the dtypes, index and column labels are kept exactly by a descriptor in the file's
    metadata (see `labox_prefect.core.extra._frames`). What Parquet cannot keep (duplicate
    column labels, complex numbers, object columns of anything but str or bytes, ...) is
    refused with a SerializationError naming the column. Files written before the
    descriptor existed are read the way ``read_parquet`` reads them.
    """

    name = "labox.pandas.parquet@v1"
    types = (pd.DataFrame,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pd.DataFrame, /) -> SerializedData:
        table, descriptor = frame_to_table(value, self.name, "the value")
        table = with_descriptor(table, descriptor)
        return SerializedData(data=write_parquet(table), content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pd.DataFrame:
        table = read_parquet(content.data, self.name)
        descriptor = read_descriptor(table.schema.metadata, self.name)
        if descriptor is None:
            legacy: pd.DataFrame = table.to_pandas()
            return legacy
        return decode_frame(table, descriptor, self.name)


class ParquetSeriesSerializer(Serializer[pd.Series]):
    """A Series as one Parquet file of one column: its values, dtype, index and name."""

    name = "labox.pandas.series-parquet@v1"
    types = (pd.Series,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pd.Series, /) -> SerializedData:
        if type(value) is not pd.Series:
            raise _not_a(self.name, value, "pandas.Series", "pandas.Series(value)")
        context = f"{self.name}: the value"
        name = encode_name(value.name, f"{context}'s name")
        table, descriptor = encode_frame(value.to_frame(name=SERIES_COLUMN), context)
        table = with_descriptor(table, {**descriptor, "series_name": name})
        return SerializedData(data=write_parquet(table), content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pd.Series:
        table = read_parquet(content.data, self.name)
        descriptor = read_descriptor(table.schema.metadata, self.name)
        frame = decode_frame(table, descriptor, self.name)
        if frame.shape[1] != 1 or "series_name" not in descriptor:
            raise SerializationError(
                f"{self.name} read a frame of {frame.shape[1]} columns without a series name; "
                f"the content was not written by {self.name}."
            )
        series = frame.iloc[:, 0]
        series.name = decode_name(descriptor["series_name"])
        return series


class ParquetIndexSerializer(Serializer[pd.Index]):
    """A pandas Index of any kind (Range, Datetime with freq, Categorical, Multi, ...) as
    Parquet: the index of a frame without columns."""

    name = "labox.pandas.index-parquet@v1"
    types = (pd.Index,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pd.Index, /) -> SerializedData:
        if not isinstance(value, pd.Index):
            raise _not_a(self.name, value, "pandas.Index", "pandas.Index(value)")
        table = index_to_table(value, f"{self.name}: the value")
        return SerializedData(data=write_parquet(table), content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pd.Index:
        table = read_parquet(content.data, self.name)
        index: pd.Index = decode_frame(
            table, read_descriptor(table.schema.metadata, self.name), self.name
        ).index
        return index


class ParquetCategoricalSerializer(Serializer[pd.Categorical]):
    """A pandas Categorical (its values, categories with their dtype, and ``ordered``) as
    Parquet: one column of a frame."""

    name = "labox.pandas.categorical-parquet@v1"
    types = (pd.Categorical,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pd.Categorical, /) -> SerializedData:
        if type(value) is not pd.Categorical:
            raise _not_a(self.name, value, "pandas.Categorical", "pandas.Categorical(value)")
        frame = pd.DataFrame({SERIES_COLUMN: value})
        table, descriptor = encode_frame(frame, f"{self.name}: the value")
        table = with_descriptor(table, descriptor)
        return SerializedData(data=write_parquet(table), content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pd.Categorical:
        table = read_parquet(content.data, self.name)
        frame = decode_frame(table, read_descriptor(table.schema.metadata, self.name), self.name)
        values = frame.iloc[:, 0].array
        if not isinstance(values, pd.Categorical):
            raise SerializationError(
                f"{self.name} read a column of {values.dtype}, not a categorical; the content "
                f"was not written by {self.name}."
            )
        return values


class ParquetDataFrameStreamSerializer(StreamSerializer[pd.DataFrame]):
    """A stream of DataFrames as one Parquet file with one row group per frame.

    Every frame loads back equal in value and type to what was written, with its own
    index, column labels and dtypes (each frame's descriptor is kept in the footer). The
    file has one schema, set by the first frame with rows; every frame is cast to it where
    no value changes (a frame without rows always fits): a categorical whose categories
    grow or change (dictionary indices are stored as int32, whatever width a frame's
    categories need), a column that is all missing (a first frame's all-missing object
    column is stored as string), str stored as string or large_string, datetimes in
    another unit, an int column that becomes nullable (Int64). Frames whose columns are
    named differently, or whose values would change (int to str, int to float), are
    refused with a SerializationError naming the frame and the column. An empty stream is
    a valid file with no row groups.
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
        return self._decode(content)

    async def _encode(self, stream: AsyncIterable[pd.DataFrame]) -> AsyncIterator[bytes]:
        sink = ChunkSink()
        arrow = _ArrowThread()
        writer: pq.ParquetWriter | None = None
        layout: _Layout | None = None
        early: list[tuple[pa.Table, str]] = []  # empty frames before the first with rows
        descriptors = _FrameDescriptors()

        async def write(table: pa.Table, what: str) -> None:
            assert writer is not None
            assert layout is not None
            table = await arrow.run(layout.conform, table, self.name, what)
            await arrow.run(writer.write_table, table, row_group_size=max(table.num_rows, 1))

        try:
            async with closing_source(stream):
                async for frame in stream:
                    what = f"frame {len(descriptors) + 1} of the stream"
                    table, descriptor = await arrow.run(frame_to_table, frame, self.name, what)
                    if table.num_rows > MAX_FRAME_ROWS:
                        raise SerializationError(
                            f"{self.name}: {what} has {table.num_rows} rows, more than one "
                            f"Parquet row group holds ({MAX_FRAME_ROWS}); yield smaller frames."
                        )
                    descriptors.add(descriptor)
                    if layout is None and table.num_rows == 0:
                        early.append((table, what))  # the first frame with rows sets the types
                        continue
                    if layout is None:
                        layout = _Layout.of(table)
                        writer = _parquet_writer(sink, layout.schema)
                        for empty, empty_what in early:
                            await write(empty, empty_what)
                        early.clear()
                    await write(table, what)
                    # Hold neither this frame nor its bytes while the next one is made.
                    del frame, table
                    for piece in sink.drain_pieces(STREAM_PIECE_SIZE):
                        yield piece
            if writer is None:
                layout = _Layout.of(early[0][0]) if early else _Layout(pa.schema([]))
                writer = _parquet_writer(sink, layout.schema)
                for empty, empty_what in early:
                    await write(empty, empty_what)
            writer.add_key_value_metadata({FRAMES_KEY: descriptors.to_json()})
            await arrow.run(writer.close)
            yield sink.drain()
        finally:
            if writer is not None and writer.is_open:
                writer.close()  # after a failure: release it; its bytes are dropped
            arrow.close()

    async def _decode(self, content: SerializedDataStream) -> AsyncIterator[pd.DataFrame]:
        local = content.local_file
        if local is not None:  # a local file: read in place, its hash checked beside
            async for frame in self._read_frames(local.path, local):
                yield frame
                del frame  # hold no frame while the next is read
            return
        descriptor, path = tempfile.mkstemp(prefix="labox-spool-", suffix=".parquet")
        try:
            with os.fdopen(descriptor, "wb") as spool:
                await _spool(content.data_stream, spool)
            async for frame in self._read_frames(path, None):
                yield frame
                del frame
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _read_frames(self, path: str, local: LocalFile | None) -> AsyncIterator[pd.DataFrame]:
        """Each row group of the Parquet file at ``path`` as the frame it was written from.

        With ``local``, the file's hash is checked on a thread beside the reads, and must
        match before the last frame is given; a file Parquet cannot read is reported as
        corrupted when its hash says so.
        """
        check = None if local is None else asyncio.ensure_future(local.verify())
        arrow = _ArrowThread()
        try:
            try:
                parquet = await arrow.run(self._open, path)
                try:
                    stored = _stored_frames(parquet, self.name)
                    for index, how in enumerate(stored):
                        # A fresh index per frame, held only by that frame: pandas caches an
                        # index's values on it (frame.index.values, hashing, joins), so an
                        # index kept here would hold 8 bytes per row of every frame until the
                        # end.
                        frame = await arrow.run(read_frame, parquet, index, how, self.name)
                        if check is not None and index == len(stored) - 1:
                            await check
                        yield frame
                        del frame
                finally:
                    parquet.close()
            except (SerializationError, pa.ArrowException, OSError):
                if check is not None:
                    await check  # raises ContentCorruptedError if the bytes were altered
                raise
            if check is not None:
                await check  # a stream of no frames
        finally:
            arrow.close()
            if check is not None and not check.done():
                check.cancel()

    def _open(self, path: str) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise SerializationError(
                f"{self.name} cannot read this content as Parquet ({error}); the content is "
                f"corrupted, truncated or was not written by {self.name}."
            ) from None


def _parquet_writer(sink: ChunkSink, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer of the stream's file, with the options of every Parquet file written here."""
    return pq.ParquetWriter(
        sink,
        schema,
        compression=PARQUET_COMPRESSION,
        dictionary_pagesize_limit=PARQUET_DICTIONARY_PAGE_LIMIT,
    )


def frame_to_table(frame: Any, serializer_name: str, what: str) -> tuple[pa.Table, dict[str, Any]]:
    """``frame`` as an Arrow table and its descriptor (see `_frames.encode_frame`)."""
    if not isinstance(frame, pd.DataFrame):
        raise SerializationError(
            f"{serializer_name}: {what} is a {type(frame).__name__}, not a pandas.DataFrame; "
            f"convert it (a Series: series.to_frame()) or pick a serializer for it."
        )
    return encode_frame(frame, f"{serializer_name}: {what}")


def read_frame(
    parquet: pq.ParquetFile, index: int, stored: _StoredFrame, serializer_name: str
) -> pd.DataFrame:
    """Row group ``index`` as the DataFrame it was written from."""
    table = parquet.read_row_group(index)
    if isinstance(stored, dict):
        return decode_frame(table, stored, f"{serializer_name}: frame {index + 1}")
    frame: pd.DataFrame = table.to_pandas()
    if stored is not None:
        frame.index = stored.to_index()
    return frame


class _ArrowThread:
    """One worker thread for all the Arrow work of writing or reading one stream, started on
    first use.

    Arrow's allocator (mimalloc) keeps memory freed on a thread in that thread's heap for a
    while. Spread over the event loop's shared pool of threads, each row group's buffers
    would land in another heap, and the peak memory of saving a stream varied from run to
    run by up to two frames; on one thread, each row group reuses the memory of the one
    before.
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
    """The one Arrow schema of a stream's file, set by its first frame.

    Dictionaries (categoricals) are stored with int32 indices, whatever width a frame's
    categories need, and a first frame's all-missing object column as string.
    """

    schema: pa.Schema

    @classmethod
    def of(cls, table: pa.Table) -> _Layout:
        fields = [_stream_field(field) for field in table.schema]
        return cls(pa.schema(fields, metadata=table.schema.metadata))  # pandas' own, for others

    def conform(self, table: pa.Table, serializer_name: str, what: str) -> pa.Table:
        """``table`` in the stream's schema, or a SerializationError naming the column."""
        schema = table.schema
        if schema.names != self.schema.names:
            raise SerializationError(
                f"{serializer_name}: {what} does not match the stream's first frame with rows "
                f"({describe_schema_change(self.schema, schema)}). Every frame must have the "
                f"same columns and index levels, in the same order, with the same names."
            )
        if table.num_rows == 0:  # no value to change: any types fit
            return self.schema.empty_table()
        arrays = []
        for position, (field, want) in enumerate(zip(schema, self.schema, strict=True)):
            column = table.column(position)
            if field.type != want.type:
                column = _cast_column(column, want.type, serializer_name, what, field.name)
            arrays.append(column)
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _stream_field(field: pa.Field) -> pa.Field:
    if pa.types.is_dictionary(field.type):
        return field.with_type(pa.dictionary(pa.int32(), field.type.value_type))
    if pa.types.is_null(field.type):
        return field.with_type(pa.string())
    return field


def _cast_column(
    column: pa.ChunkedArray, wanted: pa.DataType, serializer_name: str, what: str, name: str
) -> pa.ChunkedArray:
    problem = f"column {name!r} is {column.type}, the stream's is {wanted}"
    if type_fits(column.type, wanted):
        try:
            return column.cast(wanted, safe=True)
        except pa.ArrowException as error:
            problem += f", and its values do not fit it ({error})"
    raise SerializationError(
        f"{serializer_name}: {what} does not fit the stream's schema: {problem}. Give the "
        f"column the same type in every frame (df.astype(...)), or save the frames apart."
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


_StoredFrame = dict[str, Any] | _StoredRange | None
"""How to read one row group back: its descriptor or, for content written before
descriptors existed, its RangeIndex (or nothing)."""


def _stored_frames(parquet: pq.ParquetFile, serializer_name: str) -> list[_StoredFrame]:
    """How to read each row group back, from the footer."""
    raw = (parquet.metadata.metadata or {}).get(FRAMES_KEY.encode())
    if raw is None:
        return list(_stored_ranges(parquet, serializer_name))
    try:
        descriptors = _FrameDescriptors.from_json(raw)
    except (ValueError, TypeError, KeyError, IndexError):
        descriptors = None
    if descriptors is None or len(descriptors) != parquet.num_row_groups:
        raise SerializationError(
            f"{serializer_name} cannot read this content: its footer does not describe one "
            f"frame per row group ({parquet.num_row_groups}). It was not written by "
            f"{serializer_name}."
        )
    return list(descriptors)


class _FrameDescriptors:
    """Every frame's descriptor, in the footer as
    ``{"shared": [text, ...], "frames": [descriptor, ...]}``.

    The large parts of a descriptor (encoded column labels, categories and MultiIndex
    levels) mostly repeat from frame to frame: each distinct one is kept once, in
    ``shared``, and a descriptor holds ``{"shared": position}`` in its place. A long stream
    of small frames thus keeps a small footer, and holds little while it is written.
    """

    _SHARED_KEYS = frozenset({"columns", "categories", "multi"})

    def __init__(self) -> None:
        self._shared: dict[str, int] = {}
        self._frames: list[Any] = []

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, descriptor: dict[str, Any]) -> None:
        self._frames.append(self._share(descriptor))

    def to_json(self) -> str:
        return json.dumps({"shared": list(self._shared), "frames": self._frames})

    @classmethod
    def from_json(cls, raw: bytes) -> list[dict[str, Any]]:
        stored = json.loads(raw)
        shared = stored["shared"]
        return [_unshare(frame, shared) for frame in stored["frames"]]

    def _share(self, value: Any, key: str = "") -> Any:
        if key in self._SHARED_KEYS and isinstance(value, str):
            return {"shared": self._shared.setdefault(value, len(self._shared))}
        if isinstance(value, dict):
            return {k: self._share(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._share(item, key) for item in value]
        return value


def _unshare(value: Any, shared: list[str]) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"shared"}:
            return shared[value["shared"]]
        return {k: _unshare(v, shared) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(item, shared) for item in value]
    return value


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


def _not_a(serializer_name: str, value: Any, expected: str, fix: str) -> SerializationError:
    return SerializationError(
        f"{serializer_name} writes {expected}, not {type(value).__module__}."
        f"{type(value).__qualname__} (a subclass would load back as {expected}); convert it "
        f"({fix}) or pick a serializer for it."
    )


parquet_series_serializer = ParquetSeriesSerializer()
"""Series as Parquet: values, dtype, index and name."""
parquet_index_serializer = ParquetIndexSerializer()
"""Indexes of every kind as Parquet."""
parquet_categorical_serializer = ParquetCategoricalSerializer()
"""Categoricals as Parquet, with their categories' dtype and order."""

__all__ = [
    "ParquetCategoricalSerializer",
    "ParquetDataFrameSerializer",
    "ParquetDataFrameStreamSerializer",
    "ParquetIndexSerializer",
    "ParquetSeriesSerializer",
    "parquet_categorical_serializer",
    "parquet_data_frame_serializer",
    "parquet_data_frame_stream_serializer",
    "parquet_index_serializer",
    "parquet_series_serializer",
]
