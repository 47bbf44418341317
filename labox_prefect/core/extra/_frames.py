"""pandas frames as Arrow tables that read back the same: equal in value and in type.

pyarrow's own round trip (``Table.from_pandas`` then ``to_pandas``) changes types quietly:
categoricals of numbers come back as numbers, object columns of str as ``str``, the
``python`` string storage as ``pyarrow``, ``datetime64[s]`` as ``[ms]`` (Parquet has no
seconds), a RangeIndex of column labels as an Index, and an index's ``freq`` is dropped.
So the values still go through ``Table.from_pandas`` (fast; its ``pandas`` metadata lets
other tools read the file as usual), and a *descriptor* records what the values alone do
not say; reading ignores pandas' metadata and rebuilds every column and index level from
its Arrow values and its recorded dtype. What no descriptor can describe faithfully is
refused when writing, with a SerializationError naming the column and the fix.

Descriptor (JSON, ``"version": 1``)::

    frame   {"version": 1, "dtypes": [dtype, ...], "index": index,
             "columns": encoded index (absent for an index alone), "attrs": {...},
             "allows_duplicate_labels": false (only when the frame's flag is off)}
    index   {"kind": "range", "start": int, "stop": int, "step": int, "name": name}
          | {"kind": "levels", "names": [name, ...], "dtypes": [dtype, ...], "freq": str|null,
             "multi": (a MultiIndex only) null, or its levels as encoded indexes when they
             are not what its values give back (unused or unsorted values)}
    dtype   {"kind": "named", "name": "Int64"}          pandas_dtype(name) gives it back
          | {"kind": "string", "storage": "python"|"pyarrow", "na": "nan"|"NA"}
          | {"kind": "categorical", "categories": encoded index, "ordered": bool}
          | {"kind": "object", "values": "str"|"bytes"|"none", "na": "none"|"nan"}
          | {"kind": "arrow"}                           pandas.ArrowDtype of the Arrow type
    name    ["none"] | ["str", s] | ["int", decimal text] | ["float", float.hex()]
          | ["bool", b] | ["tuple", [name, ...]] | ["numpy", dtype.str, name of .item()]
          | ["timestamp", UTC (or naive) ISO text, unit, time zone name or null]
    encoded index: base64 of an Arrow IPC stream of the index alone (a frame without columns)

Data columns are the table's first fields, in order; index levels (unless a RangeIndex) follow.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import pandas_dtype

from labox_prefect.core.errors import SerializationError

DESCRIPTOR_KEY = b"labox.pandas"
"""Schema metadata key of a frame's descriptor."""
FORMAT_VERSION = 1

_MASKED_DTYPES = (
    pd.Int8Dtype,
    pd.Int16Dtype,
    pd.Int32Dtype,
    pd.Int64Dtype,
    pd.UInt8Dtype,
    pd.UInt16Dtype,
    pd.UInt32Dtype,
    pd.UInt64Dtype,
    pd.Float32Dtype,
    pd.Float64Dtype,
    pd.BooleanDtype,
)
_NAMED_DTYPES = (*_MASKED_DTYPES, pd.DatetimeTZDtype, pd.PeriodDtype, pd.IntervalDtype)
_NUMPY_KINDS = "biufmM"  # bool, ints, uints, floats, timedelta64, datetime64
_NONE = type(None)


