"""Helpers shared by the stream serializers."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def closing_source(source: AsyncIterable[Any]) -> AsyncIterator[None]:
    """Close ``source`` (if it can be closed) however the block ends.

    A serializer that stops early, on an error or because its own consumer closed it, must
    not leave the stream it reads from suspended with a file or connection open.
    """
    try:
        yield
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
