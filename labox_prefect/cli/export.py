"""``results get ID -o FILE``: a loaded result written in its natural file format.

- pandas DataFrame, pyarrow Table: Parquet (``DataFrame.to_parquet``, ``pyarrow.parquet``);
- numpy ndarray: ``.npy`` (``numpy.save`` with ``allow_pickle=False``);
- bytes: as is; str: UTF-8 text;
- pydantic model: its JSON (``model_dump_json``); JSON data (dict, list, numbers, ...): JSON.

Anything else is refused with a message naming what can be exported. An existing file is
never replaced unless asked (``--force``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


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
        path.write_text(value.model_dump_json(indent=2), encoding="utf-8")
        return "JSON"
    try:
        text = json.dumps(value, indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ExportError(
            f"A {type(value).__qualname__} has no file format here ({error}); export supports "
            f"DataFrames and Arrow tables (Parquet), ndarrays (.npy), bytes, text, pydantic "
            f"models and JSON data. Load it in Python instead: "
            f"labox_prefect.get_result(ID).load()."
        ) from None
    path.write_text(text + "\n", encoding="utf-8")
    return "JSON"


__all__ = ["ExportError", "export"]
