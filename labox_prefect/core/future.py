"""The futures that ``save_soon`` and ``load_soon`` return."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from labox_prefect.core.errors import SaveNotCompleteError

T = TypeVar("T")

_PENDING = object()


class Future(Generic[T]):
    """A result that exists once the saver or loader context has exited.

    ``value`` gives the result, or raises the exception of this one object: a failure of
    one object never hides the results of the others.
    """

    __slots__ = ("_error", "_value")

    def __init__(self) -> None:
        self._value: object = _PENDING
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._value is not _PENDING or self._error is not None

    @property
    def value(self) -> T:
        if self._error is not None:
            raise self._error
        if self._value is _PENDING:
            raise SaveNotCompleteError(
                "This future's value exists once its `async with new_saver(...)` / "
                "`new_loader(...)` block has exited; read it after the block."
            )
        return self._value  # type: ignore[return-value]

    @property
    def exception(self) -> BaseException | None:
        return self._error

    def set_value(self, value: T) -> None:
        self._value = value

    def set_exception(self, error: BaseException) -> None:
        self._error = error


def settle_failures(futures: Sequence[Future[Any]], outcomes: Sequence[object]) -> list[Exception]:
    """Give every failed outcome to its own future; return the failures in request order.

    Cancellation and interrupts are not failures of one object: they propagate at once.
    """
    failures: list[Exception] = []
    for future, outcome in zip(futures, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            future.set_exception(outcome)
            failures.append(outcome)
    return failures


def raise_first_failure(failures: Sequence[Exception], what: str) -> None:
    """Raise the first failure itself (not a group), noting how many ``what`` failed too."""
    if not failures:
        return
    first = failures[0]
    if len(failures) > 1:
        first.add_note(
            f"{len(failures) - 1} more {what} failed too; read each future's .value for its "
            f"own error."
        )
    raise first
