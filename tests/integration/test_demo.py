"""The README's demo command: flows/demo.py on the embedded default, in a fresh process.

It runs with empty LABOX_HOME and PREFECT_HOME folders and no API URL, as on a new machine:
Prefect starts its own temporary server, results go to SQLite and files under LABOX_HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration._helpers import manifests

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 180  # a guard against a hung run, not an assertion about speed


def test_demo_prints_the_results_it_finds_by_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LABOX_", "PREFECT_", "AWS_"))
    }
    env |= {
        "LABOX_HOME": str(tmp_path / "labox"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "160",
        # A guard for a loaded machine (Prefect's default is 20 s), not a speed assertion.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }

    done = subprocess.run(
        [sys.executable, "flows/demo.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Found 3 results of this run" in out
    for task_name in ("measure", "summarise", "instrument_settings"):
        assert task_name in out
    assert "SampleSummary(batch='B7'" in out
    assert "DataFrame 12x3" in out
    assert "'wavelength_nm': 488" in out
    assert "Traceback" not in done.stderr

    monkeypatch.setenv("LABOX_HOME", str(tmp_path / "labox"))  # read what the demo wrote
    for name in ("LABOX_DATABASE_URL", "LABOX_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    records = manifests(project="labox-demo")
    assert {record.tags["prefect.task_name"] for record in records} == {
        "measure",
        "summarise",
        "instrument_settings",
    }
    assert len(records) == 3
