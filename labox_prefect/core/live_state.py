"""Objects that are live state of a process, not data: no serializer can store them.

A lock, a thread, an open file or socket, a generator or coroutine, a function, a class or a
module means something only in the process that holds it; stored and read back in another
process it could not be what it was. Refusals name them as such (``live_kind``) instead of
advising a serializer for their type.
"""

from __future__ import annotations

import inspect
import io
import socket
import threading
from collections.abc import Callable
from typing import Any

_LOCKS = (type(threading.Lock()), type(threading.RLock()), threading.Condition, threading.Event)

_KINDS: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (inspect.isclass, "a class"),
    (inspect.ismodule, "a module"),
    (lambda obj: inspect.isgenerator(obj) or inspect.isasyncgen(obj), "a generator"),
    (inspect.iscoroutine, "a coroutine"),
    (lambda obj: isinstance(obj, _LOCKS), "a lock"),
    (lambda obj: isinstance(obj, threading.Thread), "a thread"),
    (lambda obj: isinstance(obj, io.IOBase | socket.socket), "an open file or socket"),
    (inspect.isroutine, "a function"),
)


def live_kind(obj: Any) -> str | None:
    """What ``obj`` is ("a lock", "a function"...) when it is live state of this process (a
    class, a module, a generator or coroutine, a lock, a thread, an open file or socket, a
    function); None for anything else."""
    return next((what for test, what in _KINDS if test(obj)), None)


__all__ = ["live_kind"]
