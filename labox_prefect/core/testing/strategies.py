"""Hypothesis strategies for nested values of every type the typed value tree keeps.

``values()`` draws leaves from ``LEAF_STRATEGIES`` (a name -> strategy table you can extend
with ``register_leaves``, e.g. with DataFrames or arrays) and nests them in lists, tuples,
dicts (str keys, keys that look like tags, keys of other types), sets, frozensets and the
user-kind classes of labox_prefect.core.testing.samples, ``depth`` levels deep. Needs the
``hypothesis`` package (a test dependency).
"""

from __future__ import annotations

import datetime
import pathlib
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from labox_prefect.core.testing.samples import (
    Access,
    Box,
    Envelope,
    FrozenBox,
    Level,
    Pair,
    Shade,
)

_ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]).map(
    zoneinfo.ZoneInfo
)
_OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m))
)
_NUMPY_DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex128",
    "bool",
    "datetime64[ns]",
    "timedelta64[us]",
    "U3",
    "S2",
]


def _numpy_scalar(dtype: str) -> st.SearchStrategy[Any]:
    kind = np.dtype(dtype)
    return npst.from_dtype(kind).map(lambda x: np.array(x, dtype=kind)[()])


def _timestamps() -> st.SearchStrategy[Any]:
    naive = st.datetimes(
        min_value=datetime.datetime(1700, 1, 1), max_value=datetime.datetime(2250, 1, 1)
    )
    return st.builds(
        lambda when, nanos, tz, unit: _timestamp(when, nanos, tz, unit),
        naive,
        st.integers(min_value=0, max_value=999),
        st.none() | _ZONES | _OFFSETS,
        st.sampled_from(["s", "ms", "us", "ns"]),
    )


def _timestamp(when: datetime.datetime, nanos: int, tz: Any, unit: Any) -> Any:
    stamp = pd.Timestamp(when) + pd.Timedelta(nanos, unit="ns")
    if tz is not None:
        stamp = stamp.tz_localize("UTC").tz_convert(tz)
    return stamp.as_unit(unit)


LEAF_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "None": st.none(),
    "bool": st.booleans(),
    "int": st.integers() | st.integers(min_value=-(2**200), max_value=2**200),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "str": st.text(max_size=8) | st.sampled_from(["!", "!tuple", "!ref", '{"!x":1}']),
    "bytes": st.binary(max_size=16) | st.binary(min_size=5000, max_size=5000),
    "bytearray": st.binary(max_size=8).map(bytearray),
    "complex": st.complex_numbers(allow_nan=True, allow_infinity=True),
    "Decimal": st.decimals(allow_nan=True, allow_infinity=True, places=None),
    "date": st.dates(),
    "time": st.times(timezones=st.none() | _OFFSETS),
    "datetime": st.datetimes(timezones=st.none() | _ZONES | _OFFSETS, allow_imaginary=False),
    "timedelta": st.timedeltas(),
    "UUID": st.uuids(),
    "path": st.builds(
        lambda cls, parts: cls(*parts),
        st.sampled_from([pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.Path]),
        st.lists(st.sampled_from(["a", "b c", "é", ".."]), min_size=1, max_size=3),
    ),
    "Enum": st.sampled_from(
        [Shade.LIGHT, Shade.DARK, Access.READ, Access.READ | Access.WRITE, Level.LOW]
    ),
    "pandas.Timestamp": _timestamps(),
    "pandas.Timedelta": st.builds(
        lambda n, unit: pd.Timedelta(n, unit="ns").as_unit(unit),
        st.integers(min_value=-(2**62), max_value=2**62),
        st.sampled_from(["s", "ms", "us", "ns"]),
    ),
    "pandas.NaT": st.just(pd.NaT),
    "numpy": st.sampled_from(_NUMPY_DTYPES).flatmap(_numpy_scalar),
}
"""Leaves by type name; add yours with register_leaves."""


def register_leaves(name: str, strategy: st.SearchStrategy[Any]) -> None:
    """Add (or replace) a leaf type for ``values()``, e.g. DataFrames from another module."""
    LEAF_STRATEGIES[name] = strategy


def leaves(names: list[str] | None = None) -> st.SearchStrategy[Any]:
    """Any leaf of the named types (all registered ones by default)."""
    chosen = names if names is not None else sorted(LEAF_STRATEGIES)
    return st.one_of([LEAF_STRATEGIES[name] for name in chosen])


def _hashable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.filter(_is_hashable)


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One level of every container kind around ``children``."""
    keys = st.text(max_size=4) | st.sampled_from(["!", "!tuple", "!ref"])
    hashable = _hashable(children)
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(hashable, children, max_size=3),
        st.sets(hashable, max_size=3),
        st.frozensets(hashable, max_size=3),
        st.builds(Pair, children, children),
        st.builds(Box, children),
        st.builds(FrozenBox, children),
        st.builds(lambda c, e: Envelope(content=c, extra=e), children, children),
    )


def values(depth: int = 2, leaf_names: list[str] | None = None) -> st.SearchStrategy[Any]:
    """Values nested up to ``depth`` containers deep, with leaves of every registered type."""
    strategy = leaves(leaf_names)
    for _ in range(depth):
        strategy = strategy | containers(strategy)
    return strategy
