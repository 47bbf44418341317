"""Finding registry modules by name: the modules whose import registers Labox classes
(LABOX_REGISTRY_MODULES, ``labox_task(registry_modules=[...])``).

Both the door (labox_prefect.persistence) and the command line (labox_prefect.cli.output)
refuse a name Python cannot find before anything is imported, and say the same fix. Looking
a module up imports nothing but its parent packages (``importlib.util.find_spec``), and this
module imports only the standard library.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

NOT_FOUND_FIX = "install the package that provides it or put its folder on PYTHONPATH"
"""What to do about a registry module Python cannot find (a sentence's clause)."""


def first_not_found(modules: Iterable[str]) -> str | None:
    """The first of ``modules`` Python cannot find by name, or None when it finds them all.

    A missing parent package, or a relative name, counts as not found.
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return module
    return None


__all__ = ["NOT_FOUND_FIX", "first_not_found"]
