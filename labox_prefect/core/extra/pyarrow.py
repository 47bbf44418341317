"""Arrow tables as Parquet, and streams of record batches in the Arrow IPC stream format.

The IPC stream format needs no footer, so a stream is read back batch by batch as its bytes
arrive, with no spooling: the reader cuts the bytes into IPC messages itself and hands each
complete record batch to pyarrow's own stream reader. An IPC stream has one schema; when a
batch's schema changes in a way that keeps its values (dictionary index widths, a column
that was all null, string and large_string, units of time), the writer ends that IPC stream
and starts another, so every batch reads back with its own schema.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import io
import mmap
import os
import struct
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from labox_prefect.core.builtin.serializers._streams import closing_source
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
ARROW_STREAM_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
PARQUET_COMPRESSION = "snappy"
"""The codec pandas' ``to_parquet`` uses by default: fast, and read by every Parquet tool."""
PARQUET_DICTIONARY_PAGE_LIMIT = 1_000_000
"""Bytes of a column's dictionary at which the Parquet writer stops dictionary-encoding the
column and writes its values plainly: just under Arrow's default of 1 MiB. With the default,
a column of many distinct values (ids, floats, timestamps) gives up only once its dictionary
has passed 1 MiB, which for values of 1, 2, 4 or 8 bytes is exactly when the hash table
behind the dictionary grows: about 32 MiB of Arrow memory for each such column (measured,
pyarrow 26), against 10 MiB with this limit. Only columns whose dictionary would end between
the two limits are stored plainly instead; values read back the same either way."""
SPOOL_MIN_BYTES = 1024 * 1024
"""Tables of at least this many bytes in Arrow's memory are written to Parquet through a
temporary file (see `write_parquet`)."""


TABLE_SCHEMA_KEY = b"labox.arrow_schema"
"""Schema metadata key: the table's own schema, base64 of its IPC serialization. Parquet has
no second unit, no dictionaries of numbers and renames list items; the table read back is
cast to this schema (which carries the table's own metadata)."""


class ParquetTableSerializer(Serializer[pa.Table]):
    """A pyarrow Table as one Parquet file, readable by any Parquet tool.

    The table loads back with its exact schema and metadata: Parquet's own types are cast
    back to the ones recorded under `TABLE_SCHEMA_KEY` (files written before that key
    existed load as Parquet reads them).
    """

    name = "labox.pyarrow.parquet@v1"
    types = (pa.Table,)
    content_types = (PARQUET_CONTENT_TYPE,)

    def serialize_data(self, value: pa.Table, /) -> SerializedData:
        if not isinstance(value, pa.Table):
            raise SerializationError(
                f"{self.name} writes pyarrow.Table, not {type(value).__name__}; convert it "
                f"(pyarrow.Table.from_pandas, pyarrow.Table.from_batches) or pick a serializer "
                f"for {type(value).__name__}."
            )
        # Parquet's types for this schema, checked on no rows: can they be cast back?
        empty = read_parquet(write_parquet(value.schema.empty_table()), self.name)
        _restore_schema(empty, value.schema, self.name, "save")
        schema = base64.b64encode(value.schema.serialize().to_pybytes())
        metadata = {**(value.schema.metadata or {}), TABLE_SCHEMA_KEY: schema}
        data = write_parquet(value.replace_schema_metadata(metadata))
        return SerializedData(data=data, content_type=PARQUET_CONTENT_TYPE)

    def deserialize_data(self, content: SerializedData, /) -> pa.Table:
        table = read_parquet(content.data, self.name)
        raw = (table.schema.metadata or {}).get(TABLE_SCHEMA_KEY)
        if raw is None:
            return table
        try:
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(raw, validate=True)))
        except (pa.ArrowException, ValueError, binascii.Error) as error:
            raise SerializationError(
                f"{self.name} cannot read the schema recorded with this table ({error}); the "
                f"content is corrupted or was not written by {self.name}."
            ) from None
        return _restore_schema(table, schema, self.name, "load")


