"""StorableDataclass (labox.dataclass@v2): fields keep their values and types, every field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import Registry, load_one, save_one
from labox_prefect.core.builtin import StorableDataclass
from labox_prefect.core.builtin.storables.dataclass import LegacyDataclassUnpacker
from labox_prefect.core.testing import Box, difference

Sessions = async_sessionmaker[AsyncSession]


@dataclasses.dataclass
class Trial(StorableDataclass, class_id="2c4e6a8b0d1f3a57"):
    name: str
    params: dict[Any, Any]
    inner: Box
    derived: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        self.derived = len(self.params)


async def test_fields_keep_their_types_and_non_init_fields_their_values(
    sessions: Sessions, registry: Registry
) -> None:
    trial = Trial("t", {1: (2.0, float("nan")), "s": {3}}, Box(frozenset({"x"})))
    trial.derived = 99  # changed after __init__: loading must not recompute it
    async with sessions() as session:
        record = await save_one(trial, session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, session=session, registry=registry)
    assert difference(trial, loaded) is None
    assert loaded.derived == 99


async def test_records_of_the_v1_format_still_load(
    sessions: Sessions, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Trial, "_storable_unpacker", LegacyDataclassUnpacker())
    async with sessions() as session:
        record = await save_one(Trial("t", {"a": 1}, Box("c")), session=session, registry=registry)
    monkeypatch.undo()
    assert record.unpacker_name == "labox.dataclass@v1"
    async with sessions() as session:
        loaded = await load_one(record, Trial, session=session, registry=registry)
    assert (loaded.name, loaded.params, loaded.inner) == ("t", {"a": 1}, Box("c"))
