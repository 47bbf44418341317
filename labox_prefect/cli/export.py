"""``results get ID -o FILE``: a loaded result written in its natural file format.

- pandas DataFrame, pyarrow Table: Parquet (``DataFrame.to_parquet``, ``pyarrow.parquet``);
- pandas Series: Parquet, one column named after the Series (``value`` when it has none),
  its index kept as a DataFrame's is (``pandas.read_parquet(FILE).squeeze("columns")``
  reads it back);
- numpy ndarray: ``.npy`` (``numpy.save`` with ``allow_pickle=False``);
- bytes: as is; str: UTF-8 text;
- pydantic model: its JSON (``model_dump_json``);
- any other value the typed value tree holds (dicts, lists, tuples, sets, dates, dataclasses,
  ...): the JSON of that tree (labox_prefect/core/builtin/serializers/VALUES.md), which is
  plain JSON where JSON keeps the value exactly, and tagged nodes (``{"!set": [...]}``)
  elsewhere.

An export is a convenience, not a record: one value, one file, in a format any tool reads.
A dict, list, dataclass or model holding frames (or arrays) is refused, naming each of them
(``ExportError.parts``) so the command can say how to write each one: no folder of files
stands for the whole value, whose other items and types only the record keeps. Anything
else with no file format is refused with a message naming what can be exported. An existing
file is never replaced unless asked (``--force``), and a file name whose suffix names
another data format (``x.csv`` for a frame written as Parquet) is refused before writing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labox_prefect.core import LaboxError
from labox_prefect.core.builtin import values_serializer
from labox_prefect.preview import fields_of

SERIES_COLUMN = "value"
"""The column of an exported Series that has no name."""

_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_WRITE = {
    "DataFrame": "{part}.to_parquet({file!r})",
    "Series": "{part}.to_frame().to_parquet({file!r})",
    "Table": "__import__('pyarrow.parquet').parquet.write_table({part}, {file!r})",
    "ndarray": "__import__('numpy').save({file!r}, {part}, allow_pickle=False)",
}
_SUFFIX = {"DataFrame": "parquet", "Series": "parquet", "Table": "parquet", "ndarray": "npy"}


@dataclass(frozen=True)
class Part:
    """A value inside the result that has a file format of its own (a frame, an array)."""

    path: str
    """Where it is in the value, in Python: ``['frame']``, ``[0]``, ``.frame``."""
    kind: str
    """Its class name: ``DataFrame``, ``Series``, ``Table`` or ``ndarray``."""
    file_name: str
    """A file to write it to: its key and the format's suffix (``frame.parquet``)."""

    def python(self, value: str) -> str:
        """One Python statement writing the part of ``value`` (an expression) to its file."""
        return _WRITE[self.kind].format(part=f"{value}{self.path}", file=self.file_name)


class FileNameError(ValueError):
    """The file's suffix names another data format than the one the value is written in."""


_FORMAT_SUFFIXES = {"Parquet": (".parquet", ".pq"), "NumPy .npy": (".npy",), "JSON": (".json",)}
_DATA_SUFFIXES = frozenset(
    {
        *(suffix for suffixes in _FORMAT_SUFFIXES.values() for suffix in suffixes),
        *(".arrow", ".csv", ".feather", ".h5", ".hdf5", ".ipc", ".jsonl", ".npz"),
        *(".pickle", ".pkl", ".tsv", ".xls", ".xlsx"),
    }
)


def _check_name(path: Path, kind: str) -> None:
    """Refuse a file name whose suffix names another data format than ``kind`` (``x.csv``
    for Parquet); no suffix, or one not in ``_DATA_SUFFIXES``, is written as asked."""
    suffixes = _FORMAT_SUFFIXES[kind]
    suffix = path.suffix.lower()
    if suffix in _DATA_SUFFIXES and suffix not in suffixes:
        raise FileNameError(
            f"{path.name} names a {suffix[1:]} file, but results get writes this value as "
            f"{kind}: name it {path.stem}{suffixes[0]}, or load the value in Python "
            f"(ResultRef.load()) to write another format."
        )


