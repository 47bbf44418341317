"""The command starts light: its help, and a usage mistake, import neither Prefect nor
SQLAlchemy, pandas or pyarrow.

Each case runs in a fresh interpreter (a test process has them all imported already). The
commands import their work (labox_prefect.cli.listing, labox_prefect.cli.upkeep) when they
run; ``bench/cli_startup.py`` measures what that saves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labox_prefect.cli.options import DEFAULT_GRACE_TEXT
from labox_prefect.cli.output import parse_since
from labox_prefect.core.lifecycle import DEFAULT_GRACE

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("prefect", "sqlalchemy", "alembic", "pandas", "pyarrow", "labox_prefect.core")

_HELP = """
import json, sys
from labox_prefect.cli import app
sys.argv = ["labox-prefect", *sys.argv[1:]]
try:
    app()
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        [],
        ["results", "--help"],
        ["results", "ls", "--help"],
        ["results", "show", "--help"],
        ["results", "rm", "--help"],
        ["db", "--help"],
        ["verify", "--help"],
        ["gc", "--help"],
    ],
    ids=lambda arguments: " ".join(arguments) or "(none)",
)
def test_help_imports_no_heavy_module(arguments: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HELP, *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, 2, None)  # no arguments: the help, with exit code 2
    assert heavy_modules(report["modules"]) == []


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["results", "ls", "--limt", "3"], "No such option: --limt"),
        (["results", "ls", "--limit", "x"], "Invalid value for '--limit'"),
        (["results", "ls", "--flow-run", "5d3c"], "is not a full flow run id"),
        (["results", "show"], "Missing argument 'ID'"),
        (["results", "get", "5d3c9a1e"], "Missing option '--output'"),
        (["results", "rm", "--keep-last", "-1"], "-1 is below 0"),
        (["db", "upgrade", "--fast"], "No such option: --fast"),
        (["verify", "--all"], "No such option: --all"),
        (["gc", "--dry"], "No such option: --dry"),
        (["--block", "lab", "results", "ls", "--limt", "3"], "No such option: --limt"),
        (["results", "ls", "--since", "3x"], "Invalid value for --since: '3x' is neither"),
        (["results", "ls", "--tag", "project"], "Invalid value for --tag: 'project' is not"),
        (["results", "ls", "--deployment", "nightly"], "'nightly' is not FLOW/DEPLOYMENT"),
        (["results", "rm", "--older-than", "soon"], "Invalid value for --older-than: 'soon'"),
        (["results", "rm", "-t", "a=b", "--grace", "1y"], "Invalid value for --grace: '1y' is"),
        (["gc", "--grace", "2024-05-01"], "'2024-05-01' is not a duration"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_usage_mistake_comes_first_and_imports_no_heavy_module(
    arguments: list[str], fragment: str, tmp_path: Path
) -> None:
    """The mistake is reported before the database is looked for or Prefect is imported:
    here LABOX_DATABASE_URL names a file that does not exist, and --block needs a server."""
    env = {
        **os.environ,
        "LABOX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/nowhere.db",
        "PREFECT_API_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", _HELP, *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    assert fragment in line, line
    assert heavy_modules(report["modules"]) == []


def test_the_default_grace_of_the_commands_is_the_cores() -> None:
    assert parse_since(DEFAULT_GRACE_TEXT) == DEFAULT_GRACE


def heavy_modules(modules: list[str]) -> list[str]:
    return [
        module
        for module in modules
        if any(module == name or module.startswith(f"{name}.") for name in HEAVY)
    ]
