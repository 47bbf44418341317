"""``results ls`` at 80 columns, its filters, ``results get`` and id prefixes everywhere."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect import flow
from sqlalchemy import Engine, event
from typer.testing import CliRunner, Result

from labox_prefect import labox_task
from labox_prefect.cli import app, output
from labox_prefect.cli.export import ExportError, export
from labox_prefect.context import DEPLOYMENT_NAME, FLOW_NAME
from tests.integration._records import prefect_tags, save
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

MORE = "More results match: raise --limit (0: all) or filter (--tag, --flow, --since)."


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@labox_task(tags={"project": "labox-demo", "owner": "ana"})
def summarise_the_quarterly_figures(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"region": [f"r{i}" for i in range(rows)], "sales": range(rows)})


@labox_task(tags={"project": "labox-demo"})
def count() -> dict[str, int]:
    return {"n": 12}


@flow(name="a-rather-long-flow-name-for-the-quarterly-report")
def report() -> None:
    summarise_the_quarterly_figures(50)
    count()


@sqlite_only
def test_ls_prints_one_line_per_result_at_80_columns(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "_width", 80)
    report()
    report()

    result = run("results", "ls", "--tag", "project=labox-demo")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no banner, no warning
    title, header, *lines = result.stdout.splitlines()
    assert title == "4 results (newest first)"
    assert header.split() == ["ID", "AGE", "FLOW/TASK", "TYPE", "SIZE"]
    assert len(lines) == 4
    assert all(len(line) <= 80 for line in [header, *lines])
    frame_line = next(line for line in lines if "DataFrame" in line)
    assert "a-rather-long-flow-name-for-the-qua…" in frame_line  # cut, on one line
    assert frame_line.split()[1] == "now"
    assert frame_line.endswith("KiB")
    assert any(" dict " in line for line in lines)
    assert "StorableValue" not in result.stdout
    assert "owner=ana" not in result.stdout  # tags only with --wide

    wide = run("results", "ls", "--tag", "project=labox-demo", "--wide")
    assert "a-rather-long-flow-name-for-the-quarterly-report/summarise_the_quarterly_figures" in (
        wide.stdout
    )
    assert "owner=ana project=labox-demo" in wide.stdout

    (row, *_) = json.loads(run("results", "ls", "--json", "--task", "count").stdout)
    assert row["tags"]["prefect.result_type"] == "builtins:dict"
    assert row["size"] > 0


@sqlite_only
def test_limit_zero_lists_everything(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    for n in range(3):
        save({"n": n}, {**prefect_tags(), **mark})

    result = run("results", "ls", "--tag", f"suite={mark['suite']}", "--limit", "0", "--json")

    assert len(json.loads(result.stdout)) == 3


@sqlite_only
def test_a_list_cut_by_its_limit_says_more_match_without_counting(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One footer line when --limit cut the list (a note on stderr with --json, whose stdout
    stays one array); none when every match is shown. The query fetches N+1, never COUNTs."""
    monkeypatch.setattr(output.console, "_width", 80)
    mark = {"suite": uuid.uuid4().hex}
    for n in range(3):
        save({"n": n}, {**prefect_tags(), **mark})
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        cut = run("results", "ls", "--tag", f"suite={mark['suite']}", "--limit", "2")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)

    assert cut.exit_code == 0, cut.output
    title, _header, *lines, footer = cut.stdout.splitlines()
    assert title == "the newest 2 results (more match)"
    assert len(lines) == 2
    assert footer == MORE
    assert len(footer) <= 80
    assert cut.stderr == ""
    assert statements
    assert not any("count(" in statement.lower() for statement in statements), statements

    for whole in (["--limit", "3"], ["--limit", "0"], []):
        listed = run("results", "ls", "--tag", f"suite={mark['suite']}", *whole)
        assert MORE not in listed.output, whole
        assert listed.stdout.splitlines()[0] == "3 results (newest first)"

    as_json = run("results", "ls", "--tag", f"suite={mark['suite']}", "-n", "2", "--json")
    assert len(json.loads(as_json.stdout)) == 2
    (note,) = as_json.stderr.strip().splitlines()
    assert note == f"Note: {MORE}"
    whole_json = run("results", "ls", "--tag", f"suite={mark['suite']}", "-n", "3", "--json")
    assert len(json.loads(whole_json.stdout)) == 3
    assert whole_json.stderr == ""


