"""DataFrames as Parquet: round trips under every chunking, row groups, spooling, refusals."""

from __future__ import annotations

import datetime
import gc
import json
import mmap
import tempfile
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import dateutil.tz
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import load_one, save_one
from labox_prefect.core.builtin import StorableValue
from labox_prefect.core.builtin.storages import FileStorage, MemoryStorage
from labox_prefect.core.errors import (
    ContentCorruptedError,
    ContentMissingError,
    SerializationError,
)
from labox_prefect.core.extra import pandas as labox_pandas
from labox_prefect.core.extra._frames import with_descriptor
from labox_prefect.core.extra.pandas import (
    STREAM_PIECE_SIZE,
    ParquetCategoricalSerializer,
    ParquetDataFrameSerializer,
    ParquetDataFrameStreamSerializer,
    ParquetIndexSerializer,
    ParquetSeriesSerializer,
    parquet_categorical_serializer,
    parquet_data_frame_serializer,
    parquet_data_frame_stream_serializer,
    parquet_index_serializer,
    parquet_series_serializer,
)
from labox_prefect.core.extra.pyarrow import ChunkSink, write_parquet
from labox_prefect.core.extra.pydantic import ContentSpec, StorableModel
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, SerializedDataStream
from labox_prefect.core.testing import check_stream_serializer, check_value_serializer
from tests.core.extra import _strict as strict

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
    with pytest.raises(
        SerializationError,
        match=r"column 'mixed' is an object column holding float, int, str.*astype",
    ):
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


class Readings(StorableModel, class_id="7e57f11e0000aaaa"):
    frames: Annotated[
        AsyncIterable[pd.DataFrame], ContentSpec(serializer=parquet_data_frame_stream_serializer)
    ]


async def save_readings(
    sessions: async_sessionmaker[AsyncSession], root: Path, frames: Sequence[pd.DataFrame]
) -> tuple[Registry, Any, Path]:
    """Frames saved as a stream to a FileStorage under ``root``; the registry, record, file."""
    registry = Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"],
        storables=[Readings],
        default_storage=FileStorage(root / "blobs"),
    )
    async with sessions() as session:
        readings = Readings(frames=produce(frames))
        record = await save_one(readings, session=session, registry=registry)
    (blob,) = [p for p in (root / "blobs").rglob("*") if p.is_file() and p.parent.name != ".owners"]
    return registry, record, blob


async def load_frames(
    sessions: async_sessionmaker[AsyncSession], registry: Registry, record: Any
) -> list[pd.DataFrame]:
    async with sessions() as session:
        loaded = await load_one(record, Readings, session=session, registry=registry)
    return [f async for f in loaded.frames]


async def test_stream_in_a_local_file_is_read_in_place_not_spooled(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, spool_dir: Path
) -> None:
    frames = [frame(0, 4), frame(4, 4), frame(8, 4)]
    registry, record, _ = await save_readings(sessions, tmp_path / "store", frames)
    spooled_files: list[str] = []
    mkstemp = tempfile.mkstemp

    def recording_mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        made = mkstemp(*args, **kwargs)
        spooled_files.append(made[1])
        return made

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", recording_mkstemp)
        same_frames(frames, await load_frames(sessions, registry, record))
    assert spooled_files == [], "a stream kept in a local file was copied to a spool"


@pytest.mark.parametrize("damage", ["a value", "the footer", "gone"])
async def test_stream_in_a_local_file_that_was_altered_fails_before_its_last_frame(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, damage: str
) -> None:
    frames = [frame(0, 400), frame(400, 400), frame(800, 400)]
    registry, record, blob = await save_readings(sessions, tmp_path, frames)
    data = bytearray(blob.read_bytes())
    if damage == "gone":
        blob.unlink()
    else:
        # One byte of a value in the first row group (Parquet pages carry no checksum by
        # default: only the hash sees it), or of the footer, which Parquet itself refuses.
        at = len(data) - 40 if damage == "the footer" else 200
        data[at] ^= 0xFF
        blob.write_bytes(bytes(data))
    expected = ContentMissingError if damage == "gone" else ContentCorruptedError
    async with sessions() as session:
        loaded = await load_one(record, Readings, session=session, registry=registry)
    given: list[pd.DataFrame] = []
    with pytest.raises(expected):
        async for item in loaded.frames:
            given.append(item)
    assert len(given) < len(frames), "the last frame of an altered file was handed out"


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


