"""Built-in storable families: dataclasses, plain values and async streams."""

from labox_prefect.core.builtin.storables.dataclass import (
    StorableDataclass,
    StorableDataclassUnpacker,
)
from labox_prefect.core.builtin.storables.fields import BODY_KEY, ContentSpec
from labox_prefect.core.builtin.storables.value import (
    StorableStream,
    StorableStreamUnpacker,
    StorableValue,
    StorableValueUnpacker,
)

__all__ = [
    "BODY_KEY",
    "ContentSpec",
    "StorableDataclass",
    "StorableDataclassUnpacker",
    "StorableStream",
    "StorableStreamUnpacker",
    "StorableValue",
    "StorableValueUnpacker",
]
