"""The door's hand-off: one table, one entry per task run, each slot taken once, bounded."""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import sys
import types
import uuid

import pandas as pd
import pytest

from labox_prefect.core import ManifestRecord, Registry
from labox_prefect.errors import RegistryModuleImportError
from labox_prefect.persistence import (
    HANDOFF_RUNS,
    Handoff,
    SavedResult,
    _not_storable_message,
    check_registry_modules,
    registry_modules,
)
from labox_prefect.target import Target

TARGET = Target("sqlite+aiosqlite:///handoff.db", "memory://")


@pytest.fixture
def saved() -> SavedResult:
    manifest = ManifestRecord(id=uuid.uuid4(), class_id=uuid.uuid4(), unpacker_name="x", tags={})
    return SavedResult(manifest, None, TARGET, Registry())


def test_an_output_is_handed_over_once_and_only_for_the_same_object(saved: SavedResult) -> None:
    table, run = Handoff(), uuid.uuid4()
    output = {"value": 1}

    table.put_output(run, output, saved, None)

    assert table.take_output(run, {"value": 1}) is None  # equal is not the same object
    table.put_output(run, output, saved, None)
    assert table.take_output(uuid.uuid4(), output) is None  # another run
    assert table.take_output(run, output) is saved
    assert table.take_output(run, output) is None
    assert len(table) == 0


def test_a_written_record_is_skipped_once_when_identical(saved: SavedResult) -> None:
    table, run = Handoff(), uuid.uuid4()
    label = TARGET.database_label
    table.put_output(run, "text", saved, ("key-1", '{"result":"p"}'))

    assert not table.take_written(run, label, "key-1", b'{"result":"other"}')
    table.put_output(run, "text", saved, ("key-1", '{"result":"p"}'))
    assert not table.take_written(run, "sqlite+aiosqlite:///elsewhere.db", "key-1", b"")
    table.put_output(run, "text", saved, ("key-1", '{"result":"p"}'))
    assert table.take_written(run, label, "key-1", b'{"result":"p"}')
    assert not table.take_written(run, label, "key-1", b'{"result":"p"}')


def test_a_cache_check_value_serves_the_hit_once() -> None:
    table, run, manifest_id = Handoff(), uuid.uuid4(), uuid.uuid4()

    table.put_loaded(run, manifest_id, [1, 2])

    assert table.take_loaded(run, uuid.uuid4()) == (False, None)  # another manifest: a miss
    table.put_loaded(run, manifest_id, [1, 2])
    assert table.take_loaded(run, manifest_id) == (True, [1, 2])
    assert table.take_loaded(run, manifest_id) == (False, None)
    assert len(table) == 0


def test_the_table_is_bounded_and_drops_the_oldest_run() -> None:
    table = Handoff()
    runs = [uuid.uuid4() for _ in range(HANDOFF_RUNS + 1)]

    for index, run in enumerate(runs):
        table.put_loaded(run, run, index)

    assert len(table) == HANDOFF_RUNS
    assert table.take_loaded(runs[0], runs[0]) == (False, None)
    assert table.take_loaded(runs[-1], runs[-1]) == (True, HANDOFF_RUNS)


def test_a_large_output_is_not_kept_alive_by_the_table(saved: SavedResult) -> None:
    table, run = Handoff(), uuid.uuid4()
    frame = pd.DataFrame({"a": range(1000)})

    table.put_output(run, frame, saved, None)
    del frame
    gc.collect()

    assert len(table) == 0


def test_a_registry_module_is_imported_once_whether_its_import_worked_or_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    imported: list[str] = []
    import_module = importlib.import_module

    def counting(name: str, package: str | None = None) -> object:
        imported.append(name)
        return import_module(name, package)

    monkeypatch.setattr(importlib, "import_module", counting)
    working, broken = "colorsys", "tests.integration._broken_registry"
    for _ in range(3):
        check_registry_modules([working], "a task")
        with pytest.raises(RegistryModuleImportError):
            check_registry_modules([broken], "a task")
    assert imported.count(working) == 1
    assert imported.count(broken) <= 1  # another test of this process may have imported it


def test_a_registry_module_python_cannot_find_is_named_with_the_path_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not "fix the module" for a module that is only missing: install it or add its folder."""
    missing = f"no_such_module_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", missing)

    with pytest.raises(RegistryModuleImportError) as caught:
        registry_modules()

    message = str(caught.value)
    assert f"names the module {missing!r}, which Python cannot find" in message
    assert "PYTHONPATH" in message
    assert "Fix the module" not in message


def test_a_script_class_is_named_by_its_module_in_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A class of a script run as __main__ is named as its records would name it."""
    script = types.ModuleType("__main__")
    script.__spec__ = importlib.machinery.ModuleSpec("shop.flow", None)
    monkeypatch.setitem(sys.modules, "__main__", script)
    plain = type("Plain", (), {"__module__": "__main__"})

    message = _not_storable_message(plain())

    assert "a result of type shop.flow.Plain:" in message
    assert "__main__" not in message
