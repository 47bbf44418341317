"""Arrow tables as Parquet and record batch streams as Arrow IPC, read back incrementally."""

from __future__ import annotations

import mmap
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labox_prefect.core.builtin.storages import MemoryStorage
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra.pyarrow import (
    SPOOL_MIN_BYTES,
    TABLE_SCHEMA_KEY,
    ArrowRecordBatchStreamSerializer,
    ChunkSink,
    ParquetTableSerializer,
    arrow_record_batch_stream_serializer,
    parquet_table_serializer,
    write_parquet,
)
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, SerializedDataStream
from labox_prefect.core.testing import check_stream_serializer, check_value_serializer
from tests.core.extra import _strict as strict

stream_serializer = arrow_record_batch_stream_serializer


def batch(start: int, rows: int) -> pa.RecordBatch:
    numbers = list(range(start, start + rows))
    return pa.record_batch(
        {
            "n": pa.array(numbers, pa.int64()),
            "label": pa.array([f"v{n % 3}" for n in numbers], pa.string()).dictionary_encode(),
            "maybe": pa.array([None if n % 2 else n * 0.5 for n in numbers], pa.float64()),
        }
    )


def same_batches(expected: Sequence[pa.RecordBatch], actual: Sequence[pa.RecordBatch]) -> bool:
    return len(expected) == len(actual) and all(
        a.schema.equals(b.schema) and a.to_pylist() == b.to_pylist()
        for a, b in zip(expected, actual, strict=True)
    )


def same_rows(expected: pa.Table, actual: pa.Table) -> bool:
    return bool(
        expected.schema.equals(actual.schema) and expected.to_pylist() == actual.to_pylist()
    )


async def write(batches: Sequence[Any]) -> bytes:
    async def produce() -> AsyncIterator[Any]:
        for item in batches:
            yield item

    serialized = stream_serializer.serialize_data_stream(produce())
    return b"".join([chunk async for chunk in serialized.data_stream])


async def read(pieces: Sequence[bytes], pulled: list[int] | None = None) -> list[pa.RecordBatch]:
    return [b async for b in stream_serializer.deserialize_data_stream(stored(pieces, pulled))]


def stored(pieces: Sequence[bytes], pulled: list[int] | None = None) -> SerializedDataStream:
    async def source() -> AsyncIterator[bytes]:
        for number, piece in enumerate(pieces):
            if pulled is not None:
                pulled.append(number)
            yield piece

    return SerializedDataStream(source(), "application/vnd.apache.arrow.stream")


# --- tables ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}),
        pa.Table.from_batches([batch(0, 5), batch(5, 3)]),
        pa.table({"nested": [{"k": [1, 2]}, {"k": []}]}),
        pa.table({"a": pa.array([], pa.int32())}),
    ],
    ids=["plain", "dictionary-chunks", "nested", "empty"],
)
def test_table_round_trips(table: pa.Table) -> None:
    check_value_serializer(parquet_table_serializer, table, equal=same_rows)


def test_table_refuses_other_types_and_corrupted_bytes() -> None:
    with pytest.raises(SerializationError, match=r"writes pyarrow.Table, not RecordBatch"):
        parquet_table_serializer.serialize_data(batch(0, 1))
    data = parquet_table_serializer.serialize_data(pa.table({"a": [1]})).data
    with pytest.raises(SerializationError, match="cannot read this content as Parquet"):
        parquet_table_serializer.deserialize_data(SerializedData(data[:-9], "x"))


# --- record batch streams --------------------------------------------------------------------


async def test_batches_round_trip_under_every_chunking() -> None:
    batches = [batch(0, 3), batch(3, 0), batch(3, 10)]
    await check_stream_serializer(stream_serializer, batches, equal=same_batches)


async def test_empty_batch_stream_round_trips() -> None:
    await check_stream_serializer(stream_serializer, [], equal=same_batches)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=20), max_size=5),
    st.lists(st.lists(st.integers(min_value=0, max_value=5_000), max_size=8), max_size=3),
)
async def test_batches_round_trip_for_any_sizes_and_cuts(
    sizes: list[int], cuts: list[list[int]]
) -> None:
    batches = [batch(sum(sizes[:i]), size) for i, size in enumerate(sizes)]
    await check_stream_serializer(stream_serializer, batches, equal=same_batches, cuts=cuts)


