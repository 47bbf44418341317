"""Hypothesis: frames of every supported dtype, index and labels load back the same, or are
refused cleanly; never a silent change. Fixed seed (derandomize) so CI runs the same cases."""

from __future__ import annotations

import datetime
import warnings
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import Registry, load_one, save_one
from labox_prefect.core.builtin import StorableStream, StorableValue
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra._frames import decode_index, decode_name, encode_index, encode_name
from labox_prefect.core.extra.pandas import (
    parquet_data_frame_serializer,
    parquet_data_frame_stream_serializer,
    parquet_index_serializer,
    parquet_series_serializer,
)
from labox_prefect.core.serializer import SerializedDataStream
from tests.core.extra import _strict as strict

ROWS = 4


def fixed(examples: int) -> settings:
    """A fixed seed (derandomize), no deadline (2 shared cores), ``examples`` examples."""
    return settings(
        derandomize=True,
        deadline=None,
        max_examples=examples,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4)
names = st.one_of(
    st.none(),
    texts,
    st.integers(-5, 5),
    st.tuples(texts, st.integers(0, 3)),
    st.builds(np.int64, st.integers(-5, 5)),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(
        pd.Timestamp,
        st.datetimes(timezones=st.sampled_from([None, datetime.UTC, ZoneInfo("Europe/Paris")])),
    ),
)


def _column(kind: str, data: st.DataObject, rows: int) -> Any:
    """Values of ``kind`` for ``rows`` rows."""
    maybe = st.booleans()
    if kind in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        info = np.iinfo(kind)
        values = data.draw(
            st.lists(st.integers(int(info.min), int(info.max)), min_size=rows, max_size=rows)
        )
        return np.array(values, dtype=kind)
    if kind in ("float16", "float32", "float64"):
        width = {"float16": 16, "float32": 32, "float64": 64}[kind]
        values = data.draw(st.lists(st.floats(width=width), min_size=rows, max_size=rows))  # type: ignore[arg-type]
        return np.array(values, dtype=kind)
    if kind == "bool":
        return np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    if kind in ("datetime64[s]", "datetime64[ms]", "datetime64[ns]", "timedelta64[us]"):
        values = data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=rows, max_size=rows))
        array = np.array(values, dtype="int64").view(
            kind.replace("datetime64", "M8").replace("timedelta64", "m8")
        )
        if data.draw(maybe) and rows:
            array[0] = (
                np.datetime64("NaT") if kind.startswith("datetime") else np.timedelta64("NaT")
            )
        return array
    if kind == "datetime-tz":
        tz = data.draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
        return (
            pd.DatetimeIndex(_column("datetime64[ms]", data, rows))
            .tz_localize("UTC")
            .tz_convert(tz)
            .array
        )
    if kind in ("Int64", "UInt8", "Float32", "boolean"):
        base = {
            "Int64": st.integers(-(2**63), 2**63 - 1),
            "UInt8": st.integers(0, 255),
            "Float32": st.floats(width=32, allow_nan=False),
            "boolean": st.booleans(),
        }[kind]
        return pd.array(
            data.draw(st.lists(st.none() | base, min_size=rows, max_size=rows)), dtype=kind
        )
    if kind in ("str", "string[python]", "string[pyarrow]"):
        values = data.draw(st.lists(st.none() | texts, min_size=rows, max_size=rows))
        return pd.array(values, dtype=kind)
    if kind in ("object-str", "object-bytes"):
        base = texts if kind == "object-str" else st.binary(max_size=4)
        marker = data.draw(st.sampled_from([None, np.nan]))
        values = data.draw(st.lists(st.just(marker) | base, min_size=rows, max_size=rows))
        array = np.empty(rows, dtype=object)
        array[:] = values
        return array
    if kind in ("categorical-str", "categorical-int"):
        base = texts if kind == "categorical-str" else st.integers(-100, 100)
        categories = data.draw(st.lists(base, min_size=1, max_size=6, unique=True))
        values = data.draw(
            st.lists(st.none() | st.sampled_from(categories), min_size=rows, max_size=rows)
        )
        return pd.Categorical(values, categories=categories, ordered=data.draw(st.booleans()))
    if kind == "period":
        return pd.period_range(
            "2020-01", periods=rows, freq=data.draw(st.sampled_from(["D", "M"]))
        ).array
    if kind == "object-mixed":  # refused
        array = np.empty(rows, dtype=object)
        array[:] = data.draw(
            st.lists(st.one_of(st.integers(), texts, st.floats()), min_size=rows, max_size=rows)
        )
        return array
    raise AssertionError(kind)


