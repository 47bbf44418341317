"""The labox-prefect command: results ls / show, db upgrade, verify, gc, and its errors."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.settings import PREFECT_API_URL
from pydantic import BaseModel
from sqlalchemy import make_url
from typer.testing import CliRunner, Result

from labox_prefect import LaboxResultStorage
from labox_prefect.cli import app
from labox_prefect.core import ContentRecord, ManifestRecord, delete_manifest, get_contents
from labox_prefect.core.extra.pydantic import StorableModel
from labox_prefect.core.testing import forgotten
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target
from tests.integration._records import module_with_a_point, prefect_tags, save
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class Sample(BaseModel):
    """A plain pydantic model, exported as its own JSON."""

    name: str


class Unlisted(StorableModel, class_id="4b2d9e0f7a1c4e83"):
    """A class that no registry module of the CLI's process exports."""

    note: str


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ls_json(*args: str) -> list[dict[str, Any]]:
    result = run("results", "ls", "--json", *args)
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def contents_of(record: ManifestRecord) -> list[ContentRecord]:
    target = Target.from_settings()

    async def query() -> list[ContentRecord]:
        sessions = await get_runtime().sessions(target.database_url)
        async with sessions() as session:
            return await get_contents(session, record.id)

    return get_runtime().run(query())


def blob_path(backend: Backend, record: ManifestRecord) -> Path:
    (content,) = contents_of(record)
    return Path(backend.storage_url) / str(content.storage_config["key"])


def assert_usage_error(result: Result, *fragments: str) -> None:
    """A mistake in what was typed: exit code 2, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in " ".join(result.stderr.split())


def assert_clean_failure(result: Result, *fragments: str) -> None:
    """Exit code 1, the message on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in " ".join(result.stderr.split()), result.stderr


def test_ls_filters_and_prints_json(backend: Backend) -> None:
    mark = f"suite={uuid.uuid4().hex}"
    key, value = mark.split("=")
    run_id = uuid.uuid4()
    older = save({"n": 1}, {**prefect_tags(task="train", flow_run_id=run_id), key: value})
    newer = save(
        {"n": 2},
        {**prefect_tags(flow="weekly", task="score", run_tags=("gpu",)), key: value, "m": "x=y"},
    )

    everything = ls_json("--tag", mark)
    assert [row["id"] for row in everything] == [str(newer.id), str(older.id)]
    row = everything[0]
    assert (row["flow_name"], row["task_name"]) == ("weekly", "score")
    assert row["prefect_tags"] == ["gpu"]
    assert row["tags"]["m"] == "x=y"
    assert row["class"] == "labox_prefect.core.builtin.storables.value.StorableValue"
    assert row["created_at"] == newer.created_at.isoformat()

    def ids(*args: str) -> list[str]:
        return [found["id"] for found in ls_json("--tag", mark, *args)]

    assert ids("--flow", "nightly") == [str(older.id)]
    assert ids("--task", "score") == [str(newer.id)]
    assert ids("--flow-run", str(run_id)) == [str(older.id)]
    assert ids("--prefect-tag", "gpu") == [str(newer.id)]
    assert ids("--tag", "m=x=y") == [str(newer.id)]
    assert ids("--since", "10m") == [str(newer.id), str(older.id)]
    assert ids("--since", "2999-01-01") == []
    assert ids("--limit", "1") == [str(newer.id)]


@sqlite_only
def test_ls_prints_a_table(backend: Backend) -> None:
    mark = {"suite": uuid.uuid4().hex}
    saved = save({"n": 1}, {**prefect_tags(flow="nightly", task="train"), **mark})

    result = run("results", "ls", "--tag", f"suite={mark['suite']}")

    assert result.exit_code == 0, result.output
    assert "1 result (newest first)" in result.stdout
    assert saved.id.hex[:8] in result.stdout
    assert "nightly" in result.stdout
    assert "train" in result.stdout