async def test_batches_are_read_as_their_bytes_arrive() -> None:
    payload = await write([batch(0, 100), batch(100, 100), batch(200, 100)])
    pieces = [payload[i : i + 64] for i in range(0, len(payload), 64)]
    pulled: list[int] = []
    reader = stream_serializer.deserialize_data_stream(stored(pieces, pulled))
    first = await reader.__anext__()
    assert first.to_pylist() == batch(0, 100).to_pylist()
    assert len(pulled) < len(pieces) // 2, "the first batch came before the later bytes"
    assert len([b async for b in reader]) == 2
    assert len(pulled) == len(pieces)


async def test_batch_stream_refuses_schema_drift_and_other_items() -> None:
    other = pa.record_batch({"n": pa.array([1.5])})
    with pytest.raises(SerializationError, match=r"batch 2 does not fit.*n is double instead of"):
        await write([batch(0, 1), other])
    renamed = pa.record_batch({"m": pa.array([1])})
    with pytest.raises(SerializationError, match=r"batch 3 does not fit.*n is missing; .*m is new"):
        await write([batch(0, 1), batch(1, 1), renamed])
    with pytest.raises(SerializationError, match=r"item 1 of the stream is a Table"):
        await write([pa.table({"a": [1]})])


async def test_batch_stream_refuses_a_schema_in_the_middle_of_an_ipc_stream() -> None:
    payload = await write([batch(0, 2)])
    end_marker = 8
    schema_and_batch = payload[:-end_marker]
    with pytest.raises(SerializationError, match="a schema comes in the middle"):
        await read([schema_and_batch + payload])


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda p: p[:-8], "ends before its end-of-stream marker"),
        (lambda p: p[: len(p) // 2], "ends before its end-of-stream marker"),
        (lambda p: p + b"\x00" * 8, "bytes follow the end-of-stream marker"),
        (lambda p: b"garbage!" + p, "does not start with the IPC marker"),
        (lambda p: p[:4] + b"\x08\x00\x00\x00" + b"\xff" * 8, "metadata is malformed"),
    ],
    ids=["no-end-marker", "half", "trailing-bytes", "garbage", "bad-metadata"],
)
async def test_batch_stream_names_truncated_and_corrupted_bytes(mangle: Any, message: str) -> None:
    payload = await write([batch(0, 4), batch(4, 4)])
    with pytest.raises(SerializationError, match=message):
        await read([mangle(payload)])


def test_registry_infers_the_arrow_serializers() -> None:
    registry = Registry(
        modules=["labox_prefect.core.extra.pyarrow"], default_storage=MemoryStorage()
    )
    assert isinstance(registry.infer_serializer(pa.Table), ParquetTableSerializer)
    assert isinstance(
        registry.infer_stream_serializer(pa.RecordBatch), ArrowRecordBatchStreamSerializer
    )


@given(st.lists(st.binary(max_size=40), max_size=30), st.integers(min_value=1, max_value=64))
def test_sink_drains_in_pieces_of_at_least_the_size_asked(parts: list[bytes], size: int) -> None:
    sink = ChunkSink()
    for part in parts:
        sink.write(part)
    pieces = list(sink.drain_pieces(size))
    assert b"".join(pieces) == b"".join(parts)
    assert all(len(piece) >= size for piece in pieces[:-1])
    longest = max(map(len, parts), default=0)
    assert all(len(piece) < size + longest for piece in pieces)
    assert sink.drain() == b"", "what was drained is gone from the sink"


# --- fidelity: tables keep their exact schema, batch streams each batch's schema ------------

TABLES = {
    "timestamp-s": pa.table({"t": pa.array([0, None], pa.timestamp("s", tz="UTC"))}),
    "dictionary-of-ints": pa.table(
        {"d": pa.array([1, 2, 1]).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.int64()))}
    ),
    "date64": pa.table({"d": pa.array([86_400_000], pa.date64())}),
    "time32-s": pa.table({"t": pa.array([1], pa.time32("s"))}),
    "large-list-item-name": pa.table({"l": pa.array([[1], []], pa.large_list(pa.int8()))}),
    "metadata": pa.table({"a": [1]}).replace_schema_metadata({"origin": "lab", "v": "2"}),
    "field-metadata-not-null": pa.table(
        {"a": [1]},
        schema=pa.schema([pa.field("a", pa.int64(), nullable=False, metadata={"unit": "m"})]),
    ),
    "uint32-halffloat-strings": pa.table(
        {
            "u": pa.array([1], pa.uint32()),
            "h": pa.array([np.float16(1.5)], pa.float16()),
            "s": pa.array(["x"], pa.large_string()),
        }
    ),
}


@pytest.mark.parametrize("table", TABLES.values(), ids=TABLES.keys())
def test_table_loads_back_with_its_exact_schema(table: pa.Table) -> None:
    check_value_serializer(parquet_table_serializer, table, equal=strict.same_table)


