"""``DatabaseStorage``, importable from the batteries as before.

It lives in ``labox_prefect.core.inline_storage``: every registry holds one for small JSON
bodies, and a registry (a contract) imports no battery.
"""

from __future__ import annotations

from labox_prefect.core.inline_storage import DEFAULT_MAX_SIZE, DatabaseStorage

__all__ = ["DEFAULT_MAX_SIZE", "DatabaseStorage"]
