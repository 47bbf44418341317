"""Prefect finds the ``labox`` serializer type and the block in every import order.

Prefect resolves a stored record's serializer by its type name among the classes defined so
far; when it cannot, it silently treats a cache as missing. ``import labox_prefect`` loads
no integration module (it stays light for the core), yet keeps the promise: it registers
the types as soon as Prefect is imported. Each case runs in a fresh interpreter.

Registry modules (``labox_task(registry_modules=[...])``, LABOX_REGISTRY_MODULES): a module
whose import raises fails the tasks that name it, never the others.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from prefect import State, flow
from prefect.cache_policies import INPUTS
from prefect.settings import get_current_settings

from labox_prefect import LaboxError, RegistryModuleImportError, labox_task
from labox_prefect.persistence import registry_modules
from tests.integration.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]

_RESOLVES = """
from prefect.blocks.core import Block
from prefect.serializers import Serializer
from prefect.utilities.dispatch import lookup_type

serializer = Serializer(type="labox")
block = lookup_type(Block, "labox-result-storage")
print(type(serializer).__name__, block.__name__)
"""


def _python(script: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "first",
    [
        "import labox_prefect\nimport prefect",
        "import prefect\nimport labox_prefect",
        # The first module to import Prefect may be an integration module, halfway through
        # its own import when the registration runs.
        "import labox_prefect.target",
        "import labox_prefect.persistence",
        "import labox_prefect.context",
        "import labox_prefect.serializer",
        "import labox_prefect.result_storage",
        "from labox_prefect import find_results",
    ],
    ids=[
        "package-then-prefect",
        "prefect-then-package",
        "target",
        "persistence",
        "context",
        "serializer",
        "result_storage",
        "find_results",
    ],
)
def test_the_types_resolve_in_every_import_order(first: str) -> None:
    assert _python(f"{first}\n{_RESOLVES}") == "LaboxSerializer LaboxResultStorage"


@labox_task(cache_policy=INPUTS, tags={"suite": "registration"})
def shout(word: str) -> str:
    return word.upper()


_CACHED_READER = """
import json, sys
import labox_prefect  # nothing else of Labox: the types register when Prefect is imported
from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.settings import get_current_settings

@task(cache_policy=INPUTS, persist_result=True, result_storage="labox-result-storage/default")
def shout(word: str) -> str:
    return "computed again"

@flow
def reader(word: str):
    return shout(word, return_state=True)

state = reader(sys.argv[1])
print(json.dumps({"state": state.name, "value": state.result()}))
"""


def test_a_process_that_only_imports_labox_prefect_reads_a_cached_result(
    backend: Backend,
) -> None:
    word = uuid.uuid4().hex

    @flow
    def writer() -> State[Any]:
        return shout(word, return_state=True)

    assert writer().result() == word.upper()

    done = subprocess.run(
        [sys.executable, "-c", _CACHED_READER, word],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_API_URL": str(get_current_settings().api.url),  # the test harness's API
        },
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout.strip().splitlines()[-1])
    assert read == {"state": "Cached", "value": word.upper()}


def test_the_collections_entry_point_names_the_registering_module() -> None:
    (entry,) = [
        entry
        for entry in entry_points(group="prefect.collections")
        if entry.name == "labox_prefect"
    ]

    assert entry.value == "labox_prefect.registration"
    assert entry.load() is importlib.import_module("labox_prefect.registration")


BROKEN = "tests.integration._broken_registry"  # found by Python, but its import raises


@labox_task(registry_modules=[BROKEN])
def needs_the_broken_module() -> int:
    raise AssertionError("the function must not run: its registry module is broken")


@labox_task
def needs_nothing_more(value: int) -> int:
    return value + 1


def test_a_registry_module_that_fails_to_import_fails_only_the_tasks_that_name_it(
    backend: Backend,
) -> None:
    @flow
    def pipeline() -> tuple[State[Any], int, int]:
        broken = needs_the_broken_module(return_state=True)
        renamed = needs_nothing_more.with_options(name="renamed")
        return broken, needs_nothing_more(1), renamed(2)

    broken, value, other = pipeline()

    assert (value, other) == (2, 3)
    assert broken.is_failed()
    message = broken.message or ""
    assert "RegistryModuleImportError" in message
    assert f"'needs_the_broken_module' names the module '{BROKEN}'" in message
    assert "RuntimeError: this module needs a setting the test never gives" in message
    assert "remove it from the task's registry_modules" in message
    error = broken.result(raise_on_failure=False)
    assert isinstance(error, RegistryModuleImportError)
    assert isinstance(error, LaboxError)
    assert isinstance(error, ImportError)
    assert error.name == BROKEN
    assert BROKEN not in registry_modules()  # the other tasks' registries leave it out


def test_with_options_adds_registry_modules_that_are_checked_at_each_run(
    backend: Backend,
) -> None:
    broken_copy = needs_nothing_more.with_options(name="copy", registry_modules=[BROKEN])

    @flow
    def pipeline() -> tuple[State[Any], int]:
        return broken_copy(1, return_state=True), needs_nothing_more(1)

    broken, value = pipeline()

    assert value == 2
    assert broken.is_failed()
    assert f"'copy' names the module '{BROKEN}'" in (broken.message or "")


def test_a_broken_module_of_the_setting_fails_every_save_naming_the_setting(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", BROKEN)

    @flow
    def pipeline() -> tuple[bool, str]:
        state = needs_nothing_more(1, return_state=True)
        return state.is_failed(), state.message or ""

    failed, message = pipeline()

    assert failed
    assert f"LABOX_REGISTRY_MODULES names the module '{BROKEN}'" in message
    assert "RuntimeError" in message


def test_a_module_of_the_setting_python_cannot_find_fails_the_run_before_its_work(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The result could not be saved: the function is not run for nothing."""
    missing = f"no_such_module_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LABOX_REGISTRY_MODULES", missing)
    ran = tmp_path / "ran"

    @labox_task
    def costly() -> int:
        ran.touch()
        return 1

    @flow
    def pipeline() -> tuple[bool, str]:
        state = costly(return_state=True)
        return state.is_failed(), state.message or ""

    failed, message = pipeline()

    assert failed
    assert f"LABOX_REGISTRY_MODULES names the module {missing!r}" in message
    assert "PYTHONPATH" in message
    assert not ran.exists()
