"""Every error the Prefect integration raises, each a ``labox_prefect.core.LaboxError``.

One place, exported from ``labox_prefect`` (tests/integration/test_errors.py checks that the
exported list is complete). A failed run's recorded exception, ``RunFailure``, is part of
the pointer format and lives in ``labox_prefect.pointer``. ``InvalidArgumentError`` is the
core's own class (``labox_prefect.core.InvalidArgumentError``), re-exported here: the same
class whether the core or the integration refused the argument.
"""

from __future__ import annotations

import uuid

from labox_prefect.core import (
    ClassNotDefinedError,
    InvalidArgumentError,
    LaboxError,
    NotRegisteredError,
)


class ResultNotStorableError(LaboxError, TypeError):
    """A result cannot be saved through Labox (and will not be pickled instead).

    Raised inside the task run, so the run fails with it; the message says which serializer
    or module to register.
    """


class ResultPersistenceError(LaboxError, RuntimeError):
    """A labox_task's output could not be saved (database or storage failed); the run fails."""


class ResultPointerError(LaboxError, ValueError):
    """Bytes given to LaboxSerializer.loads are not a pointer it wrote (labox_prefect.pointer)."""


class ResultKeyNotFoundError(LaboxError, FileNotFoundError):
    """No result is stored under a Prefect storage key (Prefect reads it as a cache miss)."""


class ResultClassNotRegisteredError(NotRegisteredError):
    """A class a stored result needs (its Storable class, or a pydantic model, dataclass...
    inside its value) is not imported in this process, so the result cannot be loaded.

    ``manifest_id``: the record; ``class_name``: the class (``qualname``, else its class id);
    ``module``: the module that defines it ("" when the record does not say). The message
    names the record, its task and flow, and the fix (import the module, or name it in
    LABOX_REGISTRY_MODULES).
    """

    def __init__(
        self, message: str, manifest_id: uuid.UUID, class_name: str, module: str = ""
    ) -> None:
        super().__init__(message, manifest_id, class_name, module)
        self.manifest_id = manifest_id
        self.class_name = class_name
        self.module = module

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def of_record(
        cls,
        manifest_id: uuid.UUID,
        class_id: uuid.UUID,
        cause: ClassNotDefinedError,
        *,
        task_name: str | None = None,
        flow_name: str | None = None,
        result_type: str | None = None,
    ) -> ResultClassNotRegisteredError:
        """The error for a record whose load met ``cause`` (a class not found), with the fix.

        ``task_name``, ``flow_name``, ``result_type`` (``module:qualname``): the record's tags.
        """
        if cause.module:  # a class inside the value: the record's class id is not its
            module, qualname = cause.module, cause.qualname
            known_by = "inside the stored value"
        else:  # the Storable class itself: the record's result type names it, if anything
            module, _, qualname = (result_type or "").partition(":")
            known_by = f"class id {class_id}"
        origin = ", ".join(
            f"{label} {name!r}"
            for label, name in (("task", task_name), ("flow", flow_name))
            if name is not None
        )
        what = f"the class {qualname} of module {module}" if qualname else "a class"
        if module == "__main__":
            fix = (
                "it was saved from a script Python could not name: move the class to a module, "
                "save again, and import that module before loading"
            )
        elif module:
            fix = (
                f"`import {module}` before loading, or name {module} in LABOX_REGISTRY_MODULES "
                f"(comma-separated module names, read at each load)"
            )
        else:
            fix = (
                "import the module that defines it before loading, or name that module in "
                "LABOX_REGISTRY_MODULES (comma-separated module names, read at each load)"
            )
        message = (
            f"Result {manifest_id}{f' (from {origin})' if origin else ''} needs {what} "
            f"({known_by}), which this process has not imported, so it cannot be loaded. "
            f"Classes are never imported because a record names them: {fix}."
        )
        return cls(message, manifest_id, qualname or str(class_id), module)


class ResultComponentNotRegisteredError(NotRegisteredError):
    """A stored result names a serializer, unpacker or storage this process has not
    registered; the message says which, and which setting registers it."""


class ArgumentTypeError(LaboxError, TypeError):
    """An argument of a public function (``find_results``, ``labox_task``...) has a type it
    does not take; the message names the argument and what it takes."""


class InvalidSettingError(LaboxError, ValueError):
    """A ``LABOX_*`` environment variable (or a LaboxResultStorage block's field) holds a
    value its setting does not take; the message names the setting, its value (never a URL's:
    it may hold a password) and the values allowed."""


class RegistryModuleNotFoundError(LaboxError, ModuleNotFoundError):
    """A module named in ``labox_task(registry_modules=[...])`` cannot be found; raised when
    the task is defined, and the message names the module, the task and the fix."""


class RegistryModuleImportError(LaboxError, ImportError):
    """A registry module was found but its import raised. Named in
    ``labox_task(registry_modules=[...])``, it fails the runs of the tasks that name it (before
    their function runs) and no other; named in ``LABOX_REGISTRY_MODULES``, every save and load
    of the process. The message names the module, the exception its import raised (also the
    ``__cause__``) and the fix; ``name`` is the module."""


class DatabaseNotInitializedError(LaboxError, LookupError):
    """A read (``find_results``, ``get_result``, a ``labox-prefect`` command) found no Labox
    tables in its database, or no SQLite file. Reads never create or migrate the schema; the
    message names the database and the fix (``labox-prefect db upgrade``, or a first save)."""


class ResultTargetError(LaboxError, LookupError):
    """A named LaboxResultStorage block cannot be found or read, so no target can be resolved."""


__all__ = [
    "ArgumentTypeError",
    "DatabaseNotInitializedError",
    "InvalidArgumentError",
    "InvalidSettingError",
    "RegistryModuleImportError",
    "RegistryModuleNotFoundError",
    "ResultClassNotRegisteredError",
    "ResultComponentNotRegisteredError",
    "ResultKeyNotFoundError",
    "ResultNotStorableError",
    "ResultPersistenceError",
    "ResultPointerError",
    "ResultTargetError",
]