def encode_frame(frame: pd.DataFrame, context: str) -> tuple[pa.Table, dict[str, Any]]:
    """``frame`` as an Arrow table and its descriptor.

    ``context`` starts every error message (the serializer's name and which value).
    Raises SerializationError for what cannot be kept: duplicate column labels, dtypes
    Arrow cannot hold (complex, sparse), object columns holding anything but str or bytes
    (with None or NaN for missing), ``attrs`` that JSON cannot keep, names of other types
    than None, str, int, float, bool, numpy numbers, Timestamp and tuples of them, and
    subclasses of DataFrame.
    """
    if type(frame) is not pd.DataFrame:
        raise SerializationError(
            f"{context} is a {_qualified(type(frame))}, a subclass of pandas.DataFrame that "
            f"would load back as a plain DataFrame; pass pandas.DataFrame(value)."
        )
    columns = frame.columns
    if columns.has_duplicates:
        duplicates = list(dict.fromkeys(columns[columns.duplicated()]))
        raise SerializationError(
            f"{context} has duplicate column labels {duplicates}; Parquet and Arrow need "
            f"unique column names: rename them (e.g. df.columns = [...])."
        )
    texts = [str(label) for label in columns]
    if len(set(texts)) != len(texts):
        raise SerializationError(
            f"{context} has column labels that read the same as text ({_clashes(columns)}); "
            f"Arrow names a column by its label as text: rename one of them."
        )
    if not _json_faithful(frame.attrs):
        raise SerializationError(
            f"{context} has attrs {frame.attrs!r} that JSON cannot keep exactly (only dicts "
            f"with str keys, lists, str, int, finite float, bool and None); clear them "
            f"(df.attrs = {{}}) or make them so."
        )
    dtypes = [
        describe_dtype(frame.iloc[:, i], f"{context}, column {label!r}")
        for i, label in enumerate(columns)
    ]
    index, index_spec = frame.index, _describe_index(frame.index, f"{context}, index")
    descriptor: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "dtypes": dtypes,
        "index": index_spec,
        "columns": encode_index(columns, f"{context}, column labels"),
    }
    if frame.attrs:
        descriptor["attrs"] = frame.attrs
    if not frame.flags.allows_duplicate_labels:
        descriptor["allows_duplicate_labels"] = False
    is_range = index_spec["kind"] == "range"
    # pyarrow is given labels and names as text (it would warn, and store them as text);
    # the descriptor keeps the real ones.
    if not all(type(label) is str for label in columns) or isinstance(columns, pd.MultiIndex):
        frame = frame.set_axis(pd.Index(texts, dtype=object), axis=1)
    safe = _field_safe(index, texts)
    frame = frame if safe is index else frame.set_axis(safe, axis=0)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=None if is_range else True)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise SerializationError(
            f"{context} cannot be converted to Arrow: {error}. Give each column a single "
            f"type (e.g. df[column].astype(...))."
        ) from None
    expected = len(columns) + (0 if is_range else index.nlevels)
    if table.num_columns != expected:  # pragma: no cover - pyarrow's layout changed
        raise SerializationError(
            f"{context}: Arrow made {table.num_columns} fields, not {expected}: the index "
            f"and column layout of pyarrow changed; report this."
        )
    return table, descriptor


def decode_frame(table: pa.Table, descriptor: Any, context: str) -> pd.DataFrame:
    """The DataFrame that `encode_frame` turned into ``table`` and ``descriptor``."""
    try:
        return _decode_frame(table, descriptor)
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
        pa.ArrowException,
    ) as error:
        raise SerializationError(
            f"{context} cannot be read back as the frame it was written from ({error!r}); "
            f"the content is corrupted or was not written by this serializer."
        ) from None


def read_descriptor(metadata: dict[bytes, bytes] | None, context: str) -> Any:
    """The descriptor stored in schema ``metadata``, or None for content written before it."""
    raw = (metadata or {}).get(DESCRIPTOR_KEY)
    try:
        return None if raw is None else json.loads(raw)
    except ValueError as error:
        raise SerializationError(
            f"{context} cannot read the description of this content ({error}); the content "
            f"is corrupted or was not written by this serializer."
        ) from None


def with_descriptor(table: pa.Table, descriptor: dict[str, Any]) -> pa.Table:
    """``table`` with ``descriptor`` added to its schema metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[DESCRIPTOR_KEY] = json.dumps(descriptor).encode()
    return table.replace_schema_metadata(metadata)


def encode_index(index: pd.Index, context: str) -> str:
    """``index`` alone (values, dtype, names, freq) as base64 text of an Arrow IPC stream."""
    table = index_to_table(index, context)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def decode_index(text: str) -> pd.Index:
    """The Index that `encode_index` wrote as ``text``."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"an encoded index is not base64 ({error})") from None
    table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    return _decode_frame(table, json.loads(table.schema.metadata[DESCRIPTOR_KEY])).index


def index_to_table(index: pd.Index, context: str) -> pa.Table:
    """``index`` alone as an Arrow table with its descriptor (a frame without columns)."""
    if not _is_pandas_class(type(index)):
        raise SerializationError(
            f"{context} is a {_qualified(type(index))}, not one of pandas' own Index "
            f"classes; pass pandas.Index(value)."
        )
    spec = _describe_index(index, context)
    is_range = spec["kind"] == "range"
    frame = pd.DataFrame(index=_field_safe(index, []))
    try:
        table = pa.Table.from_pandas(frame, preserve_index=not is_range)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise SerializationError(
            f"{context} cannot be converted to Arrow: {error}. Give it a single type "
            f"(e.g. index.astype(...))."
        ) from None
    descriptor = {"version": FORMAT_VERSION, "dtypes": [], "index": spec}
    return table.replace_schema_metadata({DESCRIPTOR_KEY: json.dumps(descriptor)})


