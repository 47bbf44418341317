"""Registry: precedence, inference through the MRO, and errors that list what exists."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from labox_prefect.core import (
    NotRegisteredError,
    Registry,
    SerializedData,
    Serializer,
    StorageNotConfiguredError,
)
from labox_prefect.core.builtin import (
    MemoryStorage,
    StorableValue,
    json_serializer,
    values_serializer,
)


class LoudJson(Serializer[dict[str, object]]):
    name = "test.loud-json@v1"
    types = (dict,)
    content_types = ("application/json",)

    def serialize_data(self, value: dict[str, object], /) -> SerializedData:
        return SerializedData(b"{}", "application/json")

    def deserialize_data(self, content: SerializedData, /) -> dict[str, object]:
        return {}


def test_explicit_components_beat_registries_which_beat_modules() -> None:
    base = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    assert base.infer_serializer(dict) is values_serializer
    loud = LoudJson()
    merged = Registry(registries=[base], serializers=[loud])
    assert merged.infer_serializer(dict) is loud
    assert merged.infer_serializer(OrderedDict) is loud  # found through the MRO
    assert merged.get_serializer("labox.json@v1") is json_serializer
    assert merged.get_storable(StorableValue.storable_class_id()) is StorableValue


def test_missing_components_are_named_with_what_is_registered() -> None:
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=MemoryStorage())
    with pytest.raises(NotRegisteredError, match=r"No serializer named 'nope@v1'.*labox\.json@v1"):
        registry.get_serializer("nope@v1")
    with pytest.raises(NotRegisteredError, match=r"No serializer is registered for .*memoryview"):
        registry.infer_serializer(memoryview)
    with pytest.raises(NotRegisteredError, match="No storage named"):
        registry.get_storage("elsewhere@v1")


def test_a_registry_without_default_storage_has_none_and_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_HOME", str(tmp_path))  # read by the integration only
    registry = Registry(modules=["labox_prefect.core.builtin"])
    assert not registry.has_default_storage
    with pytest.raises(StorageNotConfiguredError, match=r"default_storage=FileStorage"):
        _ = registry.default_storage
    given = registry.with_default_storage(MemoryStorage())
    assert isinstance(given.default_storage, MemoryStorage)
    assert given.get_storage("labox.memory@v1") is given.default_storage
    assert not (tmp_path / "storage").exists()


def test_a_registry_refuses_things_that_are_not_components() -> None:
    with pytest.raises(TypeError, match="is not a storable class, unpacker, serializer or storage"):
        Registry(serializers=["json"])  # type: ignore[list-item]
