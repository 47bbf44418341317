"""Named, versioned components: what records point at instead of import paths.

A content record stores the *name* of its serializer and storage (``"labox.json@v1"``), never
a module path, so loading resolves components through the registry only and stored data can
never make us import code.
"""

from __future__ import annotations

import re

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+@v\d+$")


def check_component_name(name: str, owner: object) -> str:
    """Return ``name`` if it is a versioned component name, else raise a ValueError."""
    if not _NAME_PATTERN.match(name):
        msg = (
            f"{type(owner).__name__} has the name {name!r}; component names look like "
            f"'package.thing@v1' (letters, digits, '.', '_', '-', then '@v' and a version)."
        )
        raise ValueError(msg)
    return name


class Component:
    """Base of serializers, storages and unpackers: something registered under a name."""

    name: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
