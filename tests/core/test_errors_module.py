"""One errors module for the core, and every error exported from the core's face."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import labox_prefect.core
from labox_prefect.core import LaboxError
from labox_prefect.core import errors as errors_module


def _core_modules() -> list[str]:
    names = ["labox_prefect.core"]
    for info in pkgutil.walk_packages(labox_prefect.core.__path__, "labox_prefect.core."):
        if ".migrations.versions" not in info.name and not info.name.endswith(".env"):
            names.append(info.name)
    return names


def _errors_defined_in_the_core() -> dict[str, type[LaboxError]]:
    found: dict[str, type[LaboxError]] = {}
    for name in _core_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, LaboxError)
                and value.__module__.startswith("labox_prefect.core")
            ):
                found[value.__qualname__] = value
    return found


def test_every_core_error_is_exported_from_the_core() -> None:
    defined = _errors_defined_in_the_core()
    assert len(defined) >= 20
    assert "InvalidArgumentError" in defined
    missing = sorted(set(defined) - set(labox_prefect.core.__all__))
    assert missing == []
    for name, cls in defined.items():
        assert getattr(labox_prefect.core, name) is cls


def test_every_core_error_lives_in_the_errors_module() -> None:
    defined = _errors_defined_in_the_core()
    elsewhere = sorted(n for n, c in defined.items() if c.__module__ != errors_module.__name__)
    assert elsewhere == []
    assert sorted(defined) == sorted(errors_module.__all__)


def test_old_homes_of_errors_still_import() -> None:
    from labox_prefect.core.loader import ManifestNotFoundError
    from labox_prefect.core.migrations import SchemaMismatchError
    from labox_prefect.core.query import UnsupportedDatabaseError
    from labox_prefect.core.tags import InvalidTagsError

    assert ManifestNotFoundError is errors_module.ManifestNotFoundError
    assert SchemaMismatchError is errors_module.SchemaMismatchError
    assert UnsupportedDatabaseError is errors_module.UnsupportedDatabaseError
    assert InvalidTagsError is errors_module.InvalidTagsError


def test_argument_errors_are_value_errors_of_the_framework() -> None:
    error = errors_module.InvalidArgumentError("limit must be a positive int, not 0.")
    assert isinstance(error, LaboxError)
    assert isinstance(error, ValueError)
