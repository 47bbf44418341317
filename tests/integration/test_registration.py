"""Prefect finds the ``labox`` serializer type and the block in every import order.

Prefect resolves a stored record's serializer by its type name among the classes defined so
far; when it cannot, it silently treats a cache as missing. ``import labox_prefect`` loads
no integration module (it stays light for the core), yet keeps the promise: it registers
the types as soon as Prefect is imported. Each case runs in a fresh interpreter.
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

from labox_prefect import labox_task
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