# --- dtypes --------------------------------------------------------------------------------


def describe_dtype(values: pd.Series | pd.Index, context: str) -> dict[str, Any]:
    """The descriptor of ``values``' dtype; raises SerializationError if it cannot be kept."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        kind = describe_dtype(categories, f"{context}, categories")["kind"]
        if kind not in ("named", "string", "object") or isinstance(
            categories.dtype, (pd.PeriodDtype, pd.IntervalDtype, *_MASKED_DTYPES)
        ):
            raise SerializationError(
                f"{context} is a categorical with {categories.dtype} categories, which this "
                f"format does not keep; use categories of numbers, str or datetimes, or "
                f"store the column as {categories.dtype} (.astype({str(categories.dtype)!r}))."
            )
        return {
            "kind": "categorical",
            "categories": encode_index(categories, f"{context}, categories"),
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, pd.StringDtype):
        return {"kind": "string", "storage": dtype.storage, "na": _string_na(dtype)}
    if isinstance(dtype, pd.ArrowDtype):
        if not _keeps_arrow_type(dtype.pyarrow_dtype):
            raise _unsupported(context, dtype, "a numpy or pandas dtype (.astype(...))")
        return {"kind": "arrow"}
    if isinstance(dtype, np.dtype) and dtype == np.dtype(object):
        return _describe_objects(np.asarray(values, dtype=object), context)
    if isinstance(dtype, np.dtype):
        if dtype.kind not in _NUMPY_KINDS:
            fix = "two float columns (.real and .imag)" if dtype.kind == "c" else "another dtype"
            raise _unsupported(context, dtype, fix)
        if not dtype.isnative:
            raise _unsupported(context, dtype, f"native byte order (.astype({dtype.name!r}))")
    elif not isinstance(dtype, _NAMED_DTYPES):
        raise _unsupported(context, dtype, "a numpy or pandas dtype (.astype(...))")
    name = str(dtype)
    try:
        restored = pandas_dtype(name)
    except (TypeError, ValueError):
        restored = None
    if (
        restored is None
        or restored != dtype
        or str(restored) != name
        or type(restored) is not type(dtype)
        or type(getattr(restored, "tz", None)) is not type(getattr(dtype, "tz", None))
    ):
        raise _unsupported(
            context,
            dtype,
            "a dtype its name gives back exactly (a time zone by its IANA name: "
            ".dt.tz_convert('Europe/Paris'))",
        )
    return {"kind": "named", "name": name}


def _describe_objects(values: np.ndarray[Any, Any], context: str) -> dict[str, Any]:
    kinds = set(map(type, values))
    if float in kinds and not all(np.isnan(v) for v in values if type(v) is float):
        kinds.add(_NumberMark)
    present = kinds - {_NONE, float}
    if _NONE in kinds and float in kinds:
        raise SerializationError(
            f"{context} marks missing values with both None and NaN, which load back as one "
            f"of them; use one marker (e.g. .where(column.notna(), None))."
        )
    if present - {str} and present - {bytes}:
        found = ", ".join(sorted("float" if k is _NumberMark else _qualified(k) for k in present))
        raise SerializationError(
            f"{context} is an object column holding {found}; Arrow keeps an "
            f"object column only if all its values are str, or all bytes (None or NaN for "
            f"missing). Give it a dtype (.astype('int64'), .astype('str'), "
            f"pd.to_datetime(...)) or store the values another way."
        )
    return {
        "kind": "object",
        "values": "str" if present == {str} else "bytes" if present else "none",
        "na": "nan" if float in kinds else "none",
    }


class _NumberMark:
    """Stands for a float that is not NaN in an object column (a value, not a marker)."""


def decode_values(column: pa.ChunkedArray, spec: Any) -> Any:
    """The numpy array or pandas extension array of ``spec``'s dtype, from Arrow ``column``."""
    kind = spec["kind"]
    if len(column) == 0:  # a stream's empty frame is stored in the stream's types
        return _empty(column, spec)
    if kind == "named":
        dtype = pandas_dtype(spec["name"])
        if isinstance(dtype, np.dtype):
            if column.null_count and dtype.kind in "biu":
                raise ValueError(f"a {dtype} column has missing values")
            array = column.to_numpy()
            return array if array.dtype == dtype else array.astype(dtype)
        values = _from_arrow(dtype, column)
        return values if values.dtype == dtype else values.astype(dtype)
    if kind == "string":
        na = np.nan if spec["na"] == "nan" else pd.NA
        string = pd.StringDtype(spec["storage"], na_value=na)
        if pa.types.is_null(column.type):
            column = column.cast(pa.large_string())
        return _from_arrow(string, column)
    if kind == "categorical":
        categories = decode_index(spec["categories"])
        dtype = pd.CategoricalDtype(categories, ordered=bool(spec["ordered"]))
        return pd.Categorical.from_codes(_codes(column, categories), dtype=dtype)
    if kind == "object":
        return _decode_objects(column, spec)
    if kind == "arrow":
        return _from_arrow(pd.ArrowDtype(column.type), column)
    raise ValueError(f"unknown dtype kind {kind!r}")


