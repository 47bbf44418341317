"""StorableModel (labox.pydantic@v2): the loaded model equals the saved one field by field."""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import pytest
from pydantic import ConfigDict, PrivateAttr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import ContentRecord, Registry, SerializationError, load_one, save_one
from labox_prefect.core.builtin import MemoryStorage
from labox_prefect.core.extra.pydantic import LegacyModelUnpacker, StorableModel
from labox_prefect.core.testing import difference

Sessions = async_sessionmaker[AsyncSession]


class Report(StorableModel, class_id="8e1f3a5c7b9d2e40"):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    stats: dict[str, Any]
    anything: Any = None
    frames: dict[str, pd.DataFrame] = {}
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)


async def round_trip(model: StorableModel, sessions: Sessions, registry: Registry) -> Any:
    async with sessions() as session:
        record = await save_one(model, session=session, registry=registry)
    async with sessions() as session:
        return await load_one(record, session=session, registry=registry)


async def test_nan_in_a_dict_of_any_stays_nan(sessions: Sessions, registry: Registry) -> None:
    report = Report(stats={"loss": float("nan"), "best": -0.0})
    loaded = await round_trip(report, sessions, registry)
    assert difference(report, loaded) is None


async def test_extra_fields_are_kept(sessions: Sessions, registry: Registry) -> None:
    report = Report(stats={}, seed=7, tags=("a", "b"))
    loaded = await round_trip(report, sessions, registry)
    assert loaded.model_extra == {"seed": 7, "tags": ("a", "b")}
    assert difference(report, loaded) is None


async def test_any_fields_keep_tuples_sets_and_private_attributes(
    sessions: Sessions, registry: Registry
) -> None:
    report = Report(stats={"n": 1}, anything=((1, 2), {3}))
    report._cache["hits"] = 2
    loaded = await round_trip(report, sessions, registry)
    assert loaded.anything == ((1, 2), {3})
    assert loaded._cache == {"hits": 2}
    assert loaded.model_fields_set == {"stats", "anything"}
    assert difference(report, loaded) is None


async def test_a_str_without_utf8_in_a_field_is_refused_naming_the_field(
    sessions: Sessions, registry: Registry
) -> None:
    report = Report(stats={}, anything=(1, ["\ud800"]))
    async with sessions() as session:
        with pytest.raises(SerializationError) as caught:
            await save_one(report, session=session, registry=registry)
    assert "Cannot save anything[1][0] (a str): it holds an unpaired surrogate" in str(caught.value)


async def test_frames_in_a_dict_field_are_contents_of_their_own(
    sessions: Sessions, registry: Registry
) -> None:
    frames = {"train": pd.DataFrame({"x": [1.0, 2.0]}), "test": pd.DataFrame({"x": [3.0]})}
    report = Report(stats={}, frames=frames)
    async with sessions() as session:
        record = await save_one(report, session=session, registry=registry)
        keys = set(
            (
                await session.execute(
                    select(ContentRecord.content_key).where(ContentRecord.manifest_id == record.id)
                )
            ).scalars()
        )
    assert keys == {"__body__", "frames['train']", "frames['test']"}
    async with sessions() as session:
        loaded = await load_one(record, Report, session=session, registry=registry)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(loaded.frames[name], frame)


async def test_a_pinned_class_is_known_without_listing_its_module(sessions: Sessions) -> None:
    # As a flow script's own model: defined, pinned, and in no Registry(modules=[...]).
    bare = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    full = Registry(registries=[bare], modules=["labox_prefect.core.extra.pydantic"])
    loaded = await round_trip(Report(stats={"a": 1}), sessions, full)
    assert type(loaded) is Report


async def test_records_of_the_v1_format_still_load(
    sessions: Sessions, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Report, "_storable_unpacker", LegacyModelUnpacker())
    async with sessions() as session:
        record = await save_one(Report(stats={"a": 1.5}), session=session, registry=registry)
    monkeypatch.undo()
    assert record.unpacker_name == "labox.pydantic@v1"
    async with sessions() as session:
        loaded = await load_one(record, Report, session=session, registry=registry)
    assert loaded.stats == {"a": 1.5}


class Unpinned(StorableModel):
    value: Any


async def test_an_unpinned_model_defined_in_this_process_loads_without_configuration(
    sessions: Sessions,
) -> None:
    bare = Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pydantic"],
        default_storage=MemoryStorage(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the advice to pin a class_id, warned once
        loaded = await round_trip(Unpinned(value=(1, "a")), sessions, bare)
    assert type(loaded) is Unpinned
    assert loaded.value == (1, "a")
