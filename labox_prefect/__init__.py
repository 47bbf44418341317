"""labox-prefect: every Prefect task output as a typed, tagged, queryable Labox record.

Importing this package imports neither Prefect nor the integration: the public names below
are loaded on first use (PEP 562), so ``import labox_prefect.core`` stays light. It does
register the ``labox`` result serializer type and the ``labox-result-storage`` block with
Prefect, as soon as Prefect is imported (at once if it already is): a process that only
*reads* results through Prefect needs nothing more than ``import labox_prefect``. Workers
and block loads find them through the ``prefect.collections`` entry point
(labox_prefect.registration).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

import wrapt

if TYPE_CHECKING:
    from labox_prefect.core.errors import InvalidArgumentError, InvalidTagsError, LaboxError
    from labox_prefect.errors import (
        ArgumentTypeError,
        DatabaseNotInitializedError,
        InvalidSettingError,
        RegistryModuleImportError,
        RegistryModuleNotFoundError,
        ResultClassNotRegisteredError,
        ResultComponentNotRegisteredError,
        ResultKeyNotFoundError,
        ResultNotStorableError,
        ResultPersistenceError,
        ResultPointerError,
        ResultTargetError,
    )
    from labox_prefect.locking import LaboxLockManager
    from labox_prefect.pointer import RunFailure
    from labox_prefect.result_storage import LaboxResultStorage
    from labox_prefect.results import ResultRef, afind_results, find_results
    from labox_prefect.serializer import LaboxSerializer
    from labox_prefect.task import LaboxTask, labox_task

_PUBLIC = {
    "ArgumentTypeError": "labox_prefect.errors",
    "DatabaseNotInitializedError": "labox_prefect.errors",
    "InvalidArgumentError": "labox_prefect.core.errors",
    "InvalidSettingError": "labox_prefect.errors",
    "InvalidTagsError": "labox_prefect.core.errors",
    "LaboxError": "labox_prefect.core.errors",
    "LaboxLockManager": "labox_prefect.locking",
    "LaboxResultStorage": "labox_prefect.result_storage",
    "LaboxSerializer": "labox_prefect.serializer",
    "LaboxTask": "labox_prefect.task",
    "RegistryModuleImportError": "labox_prefect.errors",
    "RegistryModuleNotFoundError": "labox_prefect.errors",
    "ResultClassNotRegisteredError": "labox_prefect.errors",
    "ResultComponentNotRegisteredError": "labox_prefect.errors",
    "ResultKeyNotFoundError": "labox_prefect.errors",
    "ResultNotStorableError": "labox_prefect.errors",
    "ResultPersistenceError": "labox_prefect.errors",
    "ResultPointerError": "labox_prefect.errors",
    "ResultRef": "labox_prefect.results",
    "ResultTargetError": "labox_prefect.errors",
    "RunFailure": "labox_prefect.pointer",
    "afind_results": "labox_prefect.results",
    "find_results": "labox_prefect.results",
    "labox_task": "labox_prefect.task",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'labox_prefect' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


def _register_with_prefect(_prefect: ModuleType) -> None:
    import_module("labox_prefect.registration")


wrapt.register_post_import_hook(_register_with_prefect, "prefect")

__all__ = [
    "ArgumentTypeError",
    "DatabaseNotInitializedError",
    "InvalidArgumentError",
    "InvalidSettingError",
    "InvalidTagsError",
    "LaboxError",
    "LaboxLockManager",
    "LaboxResultStorage",
    "LaboxSerializer",
    "LaboxTask",
    "RegistryModuleImportError",
    "RegistryModuleNotFoundError",
    "ResultClassNotRegisteredError",
    "ResultComponentNotRegisteredError",
    "ResultKeyNotFoundError",
    "ResultNotStorableError",
    "ResultPersistenceError",
    "ResultPointerError",
    "ResultRef",
    "ResultTargetError",
    "RunFailure",
    "afind_results",
    "find_results",
    "labox_task",
]