# --- fidelity: every dtype, index and column kind loads back equal in value and type ------


def _with_attrs(value: pd.DataFrame, **attrs: Any) -> pd.DataFrame:
    value.attrs.update(attrs)
    return value


def _one(values: Any, **kwargs: Any) -> pd.DataFrame:
    return pd.DataFrame({"a": values}, **kwargs)


FAITHFUL_FRAMES = {
    # the example: int64 came back instead of the categorical
    "categorical-of-ints": pd.DataFrame({"a": pd.Categorical([1, 2, 1])}),
    "categorical-ordered-unused": _one(
        pd.Categorical(["x", "y", None], categories=["y", "x", "z"], ordered=True)
    ),
    "categorical-int8-categories": _one(
        pd.Categorical(np.array([3, 1], dtype="int8"), categories=np.array([1, 3], dtype="int8"))
    ),
    "categorical-datetimes": _one(pd.Categorical(pd.to_datetime(["2020", "2021", "2020"]))),
    "categorical-wide-codes": _one(
        pd.Categorical(["c299", "c0"], categories=[f"c{i}" for i in range(300)])
    ),
    "categorical-object-str": _one(
        pd.Categorical(["a", "b"], categories=pd.Index(["b", "a"], dtype=object))
    ),
    "int8": _one(np.array([-1, 2], dtype="int8")),
    "uint64": _one(np.array([1, 2**64 - 1], dtype="uint64")),
    "float32": _one(np.array([1.5, np.nan, -0.0], dtype="float32")),
    "float16": _one(np.array([1.5, np.inf], dtype="float16")),
    "bool": _one([True, False]),
    "Int64": _one(pd.array([1, None, 2**62], dtype="Int64")),
    "UInt8": _one(pd.array([1, None], dtype="UInt8")),
    "Float32": _one(pd.array([1.5, None], dtype="Float32")),
    "boolean": _one(pd.array([True, None], dtype="boolean")),
    "str": _one(["x", None, "é"]),
    "string-python": _one(pd.array(["x", None], dtype="string[python]")),
    "string-pyarrow": _one(pd.array(["x", None], dtype="string[pyarrow]")),
    "string-python-nan": _one(pd.array(["x", None], dtype=pd.StringDtype("python", np.nan))),
    "object-str-none": _one(pd.Series(["x", None], dtype=object)),
    "object-str-nan": _one(pd.Series(["x", np.nan], dtype=object)),
    "object-bytes": _one(pd.Series([b"x", None, b""], dtype=object)),
    "object-all-none": _one(pd.Series([None, None], dtype=object)),
    "object-all-nan": _one(pd.Series([np.nan], dtype=object)),
    "datetime-ns": _one(pd.to_datetime(["2020-01-01T00:00:00.000000001", None])),
    "datetime-s": _one(pd.to_datetime(["2020-01-01", None]).astype("datetime64[s]")),
    "datetime-ms-paris": _one(
        pd.to_datetime(["2020-03-29T01:30"]).astype("datetime64[ms]").tz_localize("Europe/Paris")
    ),
    "datetime-fixed-offset": _one(pd.to_datetime(["2020-01-01T00:00:00+02:00"])),
    "datetime-python-utc": _one(pd.to_datetime(["2020"]).tz_localize(datetime.UTC)),
    "timedelta-s": _one(pd.to_timedelta([1, None], unit="s").astype("timedelta64[s]")),
    "timedelta-ns": _one(pd.to_timedelta([1, None], unit="ns")),
    "period": _one(pd.period_range("2020-01", periods=2, freq="M")),
    "interval": _one(pd.interval_range(0, 2, closed="left")),
    "arrow-int32": _one(pd.array([1, None], dtype="int32[pyarrow]")),
    "index-named-int32": _one([1, 2], index=pd.Index([3, 4], dtype="int32", name="k")),
    "index-uint64": _one([1, 2], index=pd.Index([3, 2**64 - 1], dtype="uint64")),
    "index-object-str": _one([1, 2], index=pd.Index(["x", "y"], dtype=object)),
    "index-str": _one([1, 2], index=pd.Index(["x", "y"], name=("a", 1))),
    "index-datetime-freq": _one([1, 2], index=pd.date_range("2020", periods=2, freq="D")),
    "index-datetime-tz-freq": _one(
        [1, 2], index=pd.date_range("2020", periods=2, freq="h", tz="UTC", name="t")
    ),
    "index-datetime-business": _one([1, 2], index=pd.bdate_range("2020-01-03", periods=2)),
    "index-timedelta-freq": _one([1, 2], index=pd.timedelta_range("1s", periods=2, freq="s")),
    "index-period": _one([1, 2], index=pd.period_range("2020", periods=2, freq="D")),
    "index-interval": _one([1, 2], index=pd.interval_range(0, 2)),
    "index-categorical": _one([1, 2], index=pd.CategoricalIndex(["x", "y"], name="c")),
    "index-bool": _one([1, 2], index=pd.Index([True, False])),
    "index-float": _one([1, 2], index=pd.Index([1.5, np.nan])),
    "index-multi": _one(
        [1, 2], index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["p", None])
    ),
    "index-range-step": _one([1, 2], index=pd.RangeIndex(5, 9, 2, name=1)),
    "index-multi-unused-levels": _one(
        [1], index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["p", "q"])[:1]
    ),
    "index-multi-unsorted-levels-with-nan": _one(
        [1, 2, 3],
        index=pd.MultiIndex(
            levels=[["b", "a", "z"], pd.Index([3, 1], dtype="int8")],
            codes=[[0, 1, -1], [1, -1, 0]],
        ),
    ),
    "index-multi-one-level": _one([1, 2], index=pd.MultiIndex.from_arrays([["x", "y"]])),
    "index-multi-int-names-empty": _one(
        pd.Series([], dtype="float32"),
        index=pd.MultiIndex.from_arrays(
            [pd.Index([], dtype="str"), pd.Index([], dtype="int16")], names=[1, 0]
        ),
    ),
    "index-named-like-a-column": pd.DataFrame({0: [1]}, index=pd.Index([5], name=0)),
    "column-named-like-an-index-field": pd.DataFrame(
        {"__index_level_0__": [1]}, index=pd.Index([5], name="__index_level_0__")
    ),
    "index-levels-named-alike": _one(
        [1], index=pd.MultiIndex.from_arrays([["x"], [2]], names=[1, None])
    ),
    "index-numpy-and-timestamp-names": _one(
        [1], index=pd.Index([1], name=np.int64(1)), columns=[pd.Timestamp("2020", tz="UTC")]
    ),
    "columns-int": pd.DataFrame({1: [1, 2], 2: [3, 4]}),
    "columns-range": pd.DataFrame([[1, 2]]),
    "columns-object": _one([1]).set_axis(pd.Index(["a"], dtype=object), axis=1),
    "columns-float": pd.DataFrame({1.5: [1]}),
    "columns-none": pd.DataFrame({None: [1]}),
    "columns-named": _one([1]).rename_axis(columns="cn"),
    "columns-datetime": pd.DataFrame([[1, 2]], columns=pd.date_range("2020", periods=2)),
    "columns-multi": pd.DataFrame(
        [[1, 2.5]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)], names=["x", "y"])
    ),
    "columns-order": pd.DataFrame({"b": [1], "a": [2.0], "c": ["z"]}),
    "attrs": _with_attrs(_one([1]), source="lab", n=[1, 2.5, None]),
    "flags": _one([1]).set_flags(allows_duplicate_labels=False),
    "empty": pd.DataFrame(),
    "empty-float32": _one(pd.Series([], dtype="float32")),
    "empty-object": _one(pd.Series([], dtype=object)),
    "empty-categorical": _one(pd.Categorical([], categories=[1.5])),
    "index-only": pd.DataFrame(index=pd.Index(["x", "y"], name="k")),
    "range-index-only": pd.DataFrame(index=pd.RangeIndex(2, 12, 2)),
    "columns-categorical": pd.DataFrame([[1, 2]], columns=pd.CategoricalIndex(["x", "y"])),
}


