"""Errors: a labox_task whose output cannot be persisted fails its run with the clear error,
and every error of the integration is exported from ``labox_prefect``."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

import labox_prefect
from labox_prefect import ResultNotStorableError, labox_task
from labox_prefect.core import LaboxError
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
    assert "Return the data it holds" in message
    assert message.count("Serializer") == 1  # the fix said once, in the integration's terms
    assert "Registry(serializers=" not in message


@labox_task
def live_lock() -> object:
    return threading.Lock()


@labox_task
def live_function() -> object:
    return len


@labox_task
def live_lock_inside() -> object:
    return {"a": [1, {"lock": threading.Lock()}]}


@pytest.mark.parametrize(
    ("task", "kind"),
    [(live_lock, "a lock"), (live_function, "a function"), (live_lock_inside, "a lock")],
)
def test_live_state_is_refused_without_advice_to_write_a_serializer(
    backend: Backend, task: Any, kind: str
) -> None:
    @flow
    def pipeline() -> BaseException:
        state = task(return_state=True)
        assert state.is_failed()
        error: BaseException = state.result(raise_on_failure=False)
        return error

    error = pipeline()

    assert isinstance(error, ResultNotStorableError)
    message = str(error)
    assert f"{kind} is live state of this process, not data" in message
    assert "the data it holds" in message
    assert "serializer" not in message.lower()
    assert "LABOX_REGISTRY_MODULES" not in message
    # The message is whole: no chained core error repeats it with internal frames.
    assert error.__cause__ is None
    assert error.__suppress_context__


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


def _integration_modules() -> list[str]:
    package = Path(labox_prefect.__file__).parent
    return sorted(
        "labox_prefect." + ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
        and "core" not in path.relative_to(package).parts
        and "migrations" not in path.relative_to(package).parts
    )


def test_every_integration_error_is_exported_from_the_package() -> None:
    defined = {
        cls
        for module in _integration_modules()
        for cls in vars(importlib.import_module(module)).values()
        if isinstance(cls, type)
        and issubclass(cls, LaboxError)
        and cls.__module__.startswith("labox_prefect.")
        and not cls.__module__.startswith("labox_prefect.core")
    }

    assert ResultNotStorableError in defined  # the walk found the integration's errors
    for cls in defined:
        assert cls.__name__ in labox_prefect.__all__, f"{cls.__module__}.{cls.__name__}"
        assert getattr(labox_prefect, cls.__name__) is cls
    for name in labox_prefect.__all__:
        assert getattr(labox_prefect, name) is not None


def test_the_errors_a_user_catches_are_exported_from_the_package() -> None:
    from labox_prefect.core import InvalidTagsError as CoreInvalidTagsError

    assert labox_prefect.LaboxError is LaboxError
    assert labox_prefect.InvalidTagsError is CoreInvalidTagsError


def test_one_argument_error_class_for_the_core_and_the_integration() -> None:
    from labox_prefect import errors
    from labox_prefect.core import InvalidArgumentError as CoreInvalidArgumentError

    assert labox_prefect.InvalidArgumentError is CoreInvalidArgumentError
    assert errors.InvalidArgumentError is CoreInvalidArgumentError
    assert "InvalidArgumentError" in errors.__all__
