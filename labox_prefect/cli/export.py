"""``results get ID -o FILE``: a loaded result written in its natural file format.

- pandas DataFrame, pyarrow Table: Parquet (``DataFrame.to_parquet``, ``pyarrow.parquet``);
- numpy ndarray: ``.npy`` (``numpy.save`` with ``allow_pickle=False``);
- bytes: as is; str: UTF-8 text;
- pydantic model: its JSON (``model_dump_json``);
- any other value the typed value tree holds (dicts, lists, tuples, sets, dates, dataclasses,
  ...): the JSON of that tree (labox_prefect/core/builtin/serializers/VALUES.md), which is
  plain JSON where JSON keeps the value exactly, and tagged nodes (``{"!set": [...]}``)
  elsewhere.

Anything else (a bare Series, a dict holding a DataFrame, ...) is refused with a message
naming what can be exported. An existing file is
never replaced unless asked (``--force``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from labox_prefect.core import LaboxError
from labox_prefect.core.builtin import values_serializer


class ExportError(ValueError):
    """The value has no natural file format here."""


def export(value: Any, path: Path) -> str:
    """Write ``value`` to ``path``; return the format's name (``Parquet``, ``JSON``, ...)."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        value.to_parquet(path)
        return "Parquet"
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, pyarrow.Table):
        import pyarrow.parquet as pq

        pq.write_table(value, path)
        return "Parquet"
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
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
        path.write_text(value.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return "JSON"
    try:
        tree = bytes(values_serializer.serialize_data(value).data)
    except LaboxError:  # a part without a JSON form: the core's reason is about saving
        raise ExportError(
            f"A {type(value).__qualname__} cannot be exported as a file: results get -o writes "
            f"DataFrames and Arrow tables (Parquet), ndarrays (.npy), bytes, text, pydantic "
            f"models, and other values as JSON when every part of them has a JSON form (a "
            f"DataFrame, Series or array inside a dict, list or dataclass has none)."
        ) from None
    path.write_text(json.dumps(json.loads(tree), indent=2) + "\n", encoding="utf-8")
    # Inside a JSON string a quote is escaped, so '{"!' can only open a tagged node.
    return "JSON, typed value tree (VALUES.md)" if b'{"!' in tree else "JSON"


__all__ = ["ExportError", "export"]