@pytest.mark.parametrize("value", FAITHFUL_FRAMES.values(), ids=FAITHFUL_FRAMES.keys())
def test_frame_loads_back_equal_in_value_and_type(value: pd.DataFrame) -> None:
    check_value_serializer(parquet_data_frame_serializer, value, equal=strict.same_frame)


def _large_frame() -> pd.DataFrame:
    """A frame whose Parquet is written through a spool file (more than SPOOL_MIN_BYTES)."""
    rows = 40_000
    numbers = np.arange(rows)
    return pd.DataFrame(
        {
            "when": pd.date_range("2020-03-29", periods=rows, freq="min", tz="Europe/Paris"),
            "kind": pd.Categorical.from_codes(numbers % 3, ["low", "mid", "high"], ordered=True),
            "value": numbers * 0.25,
            "count": pd.array([None if n % 7 == 0 else n for n in numbers], dtype="Int64"),
            "name": pd.Series([f"item {n}" for n in numbers], dtype="str"),
        },
        index=pd.Index(numbers * 2, name="key"),
    )


def test_large_frame_loads_back_equal_through_the_spool_file() -> None:
    serialized = check_value_serializer(
        parquet_data_frame_serializer, _large_frame(), equal=strict.same_frame
    )
    assert isinstance(serialized.data, memoryview)
    assert isinstance(serialized.data.obj, mmap.mmap), "not written through the spool file"