def test_table_written_before_the_schema_key_reads_as_parquet_does() -> None:
    table = pa.table({"a": [1, 2], "b": ["x", None]})
    loaded = parquet_table_serializer.deserialize_data(SerializedData(write_parquet(table), "x"))
    strict.same_table(table, loaded)


def test_table_with_a_corrupted_schema_key_is_a_clear_error() -> None:
    table = pa.table({"a": [1]}).replace_schema_metadata({TABLE_SCHEMA_KEY: b"not base64!"})
    with pytest.raises(SerializationError, match="cannot read the schema recorded with this table"):
        parquet_table_serializer.deserialize_data(SerializedData(write_parquet(table), "x"))


# --- writing Parquet --------------------------------------------------------------------------


def test_large_table_is_handed_over_as_a_view_of_an_unnamed_memory_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    table = pa.table({"n": np.arange(SPOOL_MIN_BYTES // 8)})
    data = write_parquet(table)
    assert isinstance(data.obj, mmap.mmap), "the Parquet bytes sat in memory, not in a file"
    assert data.readonly
    assert list(tmp_path.iterdir()) == [], "the spool file has a name someone must remove"
    assert pq.read_table(pa.BufferReader(data)).equals(table)


def test_small_table_is_written_into_one_arrow_buffer() -> None:
    data = write_parquet(pa.table({"n": [1, 2]}))
    assert isinstance(data.obj, pa.Buffer)


def test_a_column_of_distinct_values_grows_no_large_dictionary_in_the_writer() -> None:
    """With Arrow's default limit (1 MiB), the writer gave up on the dictionary of such a
    column only after the hash table behind it had grown to about 32 MiB."""
    code = (
        "import numpy as np, pyarrow as pa;"
        "from labox_prefect.core.extra.pyarrow import write_parquet;"
        "write_parquet(pa.table({'n': np.arange(300_000)}));"
        "print(pa.default_memory_pool().max_memory())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) < 16 * 1024 * 1024, f"Arrow's memory peaked at {int(out) / 2**20:.1f} MiB"


def _dictionary(values: list[str], index: pa.DataType) -> pa.Array:
    return pa.array(values).dictionary_encode().cast(pa.dictionary(index, pa.string()))


BATCH_STREAMS = {
    "dictionaries-grow": [
        pa.record_batch({"c": _dictionary(["a", "b"], pa.int8())}),
        pa.record_batch({"c": _dictionary(["c", "d", "a"], pa.int8())}),
    ],
    "dictionary-index-widths-change": [
        pa.record_batch({"c": _dictionary(["a"], pa.int8())}),
        pa.record_batch({"c": _dictionary([f"v{i}" for i in range(300)], pa.int16())}),
        pa.record_batch({"c": _dictionary(["b"], pa.int8())}),
    ],
    "first-column-all-null": [
        pa.record_batch({"s": pa.array([None, None], pa.null())}),
        pa.record_batch({"s": pa.array(["x", None])}),
    ],
    "string-then-large-string": [
        pa.record_batch({"s": pa.array(["x"])}),
        pa.record_batch({"s": pa.array(["y"], pa.large_string())}),
    ],
    "metadata-changes": [
        pa.record_batch({"a": [1]}).replace_schema_metadata({"part": "1"}),
        pa.record_batch({"a": [2]}).replace_schema_metadata({"part": "2"}),
    ],
}


@pytest.mark.parametrize("batches", BATCH_STREAMS.values(), ids=BATCH_STREAMS.keys())
async def test_batch_stream_keeps_each_batch_s_schema(batches: list[pa.RecordBatch]) -> None:
    await check_stream_serializer(stream_serializer, batches, equal=strict.same_batches)


async def test_batch_stream_with_new_schemas_is_read_as_its_bytes_arrive() -> None:
    batches = [batch(0, 50), pa.record_batch({"n": pa.array([1], pa.int64())})]
    batches[1] = pa.record_batch(
        {
            "n": pa.array([1], pa.int64()),
            "label": _dictionary(["x"], pa.int32()),
            "maybe": pa.array([None], pa.float64()),
        }
    )
    payload = await write([*batches, batch(50, 50)])
    pieces = [payload[i : i + 16] for i in range(0, len(payload), 16)]
    pulled: list[int] = []
    reader = stream_serializer.deserialize_data_stream(stored(pieces, pulled))
    await reader.__anext__()
    assert len(pulled) < len(pieces) // 2
    rest = [b async for b in reader]
    assert strict.same_batches([*batches[1:], batch(50, 50)], rest)