def _restore_schema(
    table: pa.Table, schema: pa.Schema, serializer_name: str, step: str
) -> pa.Table:
    """``table`` (as Parquet read it) cast back to ``schema``, the one it was written with.

    Parquet reads dictionaries of anything but strings as plain values: those are encoded
    again (same values and type; the dictionary in order of first appearance).
    """
    columns = []
    for column, field in zip(table.columns, schema, strict=True):
        try:
            if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(column.type):
                column = column.dictionary_encode()
            columns.append(column.cast(field.type))
        except pa.ArrowException as error:
            if step == "save":
                raise SerializationError(
                    f"{serializer_name}: the field {field.name!r} of type {field.type} does "
                    f"not come back from Parquet as itself ({error}); cast it to a type "
                    f"Parquet keeps (table.cast(...)) or store the table another way."
                ) from None
            raise SerializationError(
                f"{serializer_name} cannot give this table back its recorded schema "
                f"({error}); the content is corrupted or was not written by {serializer_name}."
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


class ArrowRecordBatchStreamSerializer(StreamSerializer[pa.RecordBatch]):
    """Record batches in the Arrow IPC stream format, read back one batch at a time.

    Every batch reads back with its own schema: when a batch's schema differs from the one
    before in a way that keeps the values (`schema_fits` either way: dictionary index
    widths, a column that was all null, string and large_string, units of time, metadata,
    nullability), the IPC stream ends and a new one starts, in the same content (a reader
    other than this one sees the first IPC stream only). A batch whose columns are renamed
    or change kind (int to str, int to float) is refused with a SerializationError naming
    the batch. Dictionaries may change from batch to batch (IPC dictionary replacement).
    """

    name = "labox.pyarrow.arrow-stream@v1"
    types = (pa.RecordBatch,)
    content_types = (ARROW_STREAM_CONTENT_TYPE,)

    def serialize_data_stream(
        self, stream: AsyncIterable[pa.RecordBatch], /
    ) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=self._encode(stream), content_type=ARROW_STREAM_CONTENT_TYPE
        )

    def deserialize_data_stream(
        self, content: SerializedDataStream, /
    ) -> AsyncIterator[pa.RecordBatch]:
        return self._decode(content.data_stream)

    async def _encode(self, stream: AsyncIterable[pa.RecordBatch]) -> AsyncIterator[bytes]:
        sink = ChunkSink()
        writer: pa.ipc.RecordBatchStreamWriter | None = None
        schema: pa.Schema | None = None
        number = 0
        async with closing_source(stream):
            async for batch in stream:
                number += 1
                if not isinstance(batch, pa.RecordBatch):
                    raise SerializationError(
                        f"{self.name}: item {number} of the stream is a "
                        f"{type(batch).__name__}, not a pyarrow.RecordBatch; yield record "
                        f"batches (a Table's are in table.to_batches())."
                    )
                if schema is not None and not batch.schema.equals(schema, check_metadata=True):
                    if not schema_fits(batch.schema, schema) and not schema_fits(
                        schema, batch.schema
                    ):
                        raise SerializationError(
                            f"{self.name}: batch {number} does not fit the stream's schema "
                            f"({describe_schema_change(schema, batch.schema)}); the values of "
                            f"a column must keep their kind from batch to batch (cast it with "
                            f"batch.cast(schema)), or save the batches apart."
                        )
                    assert writer is not None
                    writer.close()  # this IPC stream ends; the next starts with the new schema
                    schema = None
                if schema is None:
                    schema = batch.schema
                    writer = pa.ipc.new_stream(sink, schema)
                assert writer is not None
                await asyncio.to_thread(writer.write_batch, batch)
                if data := sink.drain():
                    yield data
        if writer is None:
            writer = pa.ipc.new_stream(sink, pa.schema([]))  # an empty stream stays readable
        writer.close()
        yield sink.drain()

    async def _decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[pa.RecordBatch]:
        framer = _IpcMessageFramer(self.name)
        feed = _MessageFeed()
        reader: pa.ipc.RecordBatchStreamReader | None = None
        async with closing_source(source):
            async for chunk in source:
                for header_type, message in framer.feed(chunk):
                    if header_type == _SCHEMA:  # the first IPC stream, or the next one
                        feed = _MessageFeed()
                    feed.append(message)
                    try:
                        if header_type == _SCHEMA:
                            reader = pa.ipc.open_stream(feed)
                        elif reader is None:
                            raise framer.corrupted("it does not start with a schema")
                        elif header_type == _RECORD_BATCH:
                            yield reader.read_next_batch()
                    except pa.ArrowException as error:
                        raise framer.corrupted(str(error)) from None
        framer.finish()


def write_parquet(table: pa.Table) -> memoryview:
    """Parquet bytes of ``table``, handed over as a read-only view (format ``"B"``) with no
    copy to Python bytes.

    A table of at least `SPOOL_MIN_BYTES` is written to a temporary file and handed over as
    a view of that file mapped into memory: the bytes never sit in Arrow's memory, which
    would hold them in a buffer grown by doubling (the smaller buffers it leaves behind stay
    resident in Arrow's allocator), and the pages of the map are the file's (in a temporary
    folder on disk, the kernel may drop them and read them again). Arrow writes the file
    itself, without the GIL (a Python file object would take it for each of the writer's
    hundreds of writes, and wait for it while other threads run). The file loses its name
    as soon as it is open, so nothing is left behind: it is gone once the view and every
    view of it are released. Smaller tables, and every table where an open file cannot lose
    its name (Windows), are written into one Arrow buffer.
    """
    if table.nbytes < SPOOL_MIN_BYTES or os.name != "posix":
        sink = pa.BufferOutputStream()
        _write_table(table, sink)
        return memoryview(sink.getvalue()).cast("B")
    descriptor, path = tempfile.mkstemp(prefix="labox-parquet-", suffix=".parquet")
    try:
        try:
            spool = pa.OSFile(path, "wb")
        finally:
            os.unlink(path)
        with spool:
            _write_table(table, spool)
        mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(descriptor)
    # The writer's own memory (dictionaries, pages: about 10 MiB for a column of many
    # distinct values) was freed to this thread's heap of Arrow's allocator, which keeps it
    # resident; hand it back before the map's pages are read (about 0.2 ms).
    pa.default_memory_pool().release_unused()
    return memoryview(mapped)