KINDS = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "bool",
    "datetime64[s]",
    "datetime64[ms]",
    "datetime64[ns]",
    "timedelta64[us]",
    "datetime-tz",
    "Int64",
    "UInt8",
    "Float32",
    "boolean",
    "str",
    "string[python]",
    "string[pyarrow]",
    "object-str",
    "object-bytes",
    "categorical-str",
    "categorical-int",
    "period",
    "object-mixed",
]
INDEX_KINDS = ["range", "int32", "str", "object-str", "datetime", "categorical-str", "multi"]


def _index(kind: str, data: st.DataObject, rows: int) -> pd.Index:
    name = data.draw(names)
    if kind == "range":
        start, step = data.draw(st.integers(-10, 10)), data.draw(st.sampled_from([1, 2, -3]))
        return pd.RangeIndex(start, start + step * rows, step, name=name)
    if kind == "datetime":
        freq = data.draw(st.sampled_from([None, "D", "h", "15min"]))
        index = pd.date_range("2021-03-01", periods=rows, freq=freq or "s", name=name)
        return index if freq else pd.DatetimeIndex(list(index), name=name)
    if kind == "multi":
        return pd.MultiIndex.from_arrays(
            [_column("str", data, rows), _column("int16", data, rows)], names=[name, None]
        )
    values = _column(
        {
            "int32": "int32",
            "str": "str",
            "object-str": "object-str",
            "categorical-str": "categorical-str",
        }[kind],
        data,
        rows,
    )
    return pd.Index(values, name=name)


