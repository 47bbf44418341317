"""Built-in serializers through the conformance harness, plus their refusals."""

from __future__ import annotations

import collections
import datetime
import math
import zoneinfo
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labox_prefect.core.builtin.serializers import (
    bytes_serializer,
    bytes_stream_serializer,
    datetime_serializer,
    json_lines_stream_serializer,
    json_serializer,
    text_serializer,
    text_stream_serializer,
    values_lines_stream_serializer,
)
from labox_prefect.core.builtin.storages import MemoryStorage
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData, SerializedDataStream, StreamSerializer
from labox_prefect.core.testing import (
    check_stream_serializer,
    check_value_serializer,
    same_concatenation,
    same_value,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
cut_positions = st.lists(st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
time_zones = st.none() | st.timezones() | st.just(datetime.UTC)
stream_settings = settings(max_examples=20, deadline=None)


def as_json(value: Any) -> Any:
    """What JSON reads back: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


async def read_all(serializer: StreamSerializer[Any], pieces: Sequence[bytes]) -> list[Any]:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    content = SerializedDataStream(source(), serializer.content_types[0])
    return [item async for item in serializer.deserialize_data_stream(content)]


async def write_all(serializer: StreamSerializer[Any], values: Sequence[Any]) -> bytes:
    async def produce() -> AsyncIterator[Any]:
        for value in values:
            yield value

    return b"".join([c async for c in serializer.serialize_data_stream(produce()).data_stream])


# --- JSON ------------------------------------------------------------------------------


@given(json_values)
def test_json_round_trips_any_json_value(value: Any) -> None:
    check_value_serializer(json_serializer, value)


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, {"big": [10**40, -(10**30)]}, "12345678901234567890123"],
    ids=["u64+1", "i64-1", "nested", "digits-in-a-string"],
)
def test_json_keeps_integers_beyond_64_bits_exact(value: Any) -> None:
    check_value_serializer(json_serializer, value)


def test_json_reads_tuples_back_as_lists() -> None:
    loaded = json_serializer.deserialize_data(json_serializer.serialize_data((1, (2, "a"))))
    assert loaded == [1, [2, "a"]]


def test_json_writes_subclasses_of_json_types_as_the_types() -> None:
    point = collections.namedtuple("point", "x y")
    value = {"ordered": collections.OrderedDict(b=1, a=2), "point": point(1, 2)}
    loaded = json_serializer.deserialize_data(json_serializer.serialize_data(value))
    assert same_value({"ordered": {"b": 1, "a": 2}, "point": [1, 2]}, loaded)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [1.0, math.nan]}, r"value\['a'\]\[1\] is nan"),
        ([math.inf], r"value\[0\] is inf"),
        (
            {"x": {1: "one"}},
            r"value\['x'\] has the key 1 of type int; JSON object keys must be str",
        ),
        ({"when": datetime.date(2024, 1, 1)}, r"value\['when'\] is a datetime.date"),
        ({1, 2}, r"value is a builtins.set"),
    ],
    ids=["nan", "inf", "int-key", "date", "set"],
)
def test_json_refuses_what_it_cannot_read_back(value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        json_serializer.serialize_data(value)


def test_json_refuses_a_value_that_contains_itself() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="nested more than 254 levels deep"):
        json_serializer.serialize_data(loop)


@pytest.mark.parametrize("data", [b'{"a": 1', b"\xff\xfe", b"NaN", b""], ids=str)
def test_json_names_corrupted_bytes(data: bytes) -> None:
    with pytest.raises(SerializationError, match="not valid UTF-8 JSON"):
        json_serializer.deserialize_data(SerializedData(data, "application/json"))


def test_json_refuses_nan_tokens_on_the_slow_path_too() -> None:
    with pytest.raises(SerializationError, match="not valid UTF-8 JSON"):
        json_serializer.deserialize_data(SerializedData(b"[12345678901234567890, NaN]", "x"))


# --- text and bytes ----------------------------------------------------------------------


@given(st.text())
def test_text_round_trips(value: str) -> None:
    check_value_serializer(text_serializer, value)


def test_text_refuses_non_str_and_unpaired_surrogates() -> None:
    with pytest.raises(SerializationError, match="writes str, not bytes"):
        text_serializer.serialize_data(b"abc")  # type: ignore[arg-type]
    with pytest.raises(
        SerializationError,
        match=r"Cannot save value \(a str\): it holds an unpaired surrogate at position 1 .*not "
        r"valid UTF-8; fix the text, or save it as bytes",
    ):
        text_serializer.serialize_data("a\ud800b")


def test_text_names_bytes_that_are_not_utf8() -> None:
    with pytest.raises(SerializationError, match="not valid UTF-8"):
        text_serializer.deserialize_data(SerializedData(b"caf\xc3", "text/plain"))


@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    check_value_serializer(bytes_serializer, value)


def test_bytearray_reads_back_as_bytes() -> None:
    check_value_serializer(bytes_serializer, bytearray(b"\x00\x01"), equal=lambda a, b: a == b)
    loaded = bytes_serializer.deserialize_data(bytes_serializer.serialize_data(bytearray(b"x")))
    assert type(loaded) is bytes


def test_bytes_refuses_str_with_the_fix() -> None:
    with pytest.raises(SerializationError, match=r"not str; encode the value first"):
        bytes_serializer.serialize_data("abc")  # type: ignore[arg-type]


# --- datetime ------------------------------------------------------------------------------


@given(st.datetimes(timezones=time_zones))
def test_datetime_round_trips_with_its_zone_and_fold(value: datetime.datetime) -> None:
    def identical(a: datetime.datetime, b: datetime.datetime) -> bool:
        return (a, a.tzinfo, a.fold, a.utcoffset()) == (b, b.tzinfo, b.fold, b.utcoffset())

    check_value_serializer(datetime_serializer, value, equal=identical)


def test_datetime_keeps_naive_naive_and_the_zone_named() -> None:
    naive = datetime.datetime(2024, 5, 1, 12, 30, 15, 123456)
    assert datetime_serializer.deserialize_data(datetime_serializer.serialize_data(naive)) == naive
    paris = datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    content = datetime_serializer.serialize_data(paris)
    assert content.data == b"2024-10-27T02:30:00+01:00"
    assert content.config == {"zone": "Europe/Paris", "fold": 1}
    loaded = datetime_serializer.deserialize_data(content)
    assert loaded.tzinfo is paris.tzinfo
    assert loaded.utcoffset() == datetime.timedelta(hours=1)


def test_datetime_keeps_the_instant_when_zone_rules_disagree() -> None:
    content = SerializedData(b"2024-07-01T12:00:00+05:00", "text/plain", config={"zone": "UTC"})
    loaded = datetime_serializer.deserialize_data(content)
    assert loaded == datetime.datetime(2024, 7, 1, 7, 0, tzinfo=datetime.UTC)
    assert loaded.tzinfo == zoneinfo.ZoneInfo("UTC")


def test_datetime_errors_name_the_problem() -> None:
    with pytest.raises(SerializationError, match=r"not date \(a subclass.*convert it first"):
        datetime_serializer.serialize_data(datetime.date(2024, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="not an ISO-8601 datetime"):
        datetime_serializer.deserialize_data(SerializedData(b"2024-13-01T00:00", "text/plain"))
    with pytest.raises(SerializationError, match="Install the tzdata package"):
        datetime_serializer.deserialize_data(
            SerializedData(b"2024-01-01T00:00+00:00", "text/plain", config={"zone": "Nowhere/X"})
        )


# --- streams ------------------------------------------------------------------------------


@stream_settings
@given(st.lists(json_values, max_size=8), cut_positions)
async def test_json_lines_round_trip_under_every_chunking(
    values: list[Any], cuts: list[list[int]]
) -> None:
    await check_stream_serializer(json_lines_stream_serializer, values, cuts=cuts)


async def test_json_lines_stream_of_many_values_is_written_in_batches() -> None:
    values = [{"i": i, "text": "x" * 50} for i in range(5000)]
    chunks = [
        chunk
        async for chunk in json_lines_stream_serializer.serialize_data_stream(
            _aiter(values)
        ).data_stream
    ]
    assert 1 < len(chunks) < 20
    assert await read_all(json_lines_stream_serializer, chunks) == values
    await check_stream_serializer(json_lines_stream_serializer, [as_json((1, 2)), "a\nb"])


async def test_json_lines_names_a_truncated_stream_and_a_corrupted_line() -> None:
    payload = await write_all(json_lines_stream_serializer, [{"a": 1}, {"b": 2}])
    with pytest.raises(SerializationError, match="ends in the middle of line 2"):
        await read_all(json_lines_stream_serializer, [payload[:-3]])
    with pytest.raises(SerializationError, match="cannot read line 2"):
        await read_all(json_lines_stream_serializer, [b'{"a":1}\n{"b":\n'])


async def test_json_lines_refuses_a_bad_item_and_closes_the_producer() -> None:
    closed = []

    async def produce() -> AsyncIterator[Any]:
        try:
            yield {"ok": 1}
            yield {"bad": math.nan}
            yield {"never": 1}
        finally:
            closed.append(True)

    stream = json_lines_stream_serializer.serialize_data_stream(produce()).data_stream
    with pytest.raises(SerializationError, match=r"value\['bad'\] is nan"):
        async for _ in stream:
            pass
    assert closed == [True]


@stream_settings
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=6), cut_positions)
async def test_bytes_stream_keeps_the_concatenation(
    chunks: list[bytes], cuts: list[list[int]]
) -> None:
    await check_stream_serializer(
        bytes_stream_serializer, chunks, equal=same_concatenation, cuts=cuts
    )


async def test_bytes_stream_refuses_a_non_bytes_chunk() -> None:
    with pytest.raises(SerializationError, match="not str"):
        await write_all(bytes_stream_serializer, [b"a", "b"])


@stream_settings
@given(st.lists(st.text(max_size=20), max_size=6), cut_positions)
async def test_text_stream_keeps_the_concatenation_across_split_characters(
    pieces: list[str], cuts: list[list[int]]
) -> None:
    await check_stream_serializer(
        text_stream_serializer, pieces, equal=same_concatenation, cuts=cuts
    )


async def test_text_stream_reads_multibyte_characters_cut_anywhere() -> None:
    payload = await check_stream_serializer(
        text_stream_serializer, ["héllo ", "wörld ", "🎉"], equal=same_concatenation
    )
    assert payload == "héllo wörld 🎉".encode()


async def test_text_stream_names_truncated_utf8() -> None:
    with pytest.raises(SerializationError, match="not valid UTF-8"):
        await read_all(text_stream_serializer, [b"ok", "🎉".encode()[:2]])


# --- registry ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (dict, "labox.values@v1"),
        (collections.OrderedDict, "labox.values@v1"),  # found by MRO; the tree refuses it
        (list, "labox.values@v1"),
        (tuple, "labox.values@v1"),
        (bool, "labox.values@v1"),
        (type(None), "labox.values@v1"),
        (str, "labox.text@v1"),
        (bytes, "labox.bytes@v1"),
        (bytearray, "labox.values@v1"),
        (datetime.datetime, "labox.datetime@v1"),
    ],
)
def test_registry_infers_value_serializers(cls: type[Any], name: str) -> None:
    registry = Registry(
        modules=["labox_prefect.core.builtin.serializers"], default_storage=MemoryStorage()
    )
    assert registry.infer_serializer(cls).name == name


def test_registry_infers_stream_serializers_and_finds_the_text_stream_by_name() -> None:
    registry = Registry(
        modules=["labox_prefect.core.builtin.serializers"], default_storage=MemoryStorage()
    )
    assert registry.infer_stream_serializer(dict).name == "labox.values-lines@v1"
    assert registry.infer_stream_serializer(str).name == "labox.values-lines@v1"
    assert registry.infer_stream_serializer(tuple).name == "labox.values-lines@v1"
    assert registry.infer_stream_serializer(bytes).name == "labox.bytes-stream@v1"
    assert registry.get_stream_serializer("labox.text-stream@v1") is text_stream_serializer


async def _aiter(values: Sequence[Any]) -> AsyncIterator[Any]:
    for value in values:
        yield value


def test_datetime_refuses_zones_that_would_come_back_as_another_type() -> None:
    named = datetime.timezone(datetime.timedelta(hours=1), "CET")
    with pytest.raises(SerializationError, match="cannot keep the time zone"):
        datetime_serializer.serialize_data(datetime.datetime(2024, 1, 1, tzinfo=named))


async def test_values_lines_keep_the_types_of_stream_items() -> None:
    items = [(1, "a"), {1: {2}}, "text", None, datetime.date(2024, 1, 1)]
    await check_stream_serializer(values_lines_stream_serializer, items)