async def test_large_frame_saved_to_files_loads_back_equal(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    registry = Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"],
        default_storage=FileStorage(tmp_path / "blobs"),
    )
    value = _large_frame()
    for _ in range(2):  # the second save finds the same blob and compares it
        async with sessions() as session:
            record = await save_one(StorableValue(value), session=session, registry=registry)
        async with sessions() as session:
            loaded = await load_one(record, StorableValue, session=session, registry=registry)
        assert strict.same_frame(value, loaded.value)


REFUSED_FRAMES = {
    "object-ints": (
        _one(pd.Series([1, 2], dtype=object)),
        r"column 'a' is an object column holding int",
    ),
    "object-mixed": (_one(pd.Series([1, "a"], dtype=object)), r"holding int, str"),
    "object-lists": (_one([[1, 2], [3]]), r"column 'a' is an object column holding list"),
    "object-dicts": (_one([{"k": 1}, {"j": 2}]), r"holding dict"),
    "object-numpy-str": (_one(pd.Series([np.str_("x")], dtype=object)), r"holding numpy.str_"),
    "object-none-and-nan": (
        _one(pd.Series(["x", None, np.nan], dtype=object)),
        r"column 'a' marks missing values with both None and NaN",
    ),
    "complex": (_one([1 + 2j]), r"column 'a' has the dtype complex128.*\.real and \.imag"),
    "sparse": (_one(pd.arrays.SparseArray([0, 1])), r"column 'a' has the dtype Sparse"),
    "surrogates": (
        _one(pd.Series(["\ud800"], dtype=object)),
        r"cannot be converted to Arrow: 'utf-8' codec can't encode",
    ),
    "dateutil-time-zone": (
        _one(pd.to_datetime(["2020"]).tz_localize(dateutil.tz.gettz("Europe/Paris"))),
        r"column 'a' has the dtype datetime64.*tz_convert\('Europe/Paris'\)",
    ),
    "duplicate-columns": (
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        r"duplicate column labels \['a'\]",
    ),
    "columns-same-as-text": (pd.DataFrame({1: [1], "1": [2]}), r"labels that read the same"),
    "columns-mixed-types": (pd.DataFrame({1: [1], "b": [2]}), r"column labels is an object"),
    "attrs-not-json": (_with_attrs(_one([1]), when=pd.Timestamp(0)), r"attrs .* JSON"),
    "index-name-date": (
        _one([1], index=pd.Index([1], name=datetime.date(2020, 1, 1))),
        r"index name datetime.date\(2020, 1, 1\) is a datetime.date",
    ),
    "subclass": (type("Frame", (pd.DataFrame,), {})({"a": [1]}), r"subclass of pandas.DataFrame"),
}


