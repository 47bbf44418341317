"""The futures that ``save_soon`` and ``load_soon`` return."""

from __future__ import annotations

from typing import Generic, TypeVar

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
