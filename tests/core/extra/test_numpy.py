"""numpy arrays as .npy: every shape, dtype and memory order loads back the same; no pickle."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import load_one, save_one
from labox_prefect.core.builtin import StorableValue
from labox_prefect.core.builtin.storages import MemoryStorage
from labox_prefect.core.errors import SerializationError
from labox_prefect.core.extra.numpy import NpyArraySerializer, npy_array_serializer
from labox_prefect.core.registry import Registry
from labox_prefect.core.serializer import SerializedData
from labox_prefect.core.testing import check_value_serializer
from labox_prefect.settings import CORE_REGISTRY_MODULES
from tests.core.extra import _strict as strict

RECORD = np.dtype([("name", "U8"), ("score", "<f4"), ("at", "M8[ms]"), ("xy", "<i2", (2,))])

ARRAYS = {
    "int64-vector": np.arange(10),
    "uint8-matrix": np.arange(12, dtype="uint8").reshape(3, 4),
    "fortran-order": np.asfortranarray(np.arange(6, dtype="float32").reshape(2, 3)),
    "scalar-0d": np.array(2.5),
    "empty-3d": np.empty((0, 2, 3), dtype="int16"),
    "big-endian": np.arange(4, dtype=">i4"),
    "float16-nan-negzero": np.array([np.nan, -0.0, np.inf], dtype="float16"),
    "complex128": np.array([1 + 2j, -0.0 - 1j]),
    "bool": np.array([[True], [False]]),
    "datetime64-s": np.array(["2020-01-01T00:00:01", "NaT"], dtype="M8[s]"),
    "timedelta64-us": np.array([1, -5], dtype="m8[us]"),
    "unicode": np.array(["é", "long text"], dtype="U9"),
    "bytes": np.array([b"a", b"\x00b"], dtype="S2"),
    "structured": np.array([("a", 1.5, 0, (1, 2)), ("b", -1.0, 10, (3, 4))], dtype=RECORD),
    "non-contiguous-slice": np.arange(20).reshape(4, 5)[::2, 1:4],
}


@pytest.mark.parametrize("value", ARRAYS.values(), ids=ARRAYS.keys())
def test_array_loads_back_equal_in_value_and_type(value: np.ndarray[Any, Any]) -> None:
    check_value_serializer(npy_array_serializer, value, equal=strict.same_array)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([1, "a"], dtype=object), r"dtype object, which holds Python objects"),
        (np.array([(1, None)], dtype=[("a", "i4"), ("b", "O")]), r"holds Python objects"),
        (np.ma.masked_array([1, 2], mask=[0, 1]), r"not numpy.ma.MaskedArray"),
        (np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), r"not numpy.rec.recarray"),
    ],
    ids=["object", "structured-with-object", "masked", "recarray"],
)
def test_array_that_npy_cannot_keep_without_pickle_is_refused(value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        npy_array_serializer.serialize_data(value)


def test_loading_never_unpickles_and_names_corrupted_bytes() -> None:
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"k": 1}], dtype=object), allow_pickle=True)
    archive = io.BytesIO()
    np.savez(archive, a=np.arange(3))
    data = npy_array_serializer.serialize_data(np.arange(10)).data
    cases = [
        (pickled.getvalue(), "cannot be loaded when allow_pickle=False"),
        (archive.getvalue(), "NpzFile, not one .npy array"),
        (data[:-3], "cannot read this content as a .npy array"),
        (b"", "cannot read this content as a .npy array"),
    ]
    for broken, message in cases:
        with pytest.raises(SerializationError, match=message):
            npy_array_serializer.deserialize_data(SerializedData(broken, "application/x-npy"))


def test_registry_infers_the_npy_serializer_and_the_integration_registers_it() -> None:
    registry = Registry(modules=["labox_prefect.core.extra.numpy"], default_storage=MemoryStorage())
    assert isinstance(registry.infer_serializer(np.ndarray), NpyArraySerializer)
    assert "labox_prefect.core.extra.numpy" in CORE_REGISTRY_MODULES
    everything = Registry(modules=CORE_REGISTRY_MODULES, default_storage=MemoryStorage())
    assert isinstance(everything.infer_serializer(np.ndarray), NpyArraySerializer)


async def test_save_one_and_load_one_round_trip_on_each_database(
    sessions: async_sessionmaker[AsyncSession], storage: MemoryStorage
) -> None:
    registry = Registry(modules=CORE_REGISTRY_MODULES, default_storage=storage)
    value = np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    assert strict.same_array(value, loaded.value)


SCALAR_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness=">"),
    hnp.floating_dtypes(endianness="<"),
    hnp.complex_number_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
    hnp.unicode_string_dtypes(max_len=4),
    hnp.byte_string_dtypes(max_len=4),
)


@settings(derandomize=True, deadline=None, max_examples=120, database=None)
@given(
    hnp.arrays(
        dtype=st.one_of(SCALAR_DTYPES, hnp.array_dtypes(SCALAR_DTYPES, max_size=3)),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    ),
    st.booleans(),
)
def test_any_array_loads_back_equal_in_value_and_type(
    value: np.ndarray[Any, Any], fortran: bool
) -> None:
    value = np.asfortranarray(value) if fortran else value
    check_value_serializer(npy_array_serializer, value, equal=strict.same_array)