@st.composite
def frames(draw: st.DrawFn, rows: int | None = None) -> pd.DataFrame:
    data = draw(st.data())
    rows = draw(st.integers(0, ROWS)) if rows is None else rows
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=4))
    labels = draw(
        st.one_of(
            st.lists(texts, min_size=len(kinds), max_size=len(kinds), unique=True),
            st.lists(st.integers(-3, 9), min_size=len(kinds), max_size=len(kinds), unique=True),
        )
    )
    index = _index(draw(st.sampled_from(INDEX_KINDS)), data, rows)
    columns = {label: _column(kind, data, rows) for label, kind in zip(labels, kinds, strict=True)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.DataFrame(columns, index=index)


REFUSALS = (
    "object column holding",  # object-mixed columns
    "both None and NaN",
    "read the same as text",  # labels 1 and "1"
)
"""Why a generated frame may be refused; any other refusal fails the test."""


def _expect_refusal(error: SerializationError, reasons: tuple[str, ...]) -> None:
    if not any(reason in str(error) for reason in reasons):
        raise AssertionError(f"refused for an unexpected reason: {error}")


def _round_trip_or_refuse(value: pd.DataFrame) -> bool:
    """True if it round-tripped; False if refused with a SerializationError."""
    try:
        data = parquet_data_frame_serializer.serialize_data(value)
    except SerializationError as error:
        _expect_refusal(error, REFUSALS)
        return False
    strict.same_frame(value, parquet_data_frame_serializer.deserialize_data(data))
    return True


@fixed(150)
@given(frames())
def test_any_frame_loads_back_the_same_or_is_refused_cleanly(value: pd.DataFrame) -> None:
    _round_trip_or_refuse(value)


@fixed(60)
@given(frames())
def test_any_frame_s_first_column_as_a_series_and_its_index_load_back_the_same(
    value: pd.DataFrame,
) -> None:
    index = parquet_index_serializer.serialize_data(value.index)
    strict.same_index(value.index, parquet_index_serializer.deserialize_data(index))
    if value.shape[1]:
        series = value.iloc[:, 0]
        try:
            data = parquet_series_serializer.serialize_data(series)
        except SerializationError as error:
            _expect_refusal(error, REFUSALS)
        else:
            strict.same_series(series, parquet_series_serializer.deserialize_data(data))


STREAM_FAMILIES = [
    ["categorical-str", "str", "object-str"],
    ["int64", "Int64"],
    ["categorical-int"],
    ["datetime64[s]", "datetime64[ms]", "datetime64[ns]"],
]


@st.composite
def streams(draw: st.DrawFn) -> list[pd.DataFrame]:
    data = draw(st.data())
    family = draw(st.sampled_from(STREAM_FAMILIES))
    result = []
    for _ in range(draw(st.integers(1, 4))):
        rows = draw(st.integers(0, ROWS))
        column = _column(draw(st.sampled_from(family)), data, rows)
        result.append(
            pd.DataFrame(
                {"a": column},
                index=_index(draw(st.sampled_from(["range", "str"])), data, rows).rename("i"),
            )
        )
    return result


@fixed(40)
@given(streams())
async def test_any_stream_keeps_each_frame_or_refuses_naming_the_frame(
    frames_: list[pd.DataFrame],
) -> None:
    async def produce() -> Any:
        for item in frames_:
            yield item

    serialized = parquet_data_frame_stream_serializer.serialize_data_stream(produce())
    try:
        payload = b"".join([chunk async for chunk in serialized.data_stream])
    except SerializationError as error:
        _expect_refusal(error, ("of the stream does",))
        return

    async def source() -> Any:
        yield payload

    content = SerializedDataStream(source(), serialized.content_type)
    loaded = [
        f async for f in parquet_data_frame_stream_serializer.deserialize_data_stream(content)
    ]
    strict.same_frames(frames_, loaded)


@fixed(100)
@given(names)
def test_names_keep_their_type(name: Any) -> None:
    strict.same_name(name, decode_name(encode_name(name, "name")), "name")


def test_encoded_index_and_descriptor_damage_is_a_clear_error() -> None:
    index = decode_index(encode_index(pd.Index([1, 2], dtype="int8"), "x"))
    strict.same_index(pd.Index([1, 2], dtype="int8"), index)
    with pytest.raises(ValueError, match="not base64"):
        decode_index("%%%")
    with pytest.raises(ValueError, match="unknown name"):
        decode_name(["martian", 1])


# --- on real databases: one generated frame and one stream, through save_one/load_one ------


async def test_generated_frames_round_trip_through_each_database(
    sessions: async_sessionmaker[AsyncSession], registry: Registry
) -> None:
    examples: list[pd.DataFrame] = []

    @fixed(5)
    @given(frames(rows=3))
    def collect(value: pd.DataFrame) -> None:
        examples.append(value)

    collect()
    faithful = [f for f in examples if _round_trip_or_refuse(f)]
    assert faithful, "every generated frame was refused"
    async with sessions() as session:
        records = [
            await save_one(StorableValue(f), session=session, registry=registry) for f in faithful
        ]

    chunks = [faithful[0], faithful[0].iloc[:1], faithful[0].iloc[:0]]

    async def stream() -> Any:
        for item in chunks:
            yield item

    async with sessions() as session:
        stream_record = await save_one(
            StorableStream(stream(), item_type=pd.DataFrame), session=session, registry=registry
        )
    async with sessions() as session:
        for value, record in zip(faithful, records, strict=True):
            loaded = await load_one(record, StorableValue, session=session, registry=registry)
            strict.same_frame(value, loaded.value)
        loaded_stream = await load_one(
            stream_record, StorableStream, session=session, registry=registry
        )
        strict.same_frames(chunks, [f async for f in loaded_stream.stream])
