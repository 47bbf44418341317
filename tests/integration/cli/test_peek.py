"""``results show`` of a large result previews the head of each content, never the whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.local import LocalFileOpener
from typer.testing import CliRunner, Result

from labox_prefect.cli import app, output
from labox_prefect.cli.peek import LOAD_LIMIT
from labox_prefect.core.builtin.storages.fsspec import FsspecStorage
from labox_prefect.core.extra.pandas import ParquetDataFrameStreamSerializer
from labox_prefect.core.extra.pydantic import ContentSpec, StorableModel
from tests.integration._records import prefect_tags, save
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

BIG = 50 * 1024 * 1024


class Frames(StorableModel, class_id="6c1e0b9d2a7f4e58"):
    """A model holding a stream of frames."""

    title: str
    frames: Annotated[
        AsyncIterable[pd.DataFrame], ContentSpec(serializer=ParquetDataFrameStreamSerializer())
    ]


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes read from local blobs during the test; a whole-blob read fails the test."""
    count = {"bytes": 0}
    read = LocalFileOpener.read  # what pyarrow and fsspec call to read a local file

    def counted_read(self: LocalFileOpener, *args: Any) -> bytes:
        data: bytes = read(self, *args)
        count["bytes"] += len(data)
        return data

    async def whole(self: FsspecStorage, config: Any) -> bytes:
        raise AssertionError(f"show read the whole blob {config}")

    monkeypatch.setattr(LocalFileOpener, "read", counted_read)
    monkeypatch.setattr(FsspecStorage, "read_data", whole)
    return count


def show(record_id: str) -> Result:
    result = CliRunner().invoke(app, ["results", "show", record_id])
    assert result.exit_code == 0, result.output
    return result


@sqlite_only
def test_a_50_mb_frame_shows_its_head_reading_a_few_mb(
    backend: Backend, bytes_read: dict[str, int]
) -> None:
    rows = BIG // 16
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"sample": np.arange(rows), "value": rng.random(rows)})
    saved = save(frame, prefect_tags(task="measure"))
    bytes_read["bytes"] = 0

    out = show(saved.id.hex[:8]).stdout

    assert bytes_read["bytes"] < 8 * 1024 * 1024, bytes_read  # of about 50 MB stored
    assert f"{rows:,} rows; the first 5 rows" in " ".join(out.split())
    flat = out.split()
    assert "4" in flat
    assert str(rows - 1) not in flat


@sqlite_only
def test_a_stream_shows_its_first_frame(backend: Backend, bytes_read: dict[str, int]) -> None:
    async def frames() -> AsyncIterator[pd.DataFrame]:
        for start in range(0, 30, 10):
            yield pd.DataFrame({"step": range(start, start + 10)})

    saved = save(Frames(title="run", frames=frames()), prefect_tags(), storables=(Frames,))

    out = " ".join(show(str(saved.id)).stdout.split())

    assert "frames, 3 in all, 30 rows; the first 5 rows" in out
    assert "async_generator" not in out


@sqlite_only
def test_a_large_json_value_shows_its_first_bytes(
    backend: Backend, bytes_read: dict[str, int]
) -> None:
    value = {f"key{i}": "x" * 100 for i in range(LOAD_LIMIT // 50)}
    saved = save(value, prefect_tags())

    out = " ".join(show(str(saved.id)).stdout.split())

    assert bytes_read["bytes"] < 64 * 1024
    assert "the first 600 characters of" in out
    assert "key0" in out
    assert f"key{LOAD_LIMIT // 50 - 1}" not in out
    assert len(json.dumps(value)) > LOAD_LIMIT


@sqlite_only
def test_a_small_image_is_named_not_dumped(backend: Backend) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big")
    png += (480).to_bytes(4, "big") + bytes(200)
    saved = save(png, prefect_tags())

    out = " ".join(show(str(saved.id)).stdout.split())

    assert "PNG 640x480 image" in out
    assert "\\x00" not in out


def test_a_large_frame_is_peeked_on_every_backend(
    backend: Backend, bytes_read: dict[str, int]
) -> None:
    rows = LOAD_LIMIT // 8
    frame = pd.DataFrame({"value": np.random.default_rng(3).random(rows)})
    saved = save(frame, prefect_tags(task="measure"))

    out = " ".join(show(str(saved.id)).stdout.split())  # read_data fails the test

    assert f"a table, {rows:,} rows; the first 5 rows" in out


def preview_lines(stdout: str) -> list[str]:
    """The text inside the (first) Preview panel, without its border."""
    start = next(i for i, line in enumerate(stdout.splitlines()) if "─ Preview" in line)
    inside = stdout.splitlines()[start + 1 :]
    return [line.strip("│").rstrip()[1:] for line in inside if line.startswith("│")]


def assert_rows_whole(lines: list[str], first_column: str) -> None:
    """The table whose header starts with ``first_column`` is printed in blocks of whole
    lines (pandas' own wrapping), not folded by the terminal: its first row follows its
    header with one value per column name, after the row's index."""
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_column])
    names = [token for token in lines[at].split() if token != "\\"]
    row = [token for token in lines[at + 1].split() if token != "\\"]
    assert row[0] == "0", lines[at : at + 2]
    assert len(row) == len(names) + 1, lines[at : at + 2]


@sqlite_only
def test_a_dict_holding_frames_shows_its_items_then_each_frame_as_a_table_at_80_columns(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "_width", 80)
    frame = pd.DataFrame({"sample": [f"S{i:03d}" for i in range(40)], "ok": [True] * 40})
    wide = pd.DataFrame({f"column_{i}": range(10) for i in range(12)})
    value = {"frame": frame, "n": 3, "wide": wide, "label": "nightly batch B7"}
    saved = save(value, prefect_tags())

    out = show(saved.id.hex[:8]).stdout

    assert all(len(line) <= 80 for line in out.splitlines()), out
    lines = preview_lines(out)
    assert lines[:3] == ["dict, 4 keys", "n: 3", "label: 'nightly batch B7'"]
    at = lines.index("frame: DataFrame, 40 rows x 2 columns; the first 5 rows")
    assert lines[at + 1].split() == ["sample", "ok"]
    assert lines[at + 2].split() == ["0", "S000", "True"]
    assert lines[at + 6].split() == ["4", "S004", "True"]
    assert "S005" not in out
    assert "wide: DataFrame, 10 rows x 12 columns; the first 5 rows and 8 columns" in lines
    assert "column_7" in out
    assert "column_8" not in out
    assert_rows_whole(lines, "column_0")
    assert "{'frame'" not in out  # not the dict's repr


@sqlite_only
def test_a_large_wide_frame_is_peeked_within_80_columns(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "_width", 80)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({f"measurement_{i}": rng.random(LOAD_LIMIT // 64) for i in range(10)})
    saved = save(frame, prefect_tags())

    out = show(saved.id.hex[:8]).stdout

    assert "first 8 of 10 columns" in " ".join(out.split())
    assert "measurement_7" in out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert_rows_whole(preview_lines(out), "measurement_0")