def _write_table(table: pa.Table, sink: pa.NativeFile) -> None:
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        dictionary_pagesize_limit=PARQUET_DICTIONARY_PAGE_LIMIT,
    )


def read_parquet(data: bytes | memoryview, serializer_name: str) -> pa.Table:
    """The table in Parquet ``data``; anything unreadable is a SerializationError."""
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise SerializationError(
            f"{serializer_name} cannot read this content as Parquet ({error}); the content is "
            f"corrupted, truncated or was not written by {serializer_name}."
        ) from None


def describe_schema_change(expected: pa.Schema, actual: pa.Schema) -> str:
    """What differs between two schemas, in a few words (names and types of fields)."""
    before = {field.name: field.type for field in expected}
    after = {field.name: field.type for field in actual}
    changes = [f"{name} is missing" for name in before if name not in after]
    changes += [f"{name} is new" for name in after if name not in before]
    changes += [
        f"{name} is {after[name]} instead of {before[name]}"
        for name in before
        if name in after and after[name] != before[name]
    ]
    if not changes and list(before) != list(after):
        changes.append(f"the fields are in the order {list(after)} instead of {list(before)}")
    return "; ".join(changes) or "field nullability or metadata differ"


_STRINGS = (pa.string(), pa.large_string())
_BINARIES = (pa.binary(), pa.large_binary())


def type_fits(actual: pa.DataType, wanted: pa.DataType) -> bool:
    """True if values of type ``actual`` can be stored as ``wanted`` without changing.

    A column that is all null, dictionaries with other index widths (or dense values into a
    dictionary), string and large_string, binary and large_binary, narrower ints into wider
    ones and narrower floats into wider ones, timestamps (same time zone) and durations in
    other units. For signs and units, only a safe cast (``cast(safe=True)``, which fails on
    overflow and truncation) tells whether the values themselves fit.
    """
    if actual == wanted or pa.types.is_null(actual):
        return True
    if pa.types.is_dictionary(wanted):
        value_type = actual.value_type if pa.types.is_dictionary(actual) else actual
        return type_fits(value_type, wanted.value_type)
    if pa.types.is_dictionary(actual):
        return False
    if any(actual in family and wanted in family for family in (_STRINGS, _BINARIES)):
        return True
    if pa.types.is_integer(actual) and pa.types.is_integer(wanted):
        return bool(actual.bit_width <= wanted.bit_width)  # a safe cast checks the sign
    if pa.types.is_floating(actual) and pa.types.is_floating(wanted):
        return bool(actual.bit_width <= wanted.bit_width)
    if pa.types.is_timestamp(actual) and pa.types.is_timestamp(wanted):
        return bool(actual.tz == wanted.tz)
    return bool(pa.types.is_duration(actual) and pa.types.is_duration(wanted))


def schema_fits(actual: pa.Schema, wanted: pa.Schema) -> bool:
    """True if every field of ``actual`` `type_fits` the field of ``wanted`` of that name."""
    return actual.names == wanted.names and all(
        type_fits(field.type, want.type) for field, want in zip(actual, wanted, strict=True)
    )


class ChunkSink(io.RawIOBase):
    """A write-only file that keeps what was written until `drain` takes it.

    Writers of Parquet and Arrow IPC write into it; the stream serializers drain it after
    each row group or batch, so the bytes leave as soon as they exist.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        """Everything written since the last drain."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data

    def drain_pieces(self, size: int) -> Iterator[bytes]:
        """Everything written since the last drain, in pieces of at least ``size`` bytes.

        The last piece may be smaller. Each written part is let go as soon as it is joined
        into a piece, so draining a large row group costs one piece more than the row group,
        not a second copy of it.
        """
        parts = collections.deque(self._parts)
        self._parts.clear()
        while parts:
            piece = [parts.popleft()]
            length = len(piece[0])
            while parts and length < size:
                length += len(parts[0])
                piece.append(parts.popleft())
            yield piece[0] if len(piece) == 1 else b"".join(piece)


