"""DataFrames as Parquet: round trips under every chunking, row groups, spooling, refusals."""

from __future__ import annotations

import gc
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labox_prefect.core.builtin.storages import MemoryStorage
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra import pandas as labox_pandas
from labox_prefect.core.extra.pandas import (
    STREAM_PIECE_SIZE,
    ParquetDataFrameSerializer,
    ParquetDataFrameStreamSerializer,
    parquet_data_frame_serializer,
    parquet_data_frame_stream_serializer,
)
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, SerializedDataStream
from labox_prefect.core.testing import check_stream_serializer, check_value_serializer

stream_serializer = parquet_data_frame_stream_serializer


def same_frame(expected: pd.DataFrame, actual: pd.DataFrame) -> bool:
    pd.testing.assert_frame_equal(expected, actual, check_index_type=True)
    return True


def same_frames(expected: Sequence[pd.DataFrame], actual: Sequence[pd.DataFrame]) -> bool:
    assert len(expected) == len(actual), f"{len(actual)} frames read back, not {len(expected)}"
    return all(map(same_frame, expected, actual))


def frame(start: int, rows: int) -> pd.DataFrame:
    """Rows ``start`` to ``start + rows`` of one table, as a slice of it would be."""
    numbers = np.arange(start, start + rows)
    return pd.DataFrame(
        {
            "time": pd.to_datetime(numbers, unit="s", utc=True),
            "value": numbers * 0.5,
            "label": pd.Series([f"row {n}" for n in numbers], dtype="str", index=numbers),
        },
        index=pd.RangeIndex(start, start + rows, name="row"),
    )


async def produce(frames: Sequence[Any], pulled: list[int] | None = None) -> AsyncIterator[Any]:
    for number, item in enumerate(frames):
        if pulled is not None:
            pulled.append(number)
        yield item


async def write(frames: Sequence[Any], pulled: list[int] | None = None) -> list[bytes]:
    serialized = stream_serializer.serialize_data_stream(produce(frames, pulled))
    return [chunk async for chunk in serialized.data_stream]


def read(chunks: Sequence[bytes]) -> AsyncIterator[pd.DataFrame]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    content = SerializedDataStream(source(), "application/vnd.apache.parquet")
    return stream_serializer.deserialize_data_stream(content)


def spooled(directory: Path) -> list[Path]:
    return list(directory.iterdir())


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the stream reader's temporary spool files go during the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


# --- one DataFrame -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        frame(0, 50),
        frame(10, 5).reset_index(drop=True),
        pd.DataFrame({"x": [1.5, None]}, index=pd.Index(["a", "b"], name="key")),
        pd.DataFrame(
            {"c": pd.Categorical(["u", "v", "u"]), "n": pd.array([1, None, 3], dtype="Int64")}
        ),
        pd.DataFrame({"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)])),
        pd.DataFrame({"a": pd.Series([], dtype="int64")}),
    ],
    ids=["range-index", "default-index", "string-index", "extension-dtypes", "multi", "empty"],
)
def test_frame_round_trips_like_to_parquet(value: pd.DataFrame) -> None:
    check_value_serializer(parquet_data_frame_serializer, value, equal=same_frame)


def test_frame_refuses_other_types_and_unconvertible_columns() -> None:
    with pytest.raises(SerializationError, match=r"is a dict, not a pandas.DataFrame"):
        parquet_data_frame_serializer.serialize_data({"a": [1]})  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"column 'mixed' is an object column holding float, int, str.*astype"):
        parquet_data_frame_serializer.serialize_data(pd.DataFrame({"mixed": [1, "a", 2.5]}))