def _empty(column: pa.ChunkedArray, spec: Any) -> Any:
    kind = spec["kind"]
    if kind == "named":
        dtype = pandas_dtype(spec["name"])
        return np.empty(0, dtype) if isinstance(dtype, np.dtype) else _no_values(dtype)
    if kind == "string":
        na = np.nan if spec["na"] == "nan" else pd.NA
        return _no_values(pd.StringDtype(spec["storage"], na_value=na))
    if kind == "categorical":
        dtype = pd.CategoricalDtype(decode_index(spec["categories"]), bool(spec["ordered"]))
        return pd.Categorical.from_codes([], dtype=dtype)
    if kind == "object":
        return np.empty(0, dtype=object)
    if kind == "arrow":
        return _no_values(pd.ArrowDtype(column.type))
    raise ValueError(f"unknown dtype kind {kind!r}")


def _from_arrow(dtype: Any, column: pa.ChunkedArray) -> Any:
    """pandas' own conversion of an extension dtype (``ExtensionDtype.__from_arrow__``)."""
    return dtype.__from_arrow__(column)


def _no_values(dtype: Any) -> Any:
    return pd.Series([], dtype=dtype).array


def _decode_objects(column: pa.ChunkedArray, spec: Any) -> np.ndarray[Any, Any]:
    marker = np.nan if spec["na"] == "nan" else None
    if spec["values"] == "none":
        if column.null_count != len(column):
            raise ValueError("an all-missing object column has values")
        return np.full(len(column), marker, dtype=object)
    expected = pa.types.is_string if spec["values"] == "str" else pa.types.is_binary
    column = column.cast(pa.string() if spec["values"] == "str" else pa.binary())
    if not expected(column.type):  # pragma: no cover - the cast above guarantees it
        raise ValueError(f"an object column of {spec['values']} is stored as {column.type}")
    array: np.ndarray[Any, Any] = column.to_numpy()
    if marker is not None and column.null_count:
        array[column.is_null().to_numpy()] = marker
    return array


def _codes(column: pa.ChunkedArray, categories: pd.Index) -> np.ndarray[Any, Any]:
    """Each value's position in ``categories`` (-1 where missing), chunk by chunk."""
    value_set = pa.Array.from_pandas(categories)
    pieces = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            dictionary = chunk.dictionary
            expected = value_set.cast(dictionary.type)
            if dictionary.equals(expected):
                codes = chunk.indices  # as written: the dictionary is the categories
            else:
                codes = pc.index_in(dictionary, value_set=expected).take(chunk.indices)
        else:
            codes = pc.index_in(chunk, value_set=value_set.cast(chunk.type))
        pieces.append(codes.cast(pa.int32()))
    found = pa.chunked_array(pieces, type=pa.int32())
    if found.null_count != column.null_count:
        raise ValueError("a categorical column holds values that are not among its categories")
    return pc.fill_null(found, -1).to_numpy()  # type: ignore[no-any-return]


# --- index -------------------------------------------------------------------------------


