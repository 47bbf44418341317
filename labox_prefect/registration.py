"""Registers the ``labox`` serializer type and the ``labox-result-storage`` block with Prefect.

Prefect resolves a stored record's serializer, and a saved block's type, by name among the
classes defined so far: without these two, a cached result is silently treated as missing.
This module is what the package's ``prefect.collections`` entry point names (workers and
block loads import it), and what ``import labox_prefect`` imports as soon as Prefect is
imported (labox_prefect/__init__.py, through a post-import hook).

The hook runs right after Prefect's own import, which may be halfway through the import of
an integration module (the first one to import Prefect). So the two modules imported here
only import Prefect, pydantic and labox_prefect.pointer at module level, and reach the door
(labox_prefect.persistence) when called: their import never needs a module that may be
half imported, and this module touches neither's names (one of them may be that module).
"""

from __future__ import annotations

import labox_prefect.result_storage
import labox_prefect.serializer  # noqa: F401  (defines the serializer type)