@pytest.mark.parametrize(("value", "message"), REFUSED_FRAMES.values(), ids=REFUSED_FRAMES.keys())
def test_frame_that_parquet_cannot_keep_is_refused_naming_where(
    value: pd.DataFrame, message: str
) -> None:
    with pytest.raises(SerializationError, match=message):
        parquet_data_frame_serializer.serialize_data(value)


def test_frame_written_before_descriptors_reads_as_read_parquet_does() -> None:
    legacy = pd.DataFrame({"a": [1.5, None]}, index=pd.Index(["x", "y"], name="k"))
    data = write_parquet(pa.Table.from_pandas(legacy))
    loaded = parquet_data_frame_serializer.deserialize_data(SerializedData(data, "x"))
    strict.same_frame(legacy, loaded)


def test_frame_with_a_corrupted_descriptor_is_a_clear_error() -> None:
    table, descriptor = labox_pandas.frame_to_table(_one([1]), "test", "the value")
    broken = {**descriptor, "dtypes": [{"kind": "martian"}]}
    data = write_parquet(with_descriptor(table, broken))
    with pytest.raises(SerializationError, match="cannot be read back as the frame"):
        parquet_data_frame_serializer.deserialize_data(SerializedData(data, "x"))


# --- Series, Index, Categorical ----------------------------------------------------------

SERIES = {
    "categorical-named": pd.Series(pd.Categorical([1, 2, 1]), name="c"),
    "int-name": pd.Series([1.5, 2.5], name=3, index=pd.Index(["a", "b"], name="k")),
    "tuple-name": pd.Series([True], name=("a", 1)),
    "no-name-datetime-index": pd.Series(
        pd.array([1, None], dtype="Int64"), index=pd.date_range("2020", periods=2, freq="D")
    ),
    "object-str": pd.Series(["x", None], dtype=object, name="s"),
    "empty": pd.Series([], dtype="float32"),
    "multi-index": pd.Series([1, 2], index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)])),
    "name-values": pd.Series([1], name="values"),
    "attrs-and-flags": pd.Series([1], name="a").set_flags(allows_duplicate_labels=False),
}


@pytest.mark.parametrize("value", SERIES.values(), ids=SERIES.keys())
def test_series_loads_back_equal_in_value_and_type(value: pd.Series) -> None:
    check_value_serializer(parquet_series_serializer, value, equal=strict.same_series)


INDEXES = {
    "range": pd.RangeIndex(3, 30, 3, name="r"),
    "empty-range": pd.RangeIndex(0),
    "int32": pd.Index([1, 2], dtype="int32"),
    "object-str": pd.Index(["a", None], dtype=object, name="o"),
    "str": pd.Index(["a", "b"]),
    "datetime-freq": pd.date_range("2020", periods=3, freq="15min", tz="Asia/Tokyo", name="t"),
    "timedelta": pd.to_timedelta([1, 2], unit="D"),
    "period": pd.period_range("2020Q1", periods=2, freq="Q"),
    "interval": pd.interval_range(pd.Timestamp("2020"), periods=2, freq="D"),
    "categorical": pd.CategoricalIndex(["a", "b", "a"], categories=["b", "a"], ordered=True),
    "multi": pd.MultiIndex.from_arrays(
        [pd.Index([1, 2], dtype="int16"), pd.to_datetime(["2020", "2021"])], names=["n", "d"]
    ),
    "bool": pd.Index([True, False]),
}


@pytest.mark.parametrize("value", INDEXES.values(), ids=INDEXES.keys())
def test_index_loads_back_equal_in_value_and_type(value: pd.Index) -> None:
    check_value_serializer(parquet_index_serializer, value, equal=strict.same_index)


@pytest.mark.parametrize(
    "value",
    [
        pd.Categorical([1, 2, 1]),
        pd.Categorical(["b", None], categories=["b", "a"], ordered=True),
        pd.Categorical(pd.to_datetime(["2020", "2021"]).tz_localize("UTC")),
        pd.Categorical([], categories=pd.Index([], dtype="float32")),
    ],
    ids=["ints", "ordered", "datetimes-tz", "empty"],
)
def test_categorical_loads_back_equal_in_value_and_type(value: pd.Categorical) -> None:
    check_value_serializer(parquet_categorical_serializer, value, equal=strict.same_categorical)