class ExportError(ValueError):
    """The value has no natural file format here; ``parts`` are the frames or arrays it holds
    (each exportable alone), if any."""

    def __init__(self, message: str, parts: tuple[Part, ...] = ()) -> None:
        super().__init__(message)
        self.parts = parts


def export(value: Any, path: Path) -> str:
    """Write ``value`` to ``path``; return the format's name (``Parquet``, ``JSON``, ...).

    Raises ExportError when the value has no file format here, FileNameError (before
    writing) when ``path``'s suffix names another format than the one it is written in.
    """
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        _check_name(path, "Parquet")
        value.to_parquet(path)
        return "Parquet"
    if pandas is not None and isinstance(value, pandas.Series):
        column = SERIES_COLUMN if value.name is None else str(value.name)
        _check_name(path, "Parquet")
        value.to_frame(name=column).to_parquet(path)
        return f"Parquet, one column {column!r}"
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, pyarrow.Table):
        import pyarrow.parquet as pq

        _check_name(path, "Parquet")
        pq.write_table(value, path)
        return "Parquet"
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        _check_name(path, "NumPy .npy")
        with path.open("wb") as file:
            numpy.save(file, value, allow_pickle=False)
        return "NumPy .npy"
    if isinstance(value, bytes | bytearray | memoryview):
        path.write_bytes(bytes(value))
        return "bytes"
    if isinstance(value, str):
        path.write_text(value, encoding="utf-8")
        return "text"
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        _check_name(path, "JSON")
        path.write_text(value.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return "JSON"
    try:
        tree = bytes(values_serializer.serialize_data(value).data)
    except LaboxError:  # a part without a JSON form: the core's reason is about saving
        raise _no_file_format(value) from None
    _check_name(path, "JSON")
    path.write_text(json.dumps(json.loads(tree), indent=2) + "\n", encoding="utf-8")
    # Inside a JSON string a quote is escaped, so '{"!' can only open a tagged node.
    return "JSON, typed value tree (VALUES.md)" if b'{"!' in tree else "JSON"


def _no_file_format(value: Any) -> ExportError:
    name = type(value).__qualname__
    parts = tuple(_parts(value))
    if parts:
        held = ", ".join(f"a {part.kind} at value{part.path}" for part in parts)
        return ExportError(
            f"A {name} holding {held} is not one file: results get -o writes one value per "
            f"file, and only the record keeps the whole {name}.",
            parts,
        )
    return ExportError(
        f"A {name} cannot be exported as a file: results get -o writes DataFrames, Series "
        f"and Arrow tables (Parquet), ndarrays (.npy), bytes, text, pydantic models, and other "
        f"values as JSON when every part of them has a JSON form (a DataFrame, Series or "
        f"array deeper inside a dict, list or dataclass has none)."
    )


def _parts(value: Any) -> list[Part]:
    """The frames and arrays among the value's own items (not deeper)."""
    if isinstance(value, Mapping):
        items = [(f"[{key!r}]", key, item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"[{index}]", f"item{index}", item) for index, item in enumerate(value)]
    else:  # a dataclass or pydantic model (its first fields)
        items = [(f".{name}", name, item) for name, item in fields_of(value) or []]
    parts = []
    for position, (where, key, item) in enumerate(items):
        kind = _file_kind(item)
        if kind is not None:
            stem = key if isinstance(key, str) and _FILE_NAME.fullmatch(key) else f"part{position}"
            parts.append(Part(where, kind, f"{stem}.{_SUFFIX[kind]}"))
    return parts


def _file_kind(value: Any) -> str | None:
    """The class name of a value ``export`` writes in a table or array format, else None."""
    for module, names in (("pandas", ("DataFrame", "Series")), ("pyarrow", ("Table",))):
        library = sys.modules.get(module)
        for name in names:
            if library is not None and isinstance(value, getattr(library, name)):
                return name
    numpy = sys.modules.get("numpy")
    return "ndarray" if numpy is not None and isinstance(value, numpy.ndarray) else None


__all__ = ["SERIES_COLUMN", "ExportError", "Part", "export"]
