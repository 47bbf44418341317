"""Strict comparisons of pandas, numpy and Arrow values: equal in value AND in type.

pandas' own ``assert_frame_equal`` (even with every check on) accepts an object column of
``numpy.str_`` for one of ``str``, None for NaN in object columns, and ignores ``attrs``,
index ``freq`` of columns and the type of names. These helpers check all of it and raise
AssertionError saying where the two differ; each returns True so it can be an ``equal=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def same_frame(expected: pd.DataFrame, actual: pd.DataFrame) -> bool:
    assert type(actual) is type(expected), f"{type(actual)} is not {type(expected)}"
    pd.testing.assert_frame_equal(
        expected,
        actual,
        check_dtype=True,
        check_index_type=True,
        check_column_type=True,
        check_categorical=True,
        check_exact=True,
        check_freq=True,
        check_flags=True,
    )
    same_index(expected.index, actual.index, "index")
    same_index(expected.columns, actual.columns, "columns")
    assert expected.attrs == actual.attrs, f"attrs {actual.attrs} instead of {expected.attrs}"
    for position in range(expected.shape[1]):
        where = f"column {expected.columns[position]!r}"
        same_values(expected.iloc[:, position].array, actual.iloc[:, position].array, where)
    return True


def same_frames(expected: Sequence[pd.DataFrame], actual: Sequence[pd.DataFrame]) -> bool:
    assert len(expected) == len(actual), f"{len(actual)} frames read back, not {len(expected)}"
    return all(map(same_frame, expected, actual))


def same_series(expected: pd.Series, actual: pd.Series) -> bool:
    assert type(actual) is type(expected), f"{type(actual)} is not {type(expected)}"
    pd.testing.assert_series_equal(
        expected, actual, check_dtype=True, check_index_type=True, check_exact=True
    )
    same_name(expected.name, actual.name, "the series name")
    assert expected.attrs == actual.attrs, f"attrs {actual.attrs} instead of {expected.attrs}"
    same_index(expected.index, actual.index, "index")
    same_values(expected.array, actual.array, "values")
    return True


def same_index(expected: pd.Index, actual: pd.Index, where: str = "index") -> bool:
    assert type(actual) is type(expected), f"{where}: {type(actual)} is not {type(expected)}"
    pd.testing.assert_index_equal(expected, actual, exact=True, check_exact=True)
    same_dtype(expected.dtype, actual.dtype, where)
    assert len(expected.names) == len(actual.names)
    for a, b in zip(expected.names, actual.names, strict=True):
        same_name(a, b, f"{where} name")
    if isinstance(expected, pd.RangeIndex):
        assert (expected.start, expected.stop, expected.step) == (
            actual.start,
            actual.stop,
            actual.step,
        ), f"{where}: {actual} instead of {expected}"
    elif isinstance(expected, pd.MultiIndex):
        assert isinstance(actual, pd.MultiIndex)
        for level, (a, b) in enumerate(zip(expected.levels, actual.levels, strict=True)):
            same_index(a, b, f"{where} level {level}")
        for a, b in zip(expected.codes, actual.codes, strict=True):
            assert np.array_equal(a, b), f"{where}: codes differ"
    else:
        same_values(expected.array, actual.array, where)
    if isinstance(expected, (pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex)):
        assert expected.freq == actual.freq, f"{where}: freq {actual.freq} not {expected.freq}"
    return True


def same_categorical(expected: pd.Categorical, actual: pd.Categorical) -> bool:
    assert type(actual) is type(expected)
    same_values(expected, actual, "categorical")
    return True


def same_dtype(expected: Any, actual: Any, where: str) -> None:
    problem = f"{where}: dtype {actual!r} instead of {expected!r}"
    assert type(actual) is type(expected), problem
    assert actual == expected, problem
    assert str(actual) == str(expected), problem
    if isinstance(expected, pd.CategoricalDtype):
        assert expected.ordered == actual.ordered, f"{where}: ordered differs"
        same_index(expected.categories, actual.categories, f"{where} categories")
    if isinstance(expected, pd.DatetimeTZDtype):
        assert type(expected.tz) is type(actual.tz), f"{where}: tz {actual.tz!r}"


def same_values(expected: Any, actual: Any, where: str) -> None:
    """Same dtype, and element by element the same type and value (NaN is NaN, None None)."""
    same_dtype(expected.dtype, actual.dtype, where)
    assert len(expected) == len(actual), f"{where}: {len(actual)} values, not {len(expected)}"
    if expected.dtype == object:
        for position, (a, b) in enumerate(zip(expected, actual, strict=True)):
            assert type(a) is type(b), f"{where}[{position}]: {b!r} instead of {a!r}"
            assert a == b or (a is not None and a != a and b != b), f"{where}[{position}]"
    if isinstance(expected, pd.Categorical):
        assert np.array_equal(expected.codes, actual.codes), f"{where}: codes differ"


def same_name(expected: Any, actual: Any, where: str) -> None:
    assert type(actual) is type(expected), f"{where}: {actual!r} instead of {expected!r}"
    if isinstance(expected, tuple):
        for a, b in zip(expected, actual, strict=True):
            same_name(a, b, where)
    elif expected == expected:  # NaN names are compared by type only
        assert expected == actual, f"{where}: {actual!r} instead of {expected!r}"


def same_array(expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any]) -> bool:
    assert type(actual) is type(expected) is np.ndarray, f"{type(actual)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype!r} not {expected.dtype!r}"
    assert actual.dtype.str == expected.dtype.str, f"byte order {actual.dtype.str}"
    assert actual.dtype.names == expected.dtype.names
    assert actual.shape == expected.shape, f"shape {actual.shape} instead of {expected.shape}"
    fortran = expected.flags.f_contiguous and not expected.flags.c_contiguous
    assert fortran == (actual.flags.f_contiguous and not actual.flags.c_contiguous)
    assert expected.tobytes() == actual.tobytes(), "the values differ"
    return True


def same_table(expected: pa.Table, actual: pa.Table) -> bool:
    assert type(actual) is type(expected)
    assert actual.schema.equals(expected.schema, check_metadata=True), (
        f"schema\n{actual.schema}\ninstead of\n{expected.schema}"
    )
    assert actual.equals(expected), "the values differ"
    return True


def same_batches(expected: Sequence[pa.RecordBatch], actual: Sequence[pa.RecordBatch]) -> bool:
    assert len(expected) == len(actual), f"{len(actual)} batches, not {len(expected)}"
    for number, (a, b) in enumerate(zip(expected, actual, strict=True), start=1):
        assert b.schema.equals(a.schema, check_metadata=True), (
            f"batch {number}: schema\n{b.schema}\ninstead of\n{a.schema}"
        )
        assert b.equals(a), f"batch {number}: the values differ"
    return True