@sqlite_only
def test_deployment_filter_finds_new_and_old_records(backend: Backend) -> None:
    new = save({"n": 1}, {**prefect_tags(flow="etl"), DEPLOYMENT_NAME: "etl/nightly"})
    old = save({"n": 2}, {**prefect_tags(flow="etl"), DEPLOYMENT_NAME: "nightly"})
    save({"n": 3}, {**prefect_tags(flow="other"), DEPLOYMENT_NAME: "nightly"})
    save({"n": 4}, {**prefect_tags(flow="etl"), DEPLOYMENT_NAME: "etl/hourly"})

    rows = json.loads(run("results", "ls", "--deployment", "etl/nightly", "--json").stdout)

    assert [row["id"] for row in rows] == [str(old.id), str(new.id)]
    assert {row["tags"][FLOW_NAME] for row in rows} == {"etl"}


@sqlite_only
def test_verify_and_show_take_the_prefix_ls_prints(backend: Backend) -> None:
    saved = save({"n": 1}, prefect_tags())

    verified = run("verify", saved.id.hex[:8])
    shown = run("results", "show", saved.id.hex[:8], "--no-preview")

    assert verified.exit_code == 0, verified.output
    assert "Verified 1 content: intact." in verified.stdout
    assert shown.exit_code == 0, shown.output


@sqlite_only
@pytest.mark.parametrize(
    ("value", "name", "kind"),
    [
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "frame.parquet", "Parquet"),
        (np.arange(6, dtype=np.int32).reshape(2, 3), "array.npy", "NumPy .npy"),
        ({"n": [1, 2], "name": "ana"}, "data.json", "JSON"),
        (b"\x00\x01raw", "blob.bin", "bytes"),
    ],
)
def test_get_exports_a_result_in_its_natural_format(
    backend: Backend, tmp_path: Path, value: Any, name: str, kind: str
) -> None:
    saved = save(value, prefect_tags())
    path = tmp_path / name

    result = run("results", "get", saved.id.hex[:8], "-o", str(path))

    assert result.exit_code == 0, result.output
    assert f"({kind}," in result.stdout
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(pd.read_parquet(path), value)
    elif isinstance(value, np.ndarray):
        loaded = np.load(path, allow_pickle=False)
        assert loaded.dtype == value.dtype
        np.testing.assert_array_equal(loaded, value)
    elif isinstance(value, bytes):
        assert path.read_bytes() == value
    else:
        assert json.loads(path.read_text(encoding="utf-8")) == value


def test_get_refuses_what_has_no_file_format(tmp_path: Path) -> None:
    """What the value tree cannot hold (an open stream, say) is refused, naming what can be
    exported, not why the core would not save it."""
    with pytest.raises(ExportError) as caught:
        export(object(), tmp_path / "thing.json")

    message = " ".join(str(caught.value).split())
    assert "A object cannot be exported as a file" in message
    assert "Cannot save" not in message
    assert not (tmp_path / "thing.json").exists()


@pytest.mark.parametrize(
    ("value", "name", "fix"),
    [
        (pd.DataFrame({"a": [1, 2]}), "frame.csv", "frame.parquet"),
        (np.arange(3), "array.json", "array.npy"),
        ({"n": 1}, "settings.parquet", "settings.json"),
    ],
)
def test_get_refuses_a_file_name_naming_another_format_before_writing(
    backend: Backend, tmp_path: Path, value: Any, name: str, fix: str
) -> None:
    """``-o frame.csv`` once wrote Parquet bytes into a .csv file."""
    saved = save(value, prefect_tags())

    result = run("results", "get", saved.id.hex[:8], "-o", str(tmp_path / name))

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"name it {fix}" in " ".join(line.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / name).exists()
    written = run("results", "get", saved.id.hex[:8], "-o", str(tmp_path / "no-suffix"))
    assert written.exit_code == 0, written.output  # no suffix: written as asked


