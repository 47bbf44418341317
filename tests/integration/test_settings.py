"""LABOX_* settings: read from the environment as it is at each call, cheaply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labox_prefect.errors import InvalidSettingError
from labox_prefect.settings import _ENV_NAMES, _environment_key, current_settings


def test_cpythons_environ_keeps_the_encoded_environment_in_its_data_dict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast reading of the settings' variables relies on this (settings._environment_key)."""
    monkeypatch.setenv("LABOX_ARTIFACTS", "maybe")
    data = os.environ._data  # type: ignore[attr-defined]
    assert isinstance(data, dict)
    assert data[os.fsencode("LABOX_ARTIFACTS")] == os.fsencode("maybe")
    monkeypatch.delenv("LABOX_ARTIFACTS")
    assert os.fsencode("LABOX_ARTIFACTS") not in data


def test_the_key_changes_with_every_variable_the_settings_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in _ENV_NAMES:
        before = _environment_key()
        monkeypatch.setenv(name, "x" if os.environ.get(name) != "x" else "y")
        assert _environment_key() != before, name


def test_settings_follow_a_changed_variable_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOX_ARTIFACTS", "false")
    assert current_settings().artifacts is False
    monkeypatch.setenv("LABOX_ARTIFACTS", "true")
    assert current_settings().artifacts is True
    monkeypatch.delenv("LABOX_ARTIFACTS")
    assert current_settings().artifacts is True  # the default


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("LABOX_ARTIFACTS", "maybe", "true or false"),
        ("LABOX_DB_POOL_SIZE", "abc", "a valid integer"),
        ("LABOX_DB_POOL_TIMEOUT", "-5", "greater than 0"),
        ("LABOX_DB_POOL", "big", "'queue' or 'null'"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable_its_value_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(InvalidSettingError) as caught:
        current_settings()

    message = str(caught.value)
    assert f"{variable}={value!r}" in message
    assert allowed in message
    assert "unable to" not in message  # pydantic's explanation of its parse, not the rule
    assert isinstance(caught.value, ValueError)


def test_a_relative_home_follows_the_working_directory_an_absolute_one_never_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """os.getcwd releases the GIL (a switch interval for a task's thread on a busy process):
    it is read for a relative LABOX_HOME only."""
    for name in ("LABOX_DATABASE_URL", "LABOX_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABOX_HOME", "results-home")
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        monkeypatch.chdir(folder)
        assert current_settings().resolved_storage_url() == f"{folder}/results-home/storage"
        assert (
            current_settings().resolved_database_url().endswith(f"{folder}/results-home/labox.db")
        )

    reads: list[str] = []
    real_getcwd = os.getcwd
    monkeypatch.setattr(os, "getcwd", lambda: reads.append("cwd") or real_getcwd())
    for home, expected in ((tmp_path / "abs", tmp_path / "abs"), ("~/h", Path.home() / "h")):
        monkeypatch.setenv("LABOX_HOME", str(home))
        assert current_settings().resolved_storage_url() == f"{expected}/storage"
        assert (
            current_settings().resolved_database_url() == f"sqlite+aiosqlite:///{expected}/labox.db"
        )
    assert reads == []
