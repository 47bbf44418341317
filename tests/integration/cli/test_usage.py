"""Every user mistake is one line on stderr naming the fix, with exit code 2, never a traceback.

These tests also guard the CLI's use of Typer's bundled Click (``typer._click``): if its
exceptions move, the one-line messages turn back into panels and these tests fail.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.console import Console
from typer.testing import CliRunner, Result

from labox_prefect.cli import app, output
from tests.integration._records import prefect_tags, save
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_one_line_usage_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@sqlite_only
@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgresql://ana:s3cr3t@127.0.0.1/db", "write postgresql+asyncpg://ana:***@127.0.0.1/db"),
        ("sqlite:////tmp/labox.db", "write sqlite+aiosqlite:////tmp/labox.db"),
        ("mysql+aiomysql://h/db", "use PostgreSQL (postgresql+asyncpg://...)"),
        ("not a url", "write it as postgresql+asyncpg://"),
    ],
)
def test_a_database_url_without_its_async_driver_names_the_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, url: str, fix: str
) -> None:
    monkeypatch.setenv("LABOX_DATABASE_URL", url)

    for command in (["results", "ls"], ["verify"], ["db", "upgrade"]):
        result = run(*command)
        assert_one_line_usage_error(result, fix, "LABOX_DATABASE_URL")
        assert "s3cr3t" not in result.output


@sqlite_only
def test_a_storage_url_of_an_unknown_scheme_is_a_usage_error(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_STORAGE_URL", "ftp://ana:s3cr3t@host/results")

    for command in (["results", "ls"], ["verify"], ["gc", "--dry-run"]):
        result = run(*command)
        assert_one_line_usage_error(result, "'ftp'", "LABOX_STORAGE_URL", "s3://bucket/prefix")
        assert "s3cr3t" not in result.output


@sqlite_only
def test_a_missing_registry_module_names_the_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    save({"n": 1}, prefect_tags())
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", "labox_nowhere.models")

    assert_one_line_usage_error(
        run("results", "ls"), "'labox_nowhere.models'", "remove it from LABOX_REGISTRY_MODULES"
    )


@sqlite_only
def test_a_registry_module_whose_import_raises_names_the_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = save({"n": 1}, prefect_tags())
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", "tests.integration._broken_registry")

    assert_one_line_usage_error(
        run("results", "show", str(saved.id)),
        "'tests.integration._broken_registry', whose import raised RuntimeError",
        "LABOX_REGISTRY_MODULES",
    )


@sqlite_only
@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("LABOX_ARTIFACTS", "maybe", "true or false"),
        ("LABOX_DB_POOL_SIZE", "abc", "a valid integer"),
        ("LABOX_DB_POOL_TIMEOUT", "-5", "greater than 0"),
    ],
)
def test_a_bad_setting_names_its_variable_and_what_is_allowed(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert_one_line_usage_error(run("results", "ls", "-n", "1"), f"{variable}={value!r}", allowed)


@sqlite_only
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--since", "99999999w"], ["before the year 1", "shorter duration"]),
        (["--since", "yesterday"], ["neither a duration", "--since"]),
        (["--tag", "novalue"], ["key=value"]),
        (["--limit", "-1"], ["--limit 0 or more"]),
        (["--deployment", "nightly"], ["FLOW/DEPLOYMENT", "etl/nightly"]),
        (["--no-such-option"], ["No such option", "--help"]),
    ],
)
def test_bad_options_are_one_line(backend: Backend, args: list[str], fragments: list[str]) -> None:
    save({"n": 1}, prefect_tags())  # a database exists: only the option is wrong

    assert_one_line_usage_error(run("results", "ls", *args), *fragments)


@sqlite_only
def test_an_existing_export_file_is_never_replaced_silently(
    backend: Backend, tmp_path: object
) -> None:
    from pathlib import Path

    saved = save({"n": 1}, prefect_tags())
    target = Path(str(tmp_path)) / "kept.json"
    target.write_text("precious", encoding="utf-8")

    result = run("results", "get", saved.id.hex[:8], "-o", str(target))

    assert_one_line_usage_error(result, "exists", "--force")
    assert target.read_text(encoding="utf-8") == "precious"


@sqlite_only
def test_an_export_file_in_a_missing_folder_is_one_line(backend: Backend, tmp_path: Path) -> None:
    saved = save({"n": 1}, prefect_tags())

    result = run("results", "get", saved.id.hex[:8], "-o", str(tmp_path / "nowhere" / "x.json"))

    assert_one_line_usage_error(result, "--output", "nowhere", "does not exist")
    assert "reachable" not in result.output


@sqlite_only
def test_an_export_file_that_cannot_be_written_is_one_line(
    backend: Backend, tmp_path: Path
) -> None:
    saved = save({"n": 1}, prefect_tags())

    result = run("results", "get", saved.id.hex[:8], "-o", str(tmp_path), "--force")

    assert_one_line_usage_error(result, f"Cannot write {tmp_path}")
    assert "reachable" not in result.output


@sqlite_only
def test_help_reads_plainly(backend: Backend) -> None:
    for command in (
        [],
        ["results"],
        ["results", "ls"],
        ["results", "show"],
        ["results", "get"],
        ["results", "rm"],
        ["verify"],
        ["gc"],
        ["db", "upgrade"],
    ):
        result = run(*command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.stdout
        assert not re.search(r"<\w+(\[\w+\])?>", result.stdout), result.stdout  # <bool>, <str>
        assert "{" not in result.stdout
        assert "x>=" not in result.stdout
        assert "╭" not in result.stdout  # no panels


@sqlite_only
def test_arguments_are_named_by_their_metavar(backend: Backend) -> None:
    show = " ".join(run("results", "show", "--help").stdout.split())
    verify = " ".join(run("verify", "--help").stdout.split())

    assert "Usage: labox-prefect results show [OPTIONS] ID " in show
    assert "Arguments: ID The record id" in show
    assert "Usage: labox-prefect verify [OPTIONS] [ID]... " in verify
    assert "Arguments: [ID]... Records to verify" in verify


@sqlite_only
def test_a_block_without_a_prefect_server_is_one_line_and_starts_nothing(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    save({"n": 1}, prefect_tags())

    def no_api(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the CLI asked Prefect's API (an ephemeral server would start)")

    monkeypatch.setattr(Block, "load", no_api)
    monkeypatch.setattr(Block, "aload", no_api)
    with temporary_settings(updates={PREFECT_API_URL: None}):
        result = run("--block", "lab-db", "results", "ls")

    assert_one_line_usage_error(result, "--block lab-db", "export PREFECT_API_URL=")


@sqlite_only
def test_a_missing_block_on_a_server_is_one_line(backend: Backend) -> None:
    save({"n": 1}, prefect_tags())

    result = run("--block", "no-such-block", "results", "ls")  # the harness's API

    assert_one_line_usage_error(result, "No LaboxResultStorage block named 'no-such-block'")


@sqlite_only
def test_help_needs_no_database(backend: Backend) -> None:
    result = run("results", "ls", "--help")  # nothing saved: no database file yet

    assert result.exit_code == 0, result.output
    assert "--deployment FLOW/DEPLOYMENT" in result.stdout


@sqlite_only
def test_errors_wrap_at_words_in_a_terminal(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    save({"n": 1}, prefect_tags())  # a database exists: only the option is wrong
    args = ["results", "ls", "--since", "1999-99-99T99:99"]
    piped = run(*args)
    terminal = Console(
        file=io.StringIO(), force_terminal=True, color_system=None, width=40, highlight=False
    )
    monkeypatch.setattr(output, "err_console", terminal)

    wrapped = run(*args)

    assert piped.exit_code == wrapped.exit_code == 2
    lines = terminal.file.getvalue().splitlines()
    assert len(lines) > 3
    assert all(len(line) <= 40 for line in lines)
    # wrapped only where a space was: no word is cut ("digi ts")
    assert " ".join(" ".join(lines).split()) == " ".join(piped.stderr.split())
