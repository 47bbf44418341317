"""Every error the Prefect integration raises, each a ``labox_prefect.core.LaboxError``.

One place, exported from ``labox_prefect`` (tests/integration/test_errors.py checks that the
exported list is complete). A failed run's recorded exception, ``RunFailure``, is part of
the pointer format and lives in ``labox_prefect.pointer``.
"""

from __future__ import annotations

from labox_prefect.core import LaboxError, NotRegisteredError


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
    """A stored result's class id is unknown to this process's registry."""


class ResultComponentNotRegisteredError(NotRegisteredError):
    """A stored result names a serializer, unpacker or storage this process has not
    registered; the message says which, and which setting registers it."""


class ResultTargetError(LaboxError, LookupError):
    """A named LaboxResultStorage block cannot be found or read, so no target can be resolved."""


__all__ = [
    "ResultClassNotRegisteredError",
    "ResultComponentNotRegisteredError",
    "ResultKeyNotFoundError",
    "ResultNotStorableError",
    "ResultPersistenceError",
    "ResultPointerError",
    "ResultTargetError",
]