def test_series_index_and_categorical_refuse_what_they_cannot_keep() -> None:
    with pytest.raises(SerializationError, match=r"the value's name .* datetime.date"):
        parquet_series_serializer.serialize_data(pd.Series([1], name=datetime.date(2020, 1, 1)))
    with pytest.raises(SerializationError, match=r"column 'values' is an object column"):
        parquet_series_serializer.serialize_data(pd.Series([1, "a"], dtype=object))
    with pytest.raises(SerializationError, match=r"the value is an object column holding int"):
        parquet_index_serializer.serialize_data(pd.Index([1, "a"], dtype=object))
    with pytest.raises(SerializationError, match=r"writes pandas.Categorical, not builtins.list"):
        parquet_categorical_serializer.serialize_data([1])  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"writes pandas.Series, not pandas.DataFrame"):
        parquet_series_serializer.serialize_data(pd.DataFrame())  # type: ignore[arg-type]


def test_registry_infers_a_faithful_serializer_for_every_pandas_type() -> None:
    registry = Registry(
        modules=["labox_prefect.core.extra.pandas"], default_storage=MemoryStorage()
    )
    expected = {
        pd.DataFrame: ParquetDataFrameSerializer,
        pd.Series: ParquetSeriesSerializer,
        pd.Index: ParquetIndexSerializer,
        pd.RangeIndex: ParquetIndexSerializer,
        pd.MultiIndex: ParquetIndexSerializer,
        pd.DatetimeIndex: ParquetIndexSerializer,
        pd.CategoricalIndex: ParquetIndexSerializer,
        pd.Categorical: ParquetCategoricalSerializer,
    }
    for kind, serializer in expected.items():
        assert isinstance(registry.infer_serializer(kind), serializer), kind


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"a": pd.Categorical([1, 2, 1])}),
        pd.Series(pd.Categorical(["x"]), name=("n", 1)),
        pd.date_range("2020", periods=3, freq="D", name="d"),
        pd.Categorical([1.5, 2.5]),
    ],
    ids=["frame", "series", "index", "categorical"],
)
async def test_save_one_and_load_one_round_trip_on_each_database(
    value: Any, sessions: async_sessionmaker[AsyncSession], registry: Registry
) -> None:
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    compare = {
        pd.DataFrame: strict.same_frame,
        pd.Series: strict.same_series,
        pd.DatetimeIndex: strict.same_index,
        pd.Categorical: strict.same_categorical,
    }[type(value)]
    assert compare(value, loaded.value)


# --- streams keep each frame's types ---------------------------------------------------------

STREAMS = {
    "categories-grow": [
        _one(pd.Categorical(["a", "b"])),
        _one(pd.Categorical(["c", "a"], categories=["a", "b", "c"])),
        _one(pd.Categorical(["z"])),
    ],
    "categories-of-ints-grow": [
        _one(pd.Categorical([1, 2])),
        _one(pd.Categorical([3, 1], categories=[3, 2, 1], ordered=True)),
    ],
    "dictionary-index-widths-change": [
        _one(pd.Categorical(["c1"], categories=["c0", "c1"])),
        _one(pd.Categorical(["c299"], categories=[f"c{i}" for i in range(300)])),
    ],
    "first-object-column-all-null": [
        _one(pd.Series([None, None], dtype=object)),
        _one(pd.Series(["x", None], dtype=object)),
        _one(["y", None]),
    ],
    "str-then-object-str": [_one(["x"]), _one(pd.Series(["y"], dtype=object))],
    "int-becomes-nullable": [
        _one(np.array([1, 2], dtype="int64")),
        _one(pd.array([3, None], dtype="Int64")),
        _one(np.array([2**62], dtype="int64")),
    ],
    "numbers-widen": [
        _one(np.array([1.5], dtype="float64")),
        _one(np.array([2.5], dtype="float32")),
        _one(np.array([np.nan], dtype="float32")),
    ],
    "ints-widen": [
        _one(np.array([2**40], dtype="int64")),
        _one(np.array([-3], dtype="int8")),
        _one(np.array([200], dtype="uint8")),
    ],
    "datetime-units-change": [
        _one(pd.to_datetime(["2020"]).astype("datetime64[ns]")),
        _one(pd.to_datetime(["2021"]).astype("datetime64[s]")),
    ],
    "empty-frames-first": [
        pd.DataFrame({"a": pd.Series([], dtype=object)}),
        _one([1.5]),
        pd.DataFrame({"a": pd.Series([], dtype="int8")}),
    ],
    "index-changes": [
        _one([1], index=pd.Index(["x"], name="k")),
        _one([2], index=pd.Index(["y"], dtype=object, name="k")),
    ],
}


