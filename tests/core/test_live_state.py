"""live_kind: what is live state of a process (no serializer can store it), and what is not."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from typing import Any

import pytest

from labox_prefect.core import live_kind


def _generator() -> Any:
    yield 1


async def _coroutine() -> None:
    return None


def test_live_state_is_named_by_its_kind(tmp_path: Any) -> None:
    coroutine = _coroutine()
    with open(tmp_path / "f", "w") as opened, socket.socket() as connection:
        kinds = {
            "a lock": [threading.Lock(), threading.RLock(), threading.Event()],
            "a thread": [threading.Thread(target=print)],
            "an open file or socket": [opened, connection, io.BytesIO()],
            "a generator": [_generator()],
            "a coroutine": [coroutine],
            "a function": [len, _generator, print, str.upper],
            "a class": [int, threading.Thread],
            "a module": [asyncio],
        }
        for kind, objects in kinds.items():
            for obj in objects:
                assert live_kind(obj) == kind, obj
    coroutine.close()


@pytest.mark.parametrize("value", [1, "x", b"x", [len], {"a": 1}, object(), None])
def test_data_is_not_live_state(value: Any) -> None:
    assert live_kind(value) is None
