"""Class ids: normalised, per class, derived with one warning when missing."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass

import pytest

from labox_prefect.core import StorableTypeError
from labox_prefect.core.builtin import StorableDataclass
from labox_prefect.core.extra.pydantic import StorableModel
from labox_prefect.core.storable import Storable, normalize_class_id


def test_short_hex_ids_are_padded_into_uuids() -> None:
    assert normalize_class_id("abcdef12") == uuid.UUID("abcdef12000000000000000000000000")
    full = uuid.uuid4()
    assert normalize_class_id(full.hex) == full
    assert normalize_class_id(str(full)) == full


@pytest.mark.parametrize("bad", ["abc", "xyz12345", "0" * 33, ""])
def test_malformed_ids_name_the_rule_and_an_example(bad: str) -> None:
    with pytest.raises(ValueError, match="8 to 32 hexadecimal digits"):
        normalize_class_id(bad)


def test_subclass_does_not_inherit_its_parents_id() -> None:
    class Parent(StorableModel, class_id="11111111"):
        a: int

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        class Child(Parent):
            b: int

        assert Child.storable_class_id() != Parent.storable_class_id()
    assert Child.has_explicit_class_id() is False


def test_derived_id_warns_once_with_the_id_to_pin() -> None:
    @dataclass
    class Unpinned(StorableDataclass):
        a: int

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = Unpinned.storable_class_id()
        second = Unpinned.storable_class_id()
    assert first == second
    assert len(caught) == 1
    pinned_hex = str(caught[0].message).split("class_id=")[1].split("'")[1]
    assert normalize_class_id(pinned_hex) == first


def test_a_storable_without_unpacker_says_how_to_get_one() -> None:
    class Bare(Storable, class_id="22222222"):
        pass

    with pytest.raises(StorableTypeError, match="derive it from StorableModel"):
        Bare.storable_unpacker()