# Arrow IPC framing: https://arrow.apache.org/docs/format/Columnar.html#encapsulated-message-format
_CONTINUATION = 0xFFFFFFFF
_PREFIX = struct.Struct("<Ii")  # continuation marker, metadata length
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
_HEADER_TYPE_FIELD, _BODY_LENGTH_FIELD = 1, 3  # slots in the flatbuffer table `Message`


class _IpcMessageFramer:
    """Cuts an Arrow IPC byte stream into whole messages, however the bytes arrive."""

    def __init__(self, serializer_name: str) -> None:
        self._name = serializer_name
        self._pending = bytearray()
        self._ended = False
        self._expect_schema = True  # at the start, and after each end marker

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """Every message completed by ``chunk``, as (header type, message bytes)."""
        self._pending += chunk
        while self._pending:
            if len(self._pending) < _PREFIX.size:
                return
            continuation, metadata_length = _PREFIX.unpack_from(self._pending)
            if continuation != _CONTINUATION or metadata_length < 0:
                if self._ended:
                    raise self.corrupted("bytes follow the end-of-stream marker")
                raise self.corrupted("a message does not start with the IPC marker")
            if metadata_length == 0:
                self._ended = self._expect_schema = True
                del self._pending[: _PREFIX.size]
                continue
            metadata_end = _PREFIX.size + metadata_length
            if len(self._pending) < metadata_end:
                return
            header_type, body_length = self._header(metadata_end)
            if self._ended and header_type != _SCHEMA:
                raise self.corrupted("bytes follow the end-of-stream marker")
            if header_type == _SCHEMA and not self._expect_schema:
                raise self.corrupted("a schema comes in the middle of an IPC stream")
            self._ended = False  # a schema after an end marker starts the next IPC stream
            end = metadata_end + body_length
            if len(self._pending) < end:
                return
            message = bytes(self._pending[:end])
            del self._pending[:end]
            self._expect_schema = False
            yield header_type, message

    def finish(self) -> None:
        """Raise if the stream ended before its end-of-stream marker."""
        if not self._ended:
            raise SerializationError(
                f"{self._name} stream ends before its end-of-stream marker "
                f"({len(self._pending)} bytes of an unfinished message): the content is "
                f"truncated."
            )

    def corrupted(self, problem: str) -> SerializationError:
        return SerializationError(
            f"{self._name} cannot read this content as an Arrow IPC stream: {problem}. The "
            f"content is corrupted or was not written by {self._name}."
        )

    def _header(self, metadata_end: int) -> tuple[int, int]:
        # The metadata is a flatbuffer `Message` table: read its header type and body length.
        buffer = memoryview(self._pending)[_PREFIX.size : metadata_end]
        try:
            table = struct.unpack_from("<I", buffer)[0]
            vtable = table - struct.unpack_from("<i", buffer, table)[0]
            vtable_size = struct.unpack_from("<H", buffer, vtable)[0]

            def field(slot: int, fmt: str) -> int:
                entry = 4 + 2 * slot
                if entry + 2 > vtable_size:
                    return 0
                offset = struct.unpack_from("<H", buffer, vtable + entry)[0]
                return int(struct.unpack_from(fmt, buffer, table + offset)[0]) if offset else 0

            header_type, body_length = (
                field(_HEADER_TYPE_FIELD, "<B"),
                field(_BODY_LENGTH_FIELD, "<q"),
            )
        except struct.error:
            raise self.corrupted("a message's metadata is malformed") from None
        finally:
            buffer.release()
        if body_length < 0 or header_type not in (_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH):
            raise self.corrupted("a message's metadata is malformed")
        return header_type, body_length


class _MessageFeed(io.RawIOBase):
    """The file pyarrow's stream reader reads from: only ever whole, already-arrived messages."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: collections.deque[bytes] = collections.deque()
        self._offset = 0

    def readable(self) -> bool:
        return True

    def append(self, message: bytes) -> None:
        self._messages.append(message)

    def read(self, size: int = -1) -> bytes:
        parts = []
        while self._messages and (size < 0 or size > 0):
            head = self._messages[0]
            take = len(head) - self._offset if size < 0 else min(size, len(head) - self._offset)
            parts.append(head[self._offset : self._offset + take])
            self._offset += take
            size = size - take if size >= 0 else size
            if self._offset == len(head):
                self._messages.popleft()
                self._offset = 0
        return b"".join(parts)


parquet_table_serializer = ParquetTableSerializer()
"""Tables as Parquet (the format every data tool reads)."""
arrow_record_batch_stream_serializer = ArrowRecordBatchStreamSerializer()
"""Record batch streams as Arrow IPC, read back incrementally without spooling."""

__all__ = [
    "ArrowRecordBatchStreamSerializer",
    "ParquetTableSerializer",
    "arrow_record_batch_stream_serializer",
    "parquet_table_serializer",
]
