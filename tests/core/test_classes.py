"""Class identity in stored values: pinned ids, module:qualname, and lookups that never import."""

from __future__ import annotations

import pytest

from labox_prefect.core import NotRegisteredError, SerializationError
from labox_prefect.core.builtin.serializers.tree import decode_value, encode_value
from labox_prefect.core.classes import class_identity, find_class
from labox_prefect.core.extra.pydantic import StorableModel
from labox_prefect.core.testing import Box, forgotten, same


class Pinned(StorableModel, class_id="3e5a7c9b1d2f4a60"):
    n: int


def test_pinned_classes_are_named_by_id_and_others_by_module_and_name() -> None:
    assert class_identity(Pinned, lambda: "value") == "@3e5a7c9b1d2f4a600000000000000000"
    assert class_identity(Box, lambda: "value") == "labox_prefect.core.testing.samples:Box"


def test_a_nested_pinned_model_round_trips_and_needs_its_class_defined() -> None:
    tree = encode_value({"m": (Pinned(n=1),)})
    assert same({"m": (Pinned(n=1),)}, decode_value(tree))
    with forgotten(Pinned), pytest.raises(NotRegisteredError, match="3e5a7c9b1d2f4a60"):
        decode_value(tree)


def test_a_name_must_find_a_class_of_the_expected_kind() -> None:
    with pytest.raises(SerializationError, match="not a Enum"):
        find_class("labox_prefect.core.testing.samples:Box", "Enum", lambda c: False)
    # a function found by walking vars() is refused by kind, never called
    with pytest.raises(SerializationError, match="not a dataclass"):
        find_class("labox_prefect.core.testing.samples:nested_samples", "dataclass", bool)
    with pytest.raises(NotRegisteredError, match="`import not_imported_anywhere`"):
        find_class("not_imported_anywhere:Thing", "dataclass", bool)