@pytest.mark.parametrize("frames", STREAMS.values(), ids=STREAMS.keys())
async def test_stream_keeps_each_frame_s_types(frames: list[pd.DataFrame]) -> None:
    await check_stream_serializer(stream_serializer, frames, equal=strict.same_frames)


async def test_stream_keeps_categories_that_need_int32_codes() -> None:
    frames = [
        _one(pd.Categorical(["c1"], categories=["c0", "c1"])),
        _one(pd.Categorical(["c0", "c39999"], categories=[f"c{i}" for i in range(40_000)])),
    ]
    strict.same_frames(frames, [f async for f in read(await write(frames))])


async def test_stream_refuses_a_frame_whose_values_would_change_naming_frame_and_column() -> None:
    with pytest.raises(
        SerializationError,
        match=r"frame 3 of the stream does not fit the stream's schema: column 'a' is "
        r"large_string, the stream's is int64",
    ):
        await write([_one([1]), _one([2]), _one(["x"])])
    with pytest.raises(SerializationError, match=r"frame 2 .*column 'a' is uint64.*do not fit"):
        await write([_one(np.array([1], dtype="int64")), _one(np.array([2**63], dtype="uint64"))])
    with pytest.raises(SerializationError, match=r"frame 2 .*column 'a' is .* do not fit it"):
        await write(
            [
                _one(pd.to_datetime(["2020"]).astype("datetime64[s]")),
                _one(pd.to_datetime(["2020-01-01T00:00:00.5"])),
            ]
        )


async def test_stream_written_before_descriptors_reads_as_before() -> None:
    frames = [frame(0, 2), frame(2, 3)]
    sink = ChunkSink()
    writer = pq.ParquetWriter(sink, pa.Table.from_pandas(frames[0]).schema)
    for item in frames:
        writer.write_table(pa.Table.from_pandas(item))
    writer.add_key_value_metadata({labox_pandas.RANGE_INDEXES_KEY: "[[0, 2, 1], [2, 5, 1]]"})
    writer.close()
    loaded = [f async for f in read([sink.drain()])]
    same_frames(frames, loaded)


@pytest.mark.parametrize(
    "serializer",
    [parquet_series_serializer, parquet_index_serializer, parquet_categorical_serializer],
    ids=["series", "index", "categorical"],
)
def test_series_index_and_categorical_refuse_parquet_they_did_not_write(serializer: Any) -> None:
    data = write_parquet(pa.table({"a": [1], "b": [2]}))
    with pytest.raises(SerializationError, match=r"cannot be read back|was not written by"):
        serializer.deserialize_data(SerializedData(data, "application/vnd.apache.parquet"))
    broken = write_parquet(pa.table({"a": [1]}).replace_schema_metadata({"labox.pandas": "{"}))
    with pytest.raises(SerializationError, match=r"cannot read the description"):
        serializer.deserialize_data(SerializedData(broken, "application/vnd.apache.parquet"))


async def test_stream_footer_keeps_each_distinct_label_set_and_categories_once() -> None:
    frames = [
        _one(pd.Categorical(["x", "y"]), index=pd.RangeIndex(2 * n, 2 * n + 2)) for n in range(50)
    ]
    chunks = await write(frames)
    footer = pq.ParquetFile(pa.BufferReader(b"".join(chunks))).metadata.metadata
    stored = json.loads(footer[labox_pandas.FRAMES_KEY.encode()])
    assert len(stored["frames"]) == 50
    assert len(stored["shared"]) == 2  # the column labels and the categories
    strict.same_frames(frames, [f async for f in read(chunks)])