def _describe_index(index: pd.Index, context: str) -> dict[str, Any]:
    if type(index) is pd.RangeIndex:
        return {
            "kind": "range",
            "start": index.start,
            "stop": index.stop,
            "step": index.step,
            "name": encode_name(index.name, f"{context} name"),
        }
    if not _is_pandas_class(type(index)):
        raise SerializationError(
            f"{context} is a {_qualified(type(index))}, not one of pandas' own Index "
            f"classes; convert it (pandas.Index(value))."
        )
    # get_level_values(i) takes a level *name* first: name the levels by position to ask.
    by_position = index.set_names(list(range(index.nlevels)))
    levels = [by_position.get_level_values(i) for i in range(index.nlevels)]
    spec: dict[str, Any] = {"kind": "levels"}
    if isinstance(index, pd.MultiIndex):
        # Levels may hold values no row uses, in any order (a slice keeps them): then they
        # are kept as they are, else they are what the values give back.
        rebuilt = pd.MultiIndex.from_arrays(levels)
        exact = all(
            a.equals(b) and a.dtype == b.dtype
            for a, b in zip(index.levels, rebuilt.levels, strict=True)
        )
        spec["multi"] = (
            None
            if exact
            else [
                encode_index(level.rename(None), f"{context} level {i}")
                for i, level in enumerate(index.levels)
            ]
        )
    freq = None
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)) and index.freq is not None:
        freq = index.freqstr
        if pd.tseries.frequencies.to_offset(freq) != index.freq:
            raise SerializationError(
                f"{context} has the frequency {index.freq!r}, which its name {freq!r} does "
                f"not give back; drop it (index.freq = None) or use a standard frequency."
            )
    return {
        **spec,
        "names": [encode_name(name, f"{context} name") for name in index.names],
        "dtypes": [
            describe_dtype(level, f"{context} level {i}" if index.nlevels > 1 else context)
            for i, level in enumerate(levels)
        ],
        "freq": freq,
    }


def _decode_index(table: pa.Table, first: int, spec: Any) -> pd.Index:
    if spec["kind"] == "range":
        name = decode_name(spec["name"])
        return pd.RangeIndex(int(spec["start"]), int(spec["stop"]), int(spec["step"]), name=name)
    if spec["kind"] != "levels":
        raise ValueError(f"unknown index kind {spec['kind']!r}")
    names = [decode_name(name) for name in spec["names"]]
    arrays = [
        decode_values(table.column(first + i), dtype) for i, dtype in enumerate(spec["dtypes"])
    ]
    if "multi" in spec:
        if spec["multi"] is None:
            return pd.MultiIndex.from_arrays(arrays, names=names)
        kept: list[Any] = [decode_index(level) for level in spec["multi"]]
        codes: list[Any] = [
            level.get_indexer(values) for level, values in zip(kept, arrays, strict=True)
        ]
        return pd.MultiIndex(levels=kept, codes=codes, names=names)
    index = pd.Index(arrays[0], dtype=arrays[0].dtype, name=names[0], copy=False)
    if spec["freq"] is not None:
        if not isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
            raise ValueError(f"a frequency is recorded for a {type(index).__name__}")
        index = type(index)(index, freq=spec["freq"])
    return index  # type: ignore[no-any-return]


def _decode_frame(table: pa.Table, descriptor: Any) -> pd.DataFrame:
    if descriptor.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown descriptor version {descriptor.get('version')!r}")
    dtypes = descriptor["dtypes"]
    index_spec = descriptor["index"]
    levels = 0 if index_spec["kind"] == "range" else len(index_spec["dtypes"])
    if table.num_columns != len(dtypes) + levels:
        raise ValueError(f"{table.num_columns} fields, not {len(dtypes) + levels}")
    index = _decode_index(table, len(dtypes), index_spec)
    if len(index) != table.num_rows and (table.num_columns or index_spec["kind"] != "range"):
        raise ValueError(f"{table.num_rows} rows for an index of {len(index)}")
    arrays: dict[int, Any] = {}
    for i, spec in enumerate(dtypes):
        values = decode_values(table.column(i), spec)
        if spec["kind"] == "object":  # a bare object ndarray would be inferred as str
            values = pd.Series(values, index=index, dtype=object, copy=False)
        arrays[i] = values
    frame = pd.DataFrame(arrays, index=index, copy=False)
    if "columns" in descriptor:
        frame.columns = decode_index(descriptor["columns"])
    frame.attrs = descriptor.get("attrs", {})
    if descriptor.get("allows_duplicate_labels") is False:
        frame = frame.set_flags(allows_duplicate_labels=False)
    return frame


# --- names -------------------------------------------------------------------------------


