"""LABOX_* settings: read from the environment as it is at each call, cheaply."""

from __future__ import annotations

import os

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
