"""StorableValue (labox.value@v2): everyday values keep their types; containers of frames
are unpacked into one content per frame; v1 records still load."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import threading
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentRecord,
    ManifestRecord,
    Registry,
    SerializationError,
    load_one,
    save_one,
)
from labox_prefect.core.builtin import StorableValue, json_serializer
from labox_prefect.core.builtin.storables import value as value_module
from labox_prefect.core.builtin.storables.value import LegacyValueUnpacker
from labox_prefect.core.testing import Level, difference

Sessions = async_sessionmaker[AsyncSession]


class Color(enum.Enum):
    RED = "red"


class Mode(enum.StrEnum):
    FAST = "fast"


class Point(NamedTuple):
    x: int
    y: int


@dataclasses.dataclass
class Run:
    name: str
    shape: tuple[int, int]


class Settings(BaseModel):
    rate: float
    labels: Any = None


async def round_trip(value: Any, sessions: Sessions, registry: Registry) -> Any:
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    async with sessions() as session:
        return (await load_one(record, StorableValue, session=session, registry=registry)).value


@pytest.mark.parametrize(
    "value",
    [
        (1, "a"),
        {1: "one", 2: "two"},
        {"a", "b"},
        decimal.Decimal("3.14"),
        datetime.date(2024, 5, 1),
        Settings(rate=0.5, labels=("x", float("nan"))),
        Run("r", (3, 4)),
        Color.RED,
        Point(1, 2),
        [pd.Timestamp("2024-01-01 00:00:00.000000001"), pd.NaT, np.int16(3)],
        pd.NaT,
        pd.Timestamp("2024-01-01 12:00", tz="Europe/Paris"),
        np.float64("nan"),
        Mode.FAST,
        Level.HIGH,
    ],
    ids=lambda v: type(v).__name__,
)
async def test_everyday_values_load_back_with_their_types(
    value: Any, sessions: Sessions, registry: Registry
) -> None:
    loaded = await round_trip(value, sessions, registry)
    assert difference(value, loaded) is None


async def content_rows(sessions: Sessions, manifest_id: Any) -> dict[str, ContentRecord]:
    async with sessions() as session:
        rows = (
            await session.execute(
                select(ContentRecord).where(ContentRecord.manifest_id == manifest_id)
            )
        ).scalars()
        return {row.content_key: row for row in rows}


async def test_a_dict_of_frames_is_one_body_plus_one_parquet_content_per_frame(
    sessions: Sessions, registry: Registry
) -> None:
    frames = {"a": pd.DataFrame({"x": [1, 2]}), "b": pd.DataFrame({"y": ["u", "v"]})}
    value = {"frames": frames, "note": (1, "n")}
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    rows = await content_rows(sessions, record.id)
    assert sorted(rows) == ["value", "value['frames']['a']", "value['frames']['b']"]
    assert rows["value"].serializer_name == "labox.value-tree@v1"
    assert {rows[k].serializer_name for k in rows if k != "value"} == {
        registry.infer_serializer(pd.DataFrame).name
    }
    async with sessions() as session:
        loaded = (await load_one(record, StorableValue, session=session, registry=registry)).value
    assert loaded["note"] == (1, "n")
    for key, frame in frames.items():
        pd.testing.assert_frame_equal(loaded["frames"][key], frame)


async def test_a_frame_alone_is_still_one_content_of_its_own_serializer(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        record = await save_one(
            StorableValue(pd.DataFrame({"x": [1]})), session=session, registry=registry
        )
    rows = await content_rows(sessions, record.id)
    assert list(rows) == ["value"]
    assert rows["value"].serializer_name == registry.infer_serializer(pd.DataFrame).name


async def test_large_bytes_inside_a_value_are_contents_not_base64(
    sessions: Sessions, registry: Registry
) -> None:
    blob = bytes(range(256)) * 100
    value = [b"small", blob]
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    rows = await content_rows(sessions, record.id)
    assert rows["value[1]"].content_size == len(blob)
    assert rows["value"].content_size < 200
    assert await round_trip(value, sessions, registry) == value


async def test_a_value_that_cannot_be_kept_is_refused_before_any_record(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        with pytest.raises(SerializationError, match=r"value\['a'\]\[3\] \(a object\)"):
            await save_one(
                StorableValue({"a": [1, 2, 3, object()]}), session=session, registry=registry
            )
        assert await session.scalar(select(func.count()).select_from(ManifestRecord)) == 0


@pytest.mark.parametrize(
    ("value", "where"),
    [({"s": "a\ud800b"}, "value['s']"), ("a\ud800b", "value")],
    ids=["in-a-dict", "alone"],
)
async def test_a_str_with_an_unpaired_surrogate_is_refused_with_its_path_and_a_fix(
    sessions: Sessions, registry: Registry, value: Any, where: str
) -> None:
    async with sessions() as session:
        with pytest.raises(SerializationError) as caught:
            await save_one(StorableValue(value), session=session, registry=registry)
    message = str(caught.value)
    assert f"Cannot save {where} (a str): it holds an unpaired surrogate" in message
    assert "not valid UTF-8" in message
    assert "save it as bytes" in message
    assert "nest" not in message


async def test_records_of_the_v1_format_still_load(
    sessions: Sessions, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StorableValue, "_storable_unpacker", LegacyValueUnpacker())
    async with sessions() as session:
        record = await save_one(
            StorableValue({"a": [1, 2]}, serializer=json_serializer),
            session=session,
            registry=registry,
        )
    monkeypatch.undo()
    assert record.unpacker_name == "labox.value@v1"
    async with sessions() as session:
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    assert loaded.value == {"a": [1, 2]}


async def test_a_large_value_is_encoded_off_the_event_loop(
    sessions: Sessions, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = value_module.ContentRouter.__init__

    def spy(self: Any, *args: Any) -> None:
        threads.append(threading.current_thread().name)
        original(self, *args)

    monkeypatch.setattr(value_module.ContentRouter, "__init__", spy)
    small, large = {"a": 1}, [{"i": i} for i in range(5000)]
    assert await round_trip(small, sessions, registry) == small
    assert await round_trip(large, sessions, registry) == large
    main = threading.main_thread().name
    assert threads[0] == main
    assert threads[1] != main