@sqlite_only
def test_show_prints_record_contents_and_a_preview(backend: Backend) -> None:
    frame = pd.DataFrame({"sample": [f"s{i}" for i in range(20)], "value": range(20)})
    saved = save(frame, {**prefect_tags(task="measure"), "owner": "ana"})

    (content,) = contents_of(saved)

    result = CliRunner().invoke(app, ["results", "show", str(saved.id)], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert str(saved.id) in out
    for shown in ("prefect.task_name", "measure", "owner", "ana"):
        assert shown in out
    cells = [line.strip("│ ") for line in out.splitlines()]
    assert content.content_hash in cells  # whole, on a line of its own, at 80 columns
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "application/vnd.apache.parquet" in out
    assert "DataFrame, 20 rows x 2 columns" in out
    created = saved.created_at.astimezone().isoformat(sep=" ", timespec="seconds")
    assert f"created     {created}" in out  # with its offset: the time zone is not guessed
    assert "s4" in out  # the head only
    assert "s5" not in out

    quick = run("results", "show", saved.id.hex[:8], "--no-preview")  # a unique prefix will do
    assert quick.exit_code == 0, quick.output
    assert str(saved.id) in quick.stdout
    assert "Preview" not in quick.stdout


@sqlite_only
def test_show_of_an_unregistered_class_says_what_to_register(backend: Backend) -> None:
    saved = save(Unlisted(note="x"), prefect_tags(task="annotate"), storables=(Unlisted,))

    with forgotten(Unlisted):  # as a CLI process that never imported the class
        result = run("results", "show", str(saved.id))

    assert result.exit_code == 0, result.output  # it shows what it can without the class
    assert str(saved.id) in result.stdout
    assert "annotate" in result.stdout  # the tags
    assert "Preview of" in result.stdout  # a peek at the bytes
    assert "LABOX_REGISTRY_MODULES=" in " ".join(result.stderr.split())


@sqlite_only
def test_a_plain_class_not_imported_gets_the_shell_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = module_with_a_point(f"mytypes_{uuid.uuid4().hex[:8]}", monkeypatch)
    saved = save((module.Point(1, 2), "label"), prefect_tags(task="locate"))
    monkeypatch.delitem(sys.modules, module.__name__)  # as a CLI that never imported it
    fix = f"LABOX_REGISTRY_MODULES={module.__name__} labox-prefect"

    got = run("results", "get", str(saved.id), "-o", str(tmp_path / "point.json"))
    assert_usage_error(got, fix, "PYTHONPATH", f"Point of module {module.__name__}")
    assert "import " not in got.stderr

    shown = run("results", "show", str(saved.id))
    assert shown.exit_code == 0, shown.output
    assert "prefect.task_name" in shown.stdout
    assert "Contents" in shown.stdout
    assert "Preview of value" in shown.stdout
    assert "label" in shown.stdout  # the bytes' head, as text
    assert fix in " ".join(shown.stderr.split())


@sqlite_only
def test_bad_ids_and_options_fail_cleanly(backend: Backend) -> None:
    save({"n": 1}, prefect_tags())  # a database exists: only the ids are wrong
    assert_usage_error(run("results", "show", "nope"), "is not a record id")
    assert_usage_error(run("results", "show", "0000abcd"), "No record id starts with")
    unknown = uuid.uuid4()
    assert_usage_error(run("results", "show", str(unknown)), f"No record has the id {unknown}")
    assert_usage_error(run("results", "get", unknown.hex, "-o", "x.json"), "No record has the id")
    assert_usage_error(
        run("results", "ls", "--flow-run", "2195a9a9"),
        "--flow-run",
        "'2195a9a9' is not a full flow run id",
    )
    assert_usage_error(run("verify", "nope"), "is not a record id")
    bad_since = run("results", "ls", "--since", "yesterday")
    assert bad_since.exit_code == 2
    assert "--since" in bad_since.output
    bad_tag = run("results", "ls", "--tag", "novalue")
    assert bad_tag.exit_code == 2
    assert "key=value" in bad_tag.output


@sqlite_only
def test_the_fix_for_a_module_python_cannot_find_is_a_command_that_runs_from_here(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As after the demo: the class's module is in a folder below the current one, which the
    console script does not search; the fix puts that folder on PYTHONPATH."""
    name = f"mytypes_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\n"
        "class Point:\n    x: int\n    y: int\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    saved = save((importlib.import_module(name).Point(1, 2), "label"), prefect_tags())
    monkeypatch.delitem(sys.modules, name)  # as a CLI that never imported it
    monkeypatch.setattr(sys, "path", [path for path in sys.path if path != str(folder)])
    importlib.invalidate_caches()
    monkeypatch.chdir(tmp_path)

    shown = run("results", "show", str(saved.id))

    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.stderr.split())
    assert f"run it as PYTHONPATH=flows LABOX_REGISTRY_MODULES={name} labox-prefect" in said
    (folder / "unrelated").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / f"{name}.py").write_text("")  # two folders hold it: no guess
    guessed = run("results", "get", str(saved.id), "-o", str(tmp_path / "point.json"))
    assert_usage_error(guessed, "PYTHONPATH=FOLDER", f"LABOX_REGISTRY_MODULES={name}")


@sqlite_only
def test_a_registry_module_python_cannot_find_is_a_usage_error_with_the_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worded as the task's own refusal of the same setting (labox_prefect.registry_modules)."""
    save({"n": 1}, prefect_tags())
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", "no_such_pkg.mytypes")

    result = run("results", "ls")

    assert_usage_error(
        result,
        "LABOX_REGISTRY_MODULES names the module 'no_such_pkg.mytypes', which Python cannot "
        "find: install the package that provides it or put its folder on PYTHONPATH, or "
        "remove it from LABOX_REGISTRY_MODULES.",
    )


@sqlite_only
def test_an_unreachable_database_fails_without_showing_its_password(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_DATABASE_URL", "postgresql+asyncpg://ana:s3cr3t-pw@127.0.0.1:1/db")

    result = run("results", "ls")

    assert_clean_failure(
        result,
        "Cannot connect to the database postgresql+asyncpg://ana:***@127.0.0.1:1/db: "
        "Connection refused. Check that its server runs",
    )
    assert "s3cr3t-pw" not in result.output
    assert "Errno" not in result.stderr


@pytest.mark.parametrize("backend", ["postgres_s3"], indirect=True)  # a role is PostgreSQL's
def test_a_role_the_server_refuses_is_one_clean_error(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(backend.database_url).set(username="nobody_here", password="pw")
    monkeypatch.setenv("LABOX_DATABASE_URL", url.render_as_string(hide_password=False))

    result = run("results", "ls")

    assert_clean_failure(result, 'answered: role "nobody_here" does not exist.')
    assert result.stderr.count("Error") == 1, result.stderr


def test_db_upgrade_reports_revisions_with_the_password_masked(backend: Backend) -> None:
    save({"n": 1}, prefect_tags())  # tables made the runtime's way first: upgrade adopts them

    for _ in range(2):  # idempotent
        result = run("db", "upgrade")
        assert result.exit_code == 0, result.output
        text = " ".join(result.stdout.split())
        assert "revision 0005 (core)" in text
        assert "p0001 (Prefect results)" in text
    if backend.name == "postgres_s3":
        assert "***" in text
        assert backend.database_url not in text


@sqlite_only
def test_db_upgrade_creates_a_new_embedded_database(backend: Backend, tmp_path: Path) -> None:
    result = run("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "labox" / "labox.db").is_file()


@sqlite_only
def test_ls_before_the_first_save_says_where_results_would_be(
    backend: Backend, tmp_path: Path
) -> None:
    """A mistyped LABOX_HOME must not look like a store where nothing matches."""
    database = tmp_path / "labox" / "labox.db"

    empty = run("results", "ls")

    assert empty.exit_code == 0, empty.output
    assert "0 results" in empty.stdout
    assert f"no database at {database}" in " ".join(empty.stderr.split())
    assert not database.exists()  # a read creates nothing
    save({"n": 1}, prefect_tags())
    listed = run("results", "ls")
    assert "1 result " in listed.stdout
    assert "Note" not in listed.stderr


@sqlite_only
def test_verify_finds_corrupted_and_missing_blobs(backend: Backend) -> None:
    good = save(pd.DataFrame({"a": [1.0, 2.0]}), prefect_tags())
    corrupted = save(pd.DataFrame({"a": [3.0, 4.0]}), prefect_tags())
    missing = save(pd.DataFrame({"a": [5.0, 6.0]}), prefect_tags())

    ok = run("verify", str(good.id))
    assert ok.exit_code == 0, ok.output
    assert "Verified 1 content: intact." in ok.stdout

    blob_path(backend, corrupted).write_bytes(b"not parquet any more")
    blob_path(backend, missing).unlink()
    result = run("verify")

    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    for shown in ("corrupted", "missing", str(corrupted.id), str(missing.id)):
        assert shown in out
    assert "2 of 3 contents failed verification" in out


@sqlite_only
def test_gc_lists_then_deletes_unreferenced_blobs(backend: Backend) -> None:
    kept = save(pd.DataFrame({"k": [1]}), prefect_tags())
    dropped = save(pd.DataFrame({"d": [2]}), prefect_tags())
    orphan = blob_path(backend, dropped)
    target = Target.from_settings()

    async def forget() -> None:
        sessions = await get_runtime().sessions(target.database_url)
        async with sessions() as session:
            await delete_manifest(session, dropped.id)  # the records go, the blob stays

    get_runtime().run(forget())

    young = run("gc")  # written a moment ago: within the grace period
    assert young.exit_code == 0, young.output
    assert "Deleted 0 of 0 unreferenced blobs" in young.stdout
    assert "1 younger than 1h kept" in young.stdout
    assert orphan.exists()

    dry = run("gc", "--dry-run", "--grace", "0s")
    assert dry.exit_code == 0, dry.output
    assert "1 unreferenced blobs and 0 temporary files would be deleted" in dry.stdout
    assert f"would delete blob labox.file@v1 {orphan.parent.name}/{orphan.name}" in dry.stdout
    assert orphan.exists()

    real = run("gc", "--grace", "0s")
    assert real.exit_code == 0, real.output
    assert "Deleted 1 of 1 unreferenced blobs" in real.stdout
    assert not orphan.exists()
    assert blob_path(backend, kept).exists()


@sqlite_only
def test_get_writes_a_value_tree_as_its_json(backend: Backend, tmp_path: Path) -> None:
    mixed = save((1, {"b", "a"}, {2: "two"}), prefect_tags())
    plain = save({"n": [1, 2.5, None]}, prefect_tags())
    model = save(Sample(name="s1"), prefect_tags())
    assert run("results", "get", str(model.id), "-o", str(tmp_path / "m.json")).exit_code == 0
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == '{\n  "name": "s1"\n}\n'

    got = run("results", "get", str(mixed.id), "-o", str(tmp_path / "mix.json"))
    again = run("results", "get", str(plain.id), "-o", str(tmp_path / "plain.json"))

    assert got.exit_code == 0, got.output
    assert "typed value tree" in got.stdout
    text = (tmp_path / "mix.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == {"!tuple": [1, {"!set": ["a", "b"]}, {"!dict": [[2, "two"]]}]}
    assert again.exit_code == 0, again.output
    assert (tmp_path / "plain.json").read_text(encoding="utf-8").endswith("}\n")
    assert json.loads((tmp_path / "plain.json").read_text(encoding="utf-8")) == {
        "n": [1, 2.5, None]
    }


@sqlite_only
def test_show_names_the_serializer_the_readme_names(backend: Backend) -> None:
    saved = save((1, {"a"}), prefect_tags())
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")

    shown = run("results", "show", str(saved.id), "--no-preview")

    assert shown.exit_code == 0, shown.output
    assert "serializer labox.value-tree@v1" in shown.stdout
    assert "one typed JSON tree (serializer `labox.value-tree@v1`" in readme


@sqlite_only
def test_reading_a_block_leaves_no_prefect_event_queued_at_exit(backend: Backend) -> None:
    """Reading a block emits Prefect's block-loaded event; the command sends it before it
    exits, so Prefect's events worker does not print "Still processing items" at exit."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    LaboxResultStorage().save(name, _sync=True)  # type: ignore[call-arg]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}

    for arguments in (["--block", name, "results", "ls"], ["results", "ls"]):
        done = subprocess.run(
            [sys.executable, "-c", "from labox_prefect.cli import app; app()", *arguments],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

        assert done.returncode == 0, done.stderr
        assert "Still processing items" not in done.stderr