def test_frame_names_corrupted_and_truncated_bytes() -> None:
    data = parquet_data_frame_serializer.serialize_data(frame(0, 10)).data
    for broken in (data[: len(data) // 2], b"not parquet at all", b""):
        with pytest.raises(SerializationError, match="cannot read this content as Parquet"):
            parquet_data_frame_serializer.deserialize_data(
                SerializedData(broken, "application/vnd.apache.parquet")
            )


# --- a stream of DataFrames -------------------------------------------------------------------


async def test_stream_round_trips_under_every_chunking() -> None:
    frames = [frame(0, 3), frame(3, 1), frame(4, 0), frame(4, 5).reset_index(drop=True)]
    frames[3].index.name = "row"  # same kind of index as the others, its own range
    await check_stream_serializer(stream_serializer, frames, equal=same_frames)


async def test_empty_stream_round_trips_to_no_frames() -> None:
    payload = await check_stream_serializer(stream_serializer, [], equal=same_frames)
    assert pq.ParquetFile(pa.BufferReader(payload)).num_row_groups == 0


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), max_size=5))
async def test_stream_keeps_frame_sizes_and_ranges(sizes: list[int]) -> None:
    starts = np.cumsum([0, *sizes])
    frames = [frame(int(start), size) for start, size in zip(starts, sizes, strict=False)]
    await check_stream_serializer(stream_serializer, frames, equal=same_frames)


async def test_stream_writes_one_row_group_per_frame_as_frames_arrive() -> None:
    pulled: list[int] = []
    serialized = stream_serializer.serialize_data_stream(
        produce([frame(0, 10), frame(10, 2_000), frame(2_010, 1)], pulled)
    )
    chunks = []
    async for chunk in serialized.data_stream:
        chunks.append(chunk)
        if len(chunks) == 1:
            assert pulled == [0], "the first row group left before the next frame was read"
    metadata = pq.ParquetFile(pa.BufferReader(b"".join(chunks))).metadata
    assert metadata.num_row_groups == 3
    assert [metadata.row_group(i).num_rows for i in range(3)] == [10, 2_000, 1]
    assert len(chunks) == 4  # three row groups, then the footer


