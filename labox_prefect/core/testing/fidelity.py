"""Round-trip fidelity checks: what is saved must load equal in value and type, or be refused.

``same(a, b)`` compares value AND type recursively (NaN equals NaN, -0.0 differs from 0.0,
dict key order counts, a tuple is not a list); ``difference(a, b)`` says where they first
differ. ``check_serializer_round_trip``, ``check_registry_round_trips`` and
``check_saved_round_trip`` run values through a serializer, the serializers a registry
infers, or ``save_one``/``load_one``, and pass only if each came back ``same`` or was
refused with a LaboxError before anything was written::

    from labox_prefect.core.testing import check_saved_round_trip

    async def test_my_values(sessions, registry):
        assert await check_saved_round_trip(my_value, sessions=sessions, registry=registry)
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import math
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from labox_prefect.core.builtin import StorableValue
from labox_prefect.core.database import ManifestRecord
from labox_prefect.core.errors import LaboxError, NotRegisteredError
from labox_prefect.core.loader import load_one
from labox_prefect.core.registry import Registry
from labox_prefect.core.saver import save_one
from labox_prefect.core.serializer import SerializedData, Serializer


def same(expected: Any, actual: Any) -> bool:
    """True if ``actual`` equals ``expected`` in value and type, all the way down."""
    return difference(expected, actual) is None


def difference(expected: Any, actual: Any, where: str = "value") -> str | None:
    """Where and how ``actual`` first differs from ``expected``; None if they are the same."""
    if type(expected) is not type(actual):
        return f"{where}: {type(actual).__qualname__} instead of {type(expected).__qualname__}"
    if expected is actual and not isinstance(expected, (dict, list, set)):
        return None  # singletons (None, pandas.NaT, Enum members) and shared immutables
    if isinstance(expected, dict):
        if len(expected) != len(actual):
            return f"{where}: keys {list(actual)!r} instead of {list(expected)!r}"
        for (key, value), (found, loaded) in zip(expected.items(), actual.items(), strict=True):
            if (problem := difference(key, found, f"{where} key {key!r}")) is not None:
                return problem
            if (problem := difference(value, loaded, f"{where}[{key!r}]")) is not None:
                return problem
        return None
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(actual):
            return f"{where}: {len(actual)} items instead of {len(expected)}"
        for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
            if (problem := difference(a, b, f"{where}[{i}]")) is not None:
                return problem
        return None
    if isinstance(expected, (set, frozenset)):
        if len(expected) != len(actual):
            return f"{where}: {len(actual)} members instead of {len(expected)}"
        for member in expected:
            if not any(same(member, m) for m in actual):
                return f"{where}: no member the same as {member!r}"
        return None
    if isinstance(expected, float):
        return None if _same_float(expected, actual) else f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, complex):
        same_parts = _same_float(expected.real, actual.real) and _same_float(
            expected.imag, actual.imag
        )
        return None if same_parts else f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, decimal.Decimal):
        return None if str(expected) == str(actual) else f"{where}: {actual!r} != {expected!r}"
    if type(expected).__module__.startswith("pandas"):  # before datetime: Timestamp is one
        return _difference_in_pandas(expected, actual, where)
    if isinstance(expected, (datetime.datetime, datetime.time)):
        return _difference_in_time(expected, actual, where)
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        for field in dataclasses.fields(expected):
            problem = difference(
                getattr(expected, field.name), getattr(actual, field.name), f"{where}.{field.name}"
            )
            if problem is not None:
                return problem
        return None
    if hasattr(expected, "__pydantic_fields_set__"):
        return _difference_in_models(expected, actual, where)
    if type(expected).__module__ == "numpy" and hasattr(expected, "shape"):
        return _difference_in_arrays(expected, actual, where)
    if callable(getattr(expected, "equals", None)):  # Arrow tables and the like
        return None if expected.equals(actual) else f"{where}: {actual!r} != {expected!r}"
    try:
        equal = bool(expected == actual)
    except (TypeError, ValueError):  # pandas.NaT, arrays
        equal = expected is actual
    if not equal and expected is not actual:
        return f"{where}: {actual!r} != {expected!r}"
    return None


def check_serializer_round_trip(serializer: Serializer[Any], value: Any) -> bool:
    """True if ``value`` came back the same, False if the serializer refused it on write.

    Raises AssertionError when it came back different or a non-Labox error escaped.
    """
    try:
        serialized = serializer.serialize_data(value)
    except LaboxError:
        return False
    loaded = serializer.deserialize_data(
        SerializedData(
            data=serialized.data,
            content_type=serialized.content_type,
            content_encoding=serialized.content_encoding,
            config=serialized.config,
        )
    )
    _assert_same(value, loaded, serializer.name)
    return True


def check_registry_round_trips(registry: Registry, values: Iterable[Any]) -> list[Any]:
    """Run each value through the serializer ``registry`` infers for its type.

    Returns the values that were refused (no serializer, or one that refused on write);
    raises AssertionError for any value that came back different.
    """
    refused = []
    for value in values:
        try:
            serializer = registry.infer_serializer(type(value))
        except NotRegisteredError:
            refused.append(value)
            continue
        if not check_serializer_round_trip(serializer, value):
            refused.append(value)
    return refused


async def check_saved_round_trip(
    value: Any,
    *,
    sessions: Callable[[], AsyncSession],
    registry: Registry,
) -> bool:
    """True if ``StorableValue(value)`` saved and loaded back the same, False if refused.

    A refusal must be a LaboxError raised by ``save_one`` with no manifest committed.
    Raises AssertionError otherwise.
    """
    async with sessions() as session:
        before = await session.scalar(select(func.count()).select_from(ManifestRecord))
        try:
            record = await save_one(StorableValue(value), session=session, registry=registry)
        except LaboxError:
            await session.rollback()
            after = await session.scalar(select(func.count()).select_from(ManifestRecord))
            assert after == before, "a refused value left a manifest behind"
            return False
    async with sessions() as session:
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    _assert_same(value, loaded.value, "save_one/load_one")
    return True


def _assert_same(expected: Any, actual: Any, by: str) -> None:
    problem = difference(expected, actual)
    if problem is not None:
        raise AssertionError(
            f"{by} changed a value silently: {problem}\n  saved:  {expected!r}\n  loaded: "
            f"{actual!r}"
        )


def _same_float(a: float, b: float) -> bool:
    if math.isnan(a):
        return math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _difference_in_time(
    expected: datetime.datetime | datetime.time, actual: Any, where: str
) -> str | None:
    if expected != actual or expected.isoformat() != actual.isoformat():
        return f"{where}: {actual!r} != {expected!r}"
    if type(expected.tzinfo) is not type(actual.tzinfo) or str(expected.tzinfo) != str(
        actual.tzinfo
    ):
        return f"{where}: time zone {actual.tzinfo!r} instead of {expected.tzinfo!r}"
    if expected.fold != actual.fold:
        return f"{where}: fold {actual.fold} instead of {expected.fold}"
    return None


def _difference_in_models(expected: Any, actual: Any, where: str) -> str | None:
    parts = (
        ("", expected.__dict__, actual.__dict__),
        (".__pydantic_extra__", expected.__pydantic_extra__, actual.__pydantic_extra__),
        (".__pydantic_private__", expected.__pydantic_private__, actual.__pydantic_private__),
    )
    for suffix, a, b in parts:
        if (problem := difference(a, b, f"{where}{suffix}")) is not None:
            return problem
    if expected.__pydantic_fields_set__ != actual.__pydantic_fields_set__:
        return f"{where}: fields set {actual.__pydantic_fields_set__} instead of " + str(
            expected.__pydantic_fields_set__
        )
    return None


def _difference_in_pandas(expected: Any, actual: Any, where: str) -> str | None:
    """Exact comparison of pandas objects: values, dtypes, index, names, categories."""
    import pandas as pd

    checks: dict[type[Any], Callable[..., None]] = {
        pd.DataFrame: pd.testing.assert_frame_equal,
        pd.Series: pd.testing.assert_series_equal,
        pd.api.extensions.ExtensionArray: pd.testing.assert_extension_array_equal,
    }
    for kind, check in checks.items():
        if isinstance(expected, kind):
            try:
                check(expected, actual, check_exact=True)
            except AssertionError as error:
                return f"{where}: {error}"
            return None
    if isinstance(expected, pd.Index):
        try:
            pd.testing.assert_index_equal(expected, actual, exact=True, check_exact=True)
        except AssertionError as error:
            return f"{where}: {error}"
        return None
    if hasattr(expected, "unit") and hasattr(expected, "asm8"):  # Timestamp, Timedelta
        if str(expected) != str(actual) or expected.unit != actual.unit:
            return f"{where}: {actual!r} ({actual.unit}) != {expected!r} ({expected.unit})"
        if type(getattr(expected, "tz", None)) is not type(getattr(actual, "tz", None)):
            return f"{where}: time zone {actual.tz!r} instead of {expected.tz!r}"
        return None
    if expected is actual or (
        callable(getattr(expected, "equals", None)) and expected.equals(actual)
    ):
        return None
    return f"{where}: {actual!r} != {expected!r}"


def _difference_in_arrays(expected: Any, actual: Any, where: str) -> str | None:
    import numpy as np

    if expected.ndim == 0:  # a numpy scalar: same dtype, same bytes (NaN payloads, -0.0)
        if expected.dtype != actual.dtype or expected.tobytes() != actual.tobytes():
            return f"{where}: {actual!r} ({actual.dtype}) != {expected!r} ({expected.dtype})"
        return None
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return (
            f"{where}: array {actual.dtype} {actual.shape} instead of {expected.dtype} "
            f"{expected.shape}"
        )
    try:
        equal = bool(np.array_equal(expected, actual, equal_nan=True))
    except TypeError:  # dtypes without NaN (str, object)
        equal = bool(np.array_equal(expected, actual))
    return None if equal else f"{where}: array values differ"
