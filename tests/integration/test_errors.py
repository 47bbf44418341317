"""A labox_task whose output cannot be persisted fails its run with the clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from labox_prefect import labox_task
from tests.integration.conftest import Backend


class Opaque:
    """A type no registry has a serializer for."""


@labox_task
def opaque() -> Opaque:
    return Opaque()


@labox_task
def long_text() -> str:
    return "x" * 100_000


def test_unregistered_type_fails_the_task_with_the_fix(backend: Backend) -> None:
    @flow
    def pipeline() -> tuple[bool, str]:
        state = opaque(return_state=True)
        return state.is_failed(), state.message or ""

    failed, message = pipeline()

    assert failed
    assert "ResultNotStorableError" in message
    assert f"{Opaque.__module__}.Opaque" in message
    assert "LABOX_REGISTRY_MODULES" in message
    assert "never pickled" in message


def test_unreachable_storage_fails_the_task(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the storage folder should be")
    monkeypatch.setenv("LABOX_STORAGE_URL", str(blocked / "storage"))

    @flow
    def pipeline() -> tuple[bool, str]:
        state = long_text(return_state=True)
        return state.is_failed(), state.message or ""

    failed, message = pipeline()

    assert failed
    assert "could not persist its result through Labox" in message