def test_each_frame_or_array_a_refusal_names_is_written_by_its_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = {
        "frame": pd.DataFrame({"x": [1, 2]}),
        "series": pd.Series([1.5], name="s"),
        "table": pa.table({"y": ["a"]}),
        "array": np.arange(3),
        "a/b": pd.DataFrame({"z": [0]}),
        "n": 3,
    }
    with pytest.raises(ExportError) as caught:
        export(value, tmp_path / "all.parquet")

    parts = caught.value.parts
    assert [(part.path, part.kind, part.file_name) for part in parts] == [
        ("['frame']", "DataFrame", "frame.parquet"),
        ("['series']", "Series", "series.parquet"),
        ("['table']", "Table", "table.parquet"),
        ("['array']", "ndarray", "array.npy"),
        ("['a/b']", "DataFrame", "part4.parquet"),
    ]
    monkeypatch.chdir(tmp_path)
    for part in parts:
        exec(part.python("value"), {"value": value})
    pd.testing.assert_frame_equal(pd.read_parquet("frame.parquet"), value["frame"])
    pd.testing.assert_series_equal(pd.read_parquet("series.parquet")["s"], value["series"])
    assert pq.read_table("table.parquet").equals(value["table"])
    np.testing.assert_array_equal(np.load("array.npy", allow_pickle=False), value["array"])
    pd.testing.assert_frame_equal(pd.read_parquet("part4.parquet"), value["a/b"])
    assert not (tmp_path / "all.parquet").exists()


@sqlite_only
@pytest.mark.parametrize(
    ("series", "column"),
    [
        (pd.Series([0.1, 0.2], index=pd.Index(["a", "b"], name="well"), name="absorbance"), None),
        (pd.Series([1, 2, 3]), "value"),
    ],
    ids=["named", "unnamed"],
)
def test_get_exports_a_series_as_a_one_column_parquet_file(
    backend: Backend, tmp_path: Path, series: pd.Series, column: str | None
) -> None:
    """Its column is named after the Series (``value`` when it has no name); the index is
    kept, as DataFrame.to_parquet keeps it."""
    saved = save(series, prefect_tags())
    path = tmp_path / "series.parquet"

    result = run("results", "get", saved.id.hex[:8], "-o", str(path))

    assert result.exit_code == 0, result.output
    name = column or series.name
    assert f"(Parquet, one column '{name}'," in result.stdout
    read = pd.read_parquet(path)
    assert list(read.columns) == [name]
    pd.testing.assert_series_equal(read[name], series, check_names=column is None)


@sqlite_only
@pytest.mark.parametrize(
    ("value", "part", "name"),
    [
        ({"frame": pd.DataFrame({"x": [1, 2]}), "n": 3}, "['frame']", "frame"),
        ([pd.DataFrame({"x": [1, 2]}), 2], "[0]", "item0"),
    ],
    ids=["frame-in-dict", "frame-in-list"],
)
def test_get_of_a_value_holding_frames_is_one_usage_line_saying_how_to_get_each(
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: Any,
    part: str,
    name: str,
) -> None:
    """No file (nor folder of files) stands for the whole value: the line names the frames
    and gives the Python that writes one, which works as printed."""
    saved = save(value, prefect_tags())
    path = tmp_path / "x"

    result = run("results", "get", saved.id.hex[:8], "-o", str(path))

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert f"A {type(value).__qualname__} holding a DataFrame at value{part}" in message
    assert "results get -o writes one value per file" in message
    assert f"labox-prefect results show {saved.id.hex[:8]}" in message
    assert "Cannot save" not in message
    assert not path.exists()
    (snippet,) = [code for code in message.split("`") if "get_result" in code]
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})
    frame = value["frame"] if isinstance(value, dict) else value[0]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{name}.parquet"), frame)
