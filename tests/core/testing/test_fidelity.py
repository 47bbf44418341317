"""The fidelity harness: `same`, the round-trip checks, and every supported type through the store.

Each sample leaf nested in every pair of containers, and hypothesis-drawn values (fixed
seed), go through save_one/load_one on SQLite and PostgreSQL and must come back the same.
"""

from __future__ import annotations

import datetime
import decimal
import zoneinfo
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import Registry, new_loader, new_saver
from labox_prefect.core.builtin import StorableValue, values_serializer
from labox_prefect.core.testing import (
    LEAF_STRATEGIES,
    SAMPLE_LEAVES,
    Box,
    check_registry_round_trips,
    check_saved_round_trip,
    check_serializer_round_trip,
    difference,
    nested_samples,
    register_leaves,
    same,
    values,
)

Sessions = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((1, 2), [1, 2]),
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({1: "x"}, {1.0: "x"}),
        ({1, 2}, {1, 2.0}),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        (
            datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
        ),
        (Box((1,)), Box([1])),
        (pd.Timestamp("2024-01-01").as_unit("s"), pd.Timestamp("2024-01-01").as_unit("ns")),
    ],
)
def test_same_tells_apart_what_equality_confuses(a: Any, b: Any) -> None:
    assert not same(a, b)
    assert difference(a, b) is not None


def test_same_accepts_equal_values_of_equal_types() -> None:
    nan = float("nan")
    assert same({"a": [nan, (1, {2})], 1: pd.NaT}, {"a": [float("nan"), (1, {2})], 1: pd.NaT})
    assert same(Box(frozenset({nan})), Box(frozenset({float("nan")})))


def test_serializer_check_reports_refusals_and_silent_changes() -> None:
    assert check_serializer_round_trip(values_serializer, {"a": (1,)})
    assert not check_serializer_round_trip(values_serializer, object())


def test_strategies_take_new_leaf_types() -> None:
    register_leaves("test-only", st.just(Box("registered")))
    drawn: list[Any] = []
    try:

        @settings(derandomize=True, max_examples=20, database=None)
        @given(values(depth=1, leaf_names=["test-only"]))
        def collect(value: Any) -> None:
            drawn.append(value)

        collect()
    finally:
        del LEAF_STRATEGIES["test-only"]
    assert drawn
    assert all("registered" in repr(value) or not value for value in drawn)
    assert any(same(value, Box("registered")) for value in drawn)


def test_every_sample_type_nested_two_levels_deep_keeps_its_type_in_the_serializer() -> None:
    samples = nested_samples()
    assert len({name.rsplit("(", 1)[1] for name, _ in samples}) == len(SAMPLE_LEAVES)
    for name, value in samples:
        assert check_serializer_round_trip(values_serializer, value), name


async def test_every_sample_type_nested_two_levels_deep_round_trips_through_the_store(
    sessions: Sessions, registry: Registry
) -> None:
    samples = nested_samples()
    async with sessions() as session:
        async with new_saver(session=session, registry=registry) as saver:
            saved = [saver.save_soon(StorableValue(value)) for _, value in samples]
    async with sessions() as session:
        async with new_loader(session=session, registry=registry) as loader:
            loaded = [loader.load_soon(f.value, StorableValue) for f in saved]
    for (name, value), future in zip(samples, loaded, strict=True):
        problem = difference(value, future.value.value)
        assert problem is None, f"{name}: {problem}"


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(value=values(depth=2))
async def test_drawn_values_round_trip_through_the_store(
    sessions: Sessions, registry: Registry, value: Any
) -> None:
    assert await check_saved_round_trip(value, sessions=sessions, registry=registry)


@settings(derandomize=True, max_examples=600, deadline=None)
@given(value=values(depth=2))
def test_drawn_values_round_trip_through_the_serializer(value: Any) -> None:
    assert check_serializer_round_trip(values_serializer, value)


async def test_a_refused_value_commits_nothing(sessions: Sessions, registry: Registry) -> None:
    assert not await check_saved_round_trip(
        {"ok": 1, "bad": [object()]}, sessions=sessions, registry=registry
    )


def test_every_sample_leaf_round_trips_through_the_serializer_its_registry_infers(
    registry: Registry,
) -> None:
    leaves = [leaf for samples in SAMPLE_LEAVES.values() for leaf in samples]
    assert check_registry_round_trips(registry, leaves) == []