async def test_stream_reads_one_row_group_at_a_time(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups_read: list[int] = []
    original = pq.ParquetFile.read_row_group

    def recording(self: pq.ParquetFile, index: int, *args: Any, **kwargs: Any) -> pa.Table:
        groups_read.append(index)
        return original(self, index, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", recording)
    frames = [frame(0, 4), frame(4, 4), frame(8, 4)]
    reader = read(await write(frames))
    first = await reader.__anext__()
    same_frame(frames[0], first)
    assert groups_read == [0]
    assert len(spooled(spool_dir)) == 1, "the bytes are spooled to one temporary file"
    rest = [f async for f in reader]
    assert groups_read == [0, 1, 2]
    same_frames(frames[1:], rest)
    assert spooled(spool_dir) == []


async def test_spool_is_removed_when_the_reader_stops_early(spool_dir: Path) -> None:
    reader = read(await write([frame(0, 2), frame(2, 2)]))
    await reader.__anext__()
    await reader.aclose()  # type: ignore[attr-defined]
    assert spooled(spool_dir) == []


async def test_spool_is_removed_when_the_content_is_truncated(spool_dir: Path) -> None:
    payload = b"".join(await write([frame(0, 2), frame(2, 2)]))
    with pytest.raises(SerializationError, match="cannot read this content as Parquet"):
        [f async for f in read([payload[:-20]])]
    assert spooled(spool_dir) == []


async def test_spool_is_removed_when_the_byte_stream_fails(spool_dir: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"PAR1"
        raise ConnectionError("storage went away")

    reader = stream_serializer.deserialize_data_stream(SerializedDataStream(failing(), "x"))
    with pytest.raises(ConnectionError):
        await reader.__anext__()
    assert spooled(spool_dir) == []


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (
            pd.DataFrame({"time": [1], "value": [0.5], "label": ["a"]}).rename_axis("row"),
            "column 'time' is int64, the stream's is timestamp",
        ),
        (frame(1, 1).drop(columns="label"), "label is missing"),
        (frame(1, 1).astype({"value": "int64"}), "column 'value' is int64, the stream's is double"),
        (
            frame(1, 1).assign(value="x"),
            "column 'value' is large_string, the stream's is double",
        ),
    ],
    ids=["type", "missing-column", "dtype", "int-to-str"],
)
async def test_stream_refuses_a_frame_that_does_not_fit_the_first(
    second: pd.DataFrame, message: str
) -> None:
    with pytest.raises(SerializationError, match=rf"frame 2 of the stream does .*{message}"):
        await write([frame(0, 1), second])


@pytest.mark.parametrize(
    "second",
    [
        frame(1, 1).rename_axis("other"),
        frame(1, 1).set_index("label"),
        frame(1, 1).assign(label=None).astype({"label": object}),
        pd.DataFrame({"time": [], "value": [], "label": []}, index=pd.RangeIndex(0, name="row")),
    ],
    ids=["index-name", "index-kind", "all-null-object", "empty-object-columns"],
)
async def test_stream_reads_back_each_frame_as_written(second: pd.DataFrame) -> None:
    await check_stream_serializer(stream_serializer, [frame(0, 2), second], equal=same_frames)


async def test_stream_refuses_an_item_that_is_not_a_frame() -> None:
    with pytest.raises(SerializationError, match=r"frame 2 of the stream is a list"):
        await write([frame(0, 1), [1, 2]])


def test_registry_infers_both_serializers_for_data_frames() -> None:
    registry = Registry(
        modules=["labox_prefect.core.extra.pandas"], default_storage=MemoryStorage()
    )
    assert isinstance(registry.infer_serializer(pd.DataFrame), ParquetDataFrameSerializer)
    assert isinstance(
        registry.infer_stream_serializer(pd.DataFrame), ParquetDataFrameStreamSerializer
    )


# --- bounded memory: nothing holds a frame, or a copy of its bytes, longer than needed -------


async def test_stream_holds_no_frame_while_the_next_is_made() -> None:
    alive_when_asked: list[bool] = []

    async def producer() -> AsyncIterator[pd.DataFrame]:
        previous: weakref.ref[pd.DataFrame] | None = None
        for number in range(3):
            if previous is not None:
                gc.collect()
                alive_when_asked.append(previous() is not None)
            made = frame(number * 10, 10)
            previous = weakref.ref(made)
            yield made
            del made

    serialized = stream_serializer.serialize_data_stream(producer())
    _ = [chunk async for chunk in serialized.data_stream]
    assert alive_when_asked == [False, False]


async def test_stream_sends_a_large_row_group_in_pieces_not_one_copy() -> None:
    big = pd.DataFrame({"x": np.random.default_rng(0).random(400_000)})  # ~3 MiB of Parquet
    chunks = await write([big])
    *row_group, _footer = chunks
    assert len(row_group) >= 3
    assert all(len(piece) >= STREAM_PIECE_SIZE for piece in row_group[:-1])
    assert max(map(len, row_group)) < 2 * STREAM_PIECE_SIZE
    [loaded] = [f async for f in read(chunks)]
    same_frame(big, loaded)


async def test_stream_reader_keeps_no_frame_index_once_the_frame_is_dropped() -> None:
    # pandas caches an index's values on the index (here 8 bytes a row), so a reader that
    # kept every frame's RangeIndex would keep those caches until the stream ends.
    reader = read(await write([frame(0, 1_000), frame(1_000, 1_000), frame(2_000, 1_000)]))
    earlier: list[weakref.ref[pd.Index]] = []
    async for loaded in reader:
        gc.collect()
        assert all(index() is None for index in earlier), "an earlier frame's index is kept"
        assert loaded.index.to_numpy().nbytes == 8_000  # materialised and cached
        earlier.append(weakref.ref(loaded.index))
        del loaded
    assert len(earlier) == 3


async def test_stream_writes_on_one_thread_of_its_own_that_ends_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrow's allocator keeps freed memory per thread: one thread per stream reuses it.
    threads: list[threading.Thread] = []
    to_table = labox_pandas.frame_to_table
    write_table = pq.ParquetWriter.write_table

    def recording_to_table(*args: Any) -> pa.Table:
        threads.append(threading.current_thread())
        return to_table(*args)

    def recording_write_table(self: pq.ParquetWriter, *args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread())
        write_table(self, *args, **kwargs)

    monkeypatch.setattr(labox_pandas, "frame_to_table", recording_to_table)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", recording_write_table)
    frames = [frame(0, 5), frame(5, 5), frame(10, 5)]
    chunks = await write(frames)
    assert len(threads) == 6
    [thread] = set(threads)
    assert thread is not threading.main_thread()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the stream's thread outlived the stream"
    same_frames(frames, [f async for f in read(chunks)])
