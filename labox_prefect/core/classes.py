"""How stored data names a class of the user's, and how a name finds the class again.

Stored values name classes (pydantic models, dataclasses, Enums, NamedTuples) by one of two
identities:

- ``"@<32 hex digits>"``: the pinned ``class_id`` of a Storable class (see storable.py).
  Renaming or moving the class keeps old records loadable, as long as the id stays.
- ``"<module>:<qualname>"``: every other class, e.g. ``"shop.models:Order.Line"``. A class
  defined in a script run as ``__main__`` is named by the module it would have when imported
  if Python knows it (``python -m shop.flow`` gives ``"shop.flow:Order"``, and
  ``python flow.py`` gives ``"flow:Order"``, found again in the script itself and by any
  process that ran ``import flow``); a script Python cannot name stays ``"__main__:Order"``,
  which only a process running a script that defines the same class finds again. Renaming
  or moving such a class makes old records unreadable until a class with the old name
  exists again (an alias in the old module works: ``OldName = NewName``).

Finding a class never imports anything: a name is resolved only among modules already in
``sys.modules``, by walking the modules' and classes' ``vars()`` (no ``getattr``, so no
module ``__getattr__`` hook runs), and the class found must be of the kind the data expects.
A process that has not imported the class gets a ClassNotDefinedError naming the class and the
module to import.
"""

from __future__ import annotations

import keyword
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labox_prefect.core.errors import ClassNotDefinedError, SerializationError
from labox_prefect.core.storable import Storable, pinned_storable

PINNED_PREFIX = "@"

_identities: dict[type[Any], str] = {}


def class_identity(cls: type[Any], where: Callable[[], str]) -> str:
    """The name stored for ``cls``; SerializationError if that name would not find it again.

    ``where()`` says where in the value the class was met, for the error message.
    """
    if (known := _identities.get(cls)) is not None:
        return known
    if issubclass(cls, Storable) and cls.has_explicit_class_id():
        identity = PINNED_PREFIX + cls.storable_class_id().hex
    else:
        identity = qualified_name(cls)
        if _find(identity) is not cls:
            raise SerializationError(
                f"Cannot save {where()}: its class {cls.__module__}.{cls.__qualname__} cannot be "
                f"found again by its module and name (it is defined inside a function, created "
                f"dynamically or shadowed). Define it at the top level of a module"
                + (
                    ", or derive it from a Storable base with a pinned class_id"
                    if issubclass(cls, Storable)
                    else ""
                )
                + "."
            )
    _identities[cls] = identity
    return identity


def find_class(identity: str, kind: str, is_kind: Callable[[type[Any]], bool]) -> type[Any]:
    """The class named ``identity``, which must satisfy ``is_kind`` (a ``kind`` of class).

    Raises ClassNotDefinedError when no imported module defines it, SerializationError when
    the name finds something of another kind.
    """
    if identity.startswith(PINNED_PREFIX):
        try:
            class_id = uuid.UUID(identity[len(PINNED_PREFIX) :])
        except ValueError:
            raise SerializationError(
                f"The stored class name {identity!r} is not a class id; the content is corrupted."
            ) from None
        found: Any = pinned_storable(class_id)
        if found is None:
            raise ClassNotDefinedError(
                f"No storable class with class_id {class_id} is defined in this process; import "
                f"the module that defines the {kind} (the one saved with class_id "
                f"{class_id.hex[:16]!r}) before loading."
            )
    else:
        found = _find(identity)
        if found is None:
            module, _, qualname = identity.partition(":")
            how = (
                f"it was saved from a script run as __main__: load it from a script that "
                f"defines {qualname} the same way, or move {qualname} to an importable module "
                f"and save again"
                if module == "__main__"
                else f"`import {module}` before loading"
            )
            raise ClassNotDefinedError(
                f"The {kind} {qualname} of module {module} is not defined in this process; "
                f"{how}. Stored data never imports code.",
                module,
                qualname,
            )
    if not (isinstance(found, type) and is_kind(found)):
        raise SerializationError(
            f"The stored class name {identity!r} finds {found!r}, which is not a {kind}; the "
            f"class was replaced by something else since the value was saved."
        )
    return found


def qualified_name(cls: type[Any]) -> str:
    """``"<module>:<qualname>"`` of ``cls``, a script's module named as it would be imported."""
    return f"{_module_name(cls)}:{cls.__qualname__}"


def _module_name(cls: type[Any]) -> str:
    module = cls.__module__
    if module == "__main__":
        return _main_name() or module
    return module


def _main_name() -> str | None:
    """The name the ``__main__`` script would have if imported, when Python can tell.

    ``python -m shop.flow`` records it in ``__spec__``; ``python shop/flow.py`` puts the
    script's folder first on ``sys.path``, so the file ``flow.py`` there imports as ``flow``.
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py") or not sys.path:
        return None
    script = Path(path).resolve()
    first = Path(sys.path[0] or ".").resolve()
    stem = script.stem
    if script.parent != first or not stem.isidentifier() or keyword.iskeyword(stem):
        return None
    return stem


def _find(identity: str) -> Any:
    module_name, _, qualname = identity.partition(":")
    module = sys.modules.get(module_name)
    if module is None and module_name == _main_name():
        module = sys.modules.get("__main__")
    if module is None or not qualname:
        return None
    found: Any = module
    for part in qualname.split("."):
        try:
            namespace = vars(found)
        except TypeError:
            return None
        found = namespace.get(part)
        if found is None:
            return None
    return found