def encode_name(name: Hashable, context: str) -> list[Any]:
    """A label or index name as typed JSON; raises SerializationError for other types."""
    kind = type(name)
    if name is None:
        return ["none"]
    if kind is str:
        return ["str", name]
    if kind is bool:
        return ["bool", name]
    if kind is int:
        return ["int", str(name)]
    if kind is float:
        return ["float", float.hex(name)]  # type: ignore[arg-type]
    if kind is tuple:
        return ["tuple", [encode_name(part, context) for part in name]]  # type: ignore[attr-defined]
    if isinstance(name, (np.integer, np.floating, np.bool_)):  # labels read from an Index
        return ["numpy", name.dtype.str, encode_name(name.item(), context)]
    if kind is pd.Timestamp:
        stamp: pd.Timestamp = name  # type: ignore[assignment]
        utc = stamp if stamp.tz is None else stamp.tz_convert("UTC").tz_localize(None)
        encoded = [
            "timestamp",
            utc.isoformat(),
            stamp.unit,
            None if stamp.tz is None else str(stamp.tz),
        ]
        restored = decode_name(encoded)
        if restored == stamp and str(getattr(restored, "tz", None)) == str(stamp.tz):
            return encoded
    raise SerializationError(
        f"{context} {name!r} is a {_qualified(kind)}; names are kept for None, str, int, "
        f"float, bool, numpy numbers, pandas.Timestamp and tuples of them: rename it "
        f"(e.g. with str(name))."
    )


def decode_name(encoded: Any) -> Hashable:
    """The name that `encode_name` wrote."""
    tag = encoded[0]
    if tag == "none":
        return None
    if tag == "str" and isinstance(encoded[1], str):
        return encoded[1]
    if tag == "bool" and isinstance(encoded[1], bool):
        return encoded[1]
    if tag == "int":
        return int(encoded[1])
    if tag == "float":
        return float.fromhex(encoded[1])
    if tag == "tuple":
        return tuple(decode_name(part) for part in encoded[1])
    if tag == "numpy":
        return np.dtype(encoded[1]).type(decode_name(encoded[2]))  # type: ignore[no-any-return]
    if tag == "timestamp":
        stamp = pd.Timestamp(encoded[1]).as_unit(encoded[2])
        return stamp if encoded[3] is None else stamp.tz_localize("UTC").tz_convert(encoded[3])
    raise ValueError(f"unknown name {encoded!r}")


# --- helpers -----------------------------------------------------------------------------


def _field_safe(index: pd.Index, taken: list[str]) -> pd.Index:
    """``index`` with level names that pyarrow takes as they are (text).

    pyarrow names an index level's field by the level's name as text, and takes a level's
    values by that name: two levels named alike as text (1 and None both give "1"), or a
    level named like a column, would be stored wrong. Such levels are renamed
    ``__index_level_<i>__`` (with "_" added until unique; the descriptor keeps the real
    names).
    """
    if isinstance(index, pd.RangeIndex):  # no field: a name that is not text is dropped
        return index if index.name is None or type(index.name) is str else index.rename(None)
    names = list(index.names)
    seen = set(taken)
    safe = []
    for position, name in enumerate(names):
        if type(name) is not str or name in seen:
            name = f"__index_level_{position}__"
        while name in seen:
            name += "_"
        seen.add(name)
        safe.append(name)
    return index if safe == names else index.set_names(safe)


def _string_na(dtype: pd.StringDtype) -> str:
    return "NA" if dtype.na_value is pd.NA else "nan"


def _keeps_arrow_type(arrow_type: pa.DataType) -> bool:
    """Arrow types that Parquet and Arrow IPC both give back unchanged."""
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
    )


def _json_faithful(value: Any) -> bool:
    """True if ``json.loads(json.dumps(value))`` gives back the same value and types."""
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return True
    if kind is float:
        return bool(np.isfinite(value))
    if kind is list:
        return all(map(_json_faithful, value))
    if kind is dict:
        return all(type(k) is str and _json_faithful(v) for k, v in value.items())
    return False


def _unsupported(context: str, dtype: Any, fix: str) -> SerializationError:
    return SerializationError(
        f"{context} has the dtype {dtype} ({type(dtype).__name__}), which this format does "
        f"not keep faithfully; convert it to {fix}."
    )


def _clashes(columns: pd.Index) -> str:
    seen: dict[str, Any] = {}
    for label in columns:
        if str(label) in seen:
            return f"{seen[str(label)]!r} and {label!r}"
        seen[str(label)] = label
    return ""  # pragma: no cover - only called when two labels clash


def _is_pandas_class(kind: type[Any]) -> bool:
    return kind.__module__ == "pandas" or kind.__module__.startswith("pandas.")


def _qualified(kind: type[Any]) -> str:
    return (
        kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    )
