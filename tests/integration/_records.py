"""Records as a Prefect run would leave them, saved straight through the core.

Most query and CLI tests need stored results with the integration's tag scheme, not a flow
run: saving them with ``save_one`` and hand-made ``prefect.*`` tags takes milliseconds.
"""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from labox_prefect.context import (
    FLOW_NAME,
    FLOW_RUN_ID,
    FLOW_RUN_NAME,
    KIND,
    TASK_NAME,
    TASK_RUN_ID,
    run_tag_key,
)
from labox_prefect.core import ManifestRecord, Registry, Serializer, Storable, save_one
from labox_prefect.core.builtin import StorableValue
from labox_prefect.persistence import open_session, registry_for
from labox_prefect.runtime import get_runtime
from labox_prefect.target import Target


def prefect_tags(
    *,
    flow: str = "nightly",
    task: str | None = "train",
    flow_run_id: uuid.UUID | None = None,
    run_tags: tuple[str, ...] = (),
) -> dict[str, str]:
    """The run-context tags of a task result (or of a flow result when ``task`` is None)."""
    run_id = flow_run_id or uuid.uuid4()
    tags = {
        KIND: "task" if task else "flow",
        FLOW_NAME: flow,
        FLOW_RUN_ID: str(run_id),
        FLOW_RUN_NAME: f"run-{run_id.hex[:6]}",
    }
    if task:
        tags |= {TASK_NAME: task, TASK_RUN_ID: str(uuid.uuid4())}
    return tags | {run_tag_key(tag): "true" for tag in run_tags}


def save(
    value: Any,
    tags: Mapping[str, str],
    *,
    storables: tuple[type[Storable], ...] = (),
    serializers: tuple[Serializer[Any], ...] = (),
) -> ManifestRecord:
    """Save ``value`` (a Storable, or any value as a StorableValue) to the configured target.

    ``storables``, ``serializers``: what this save may use that the process registry does
    not know.
    """
    target = Target.from_settings()
    registry = registry_for(target)
    if storables or serializers:
        registry = Registry(
            registries=[registry], storables=list(storables), serializers=list(serializers)
        )
    obj = value if isinstance(value, Storable) else StorableValue(value)

    async def run() -> ManifestRecord:
        async with open_session(target) as session:
            return await save_one(obj, session=session, registry=registry, tags=tags)

    return get_runtime().run(run())


def module_with_a_point(name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module ``name`` defining a plain dataclass ``Point``, imported as ``import name``."""
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(  # a real module's source, kept here so the test owns its lifetime
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True)\n"
        "class Point:\n"
        "    x: int\n"
        "    y: int\n",
        module.__dict__,
    )
    return module
