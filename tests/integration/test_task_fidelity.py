"""Issue 6 on the Prefect paths: what a labox_task returns is what every later load gets.

Each example of the issue, and a sample of the fidelity harness's values (every leaf nested
two levels deep), goes through every path a result takes, on SQLite + files and on
PostgreSQL + S3: the first run's return value, ``find_results(...)[0].load()``,
``await afind_results(...)`` + ``aload()``, and a cache hit in a second flow run (the task
does not run again). A value the core refuses fails its task run with ResultNotStorableError
naming the path inside the value, before any record is committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import pytz
from prefect import flow
from prefect.cache_policies import INPUTS
from prefect.context import FlowRunContext
from pydantic import BaseModel, ConfigDict

from labox_prefect import ResultNotStorableError, afind_results, find_results, labox_task
from labox_prefect.context import RESULT_TYPE, TASK_RUN_ID
from labox_prefect.core.extra.pydantic import StorableModel
from labox_prefect.core.testing import (
    SAMPLE_CONTAINERS,
    SAMPLE_LEAVES,
    difference,
    forgotten,
    nested_samples,
)
from tests.integration.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
MODULE_ROOT = Path(__file__).resolve().parents[__name__.count(".")]


class Reading(StorableModel, class_id="5d1c0a7e9b2f4e31"):
    """A StorableModel of the flow's own module, pinned, with no LABOX_REGISTRY_MODULES."""

    values: dict[str, Any]


class Loose(StorableModel, class_id="7a3e9c2d1b0f4a85"):
    """A StorableModel that keeps extra fields."""

    model_config = ConfigDict(extra="allow")

    name: str


class Plain(BaseModel):
    """A plain pydantic model."""

    day: datetime.date
    scores: tuple[float, ...]


@dataclasses.dataclass
class Point:
    """A plain dataclass."""

    x: int
    y: float


class Opaque:
    """A type with no serializer and no faithful encoding."""


WHY: dict[str, Callable[[], Any]] = {
    "tuple": lambda: (1, "a"),
    "NaT": lambda: pd.NaT,
    "model Any field holding NaN": lambda: Reading(values={"x": float("nan"), "n": None}),
    "model extra fields": lambda: Loose(name="a", more=(1, {2}), nan=float("nan")),
    "categorical frame": lambda: pd.DataFrame({"a": pd.Categorical([1, 2, 1])}),
    "numpy array": lambda: np.arange(6, dtype=np.int16).reshape(2, 3),
    "Series": lambda: pd.Series([1.5, None], index=["p", "q"], name="s"),
    "date": lambda: datetime.date(2024, 2, 29),
    "Decimal": lambda: decimal.Decimal("1.10"),
    "set": lambda: {1, "b", 2.5},
    "int keys": lambda: {2: "b", 1: "a"},
    "dict of frames": lambda: {
        "a": pd.DataFrame({"x": [1, 2]}),
        "b": pd.DataFrame({"y": ["z"]}, index=pd.Index([7], name="i")),
    },
    "plain BaseModel": lambda: Plain(day=datetime.date(2024, 1, 2), scores=(0.5, -0.0)),
    "plain dataclass": lambda: Point(1, float("nan")),
}

REFUSED: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "no serializer, nested": (
        lambda: {"a": [0, 1, 2, Opaque()]},
        ("value['a'][3]", f"{__name__}.Opaque", "register a serializer", "registry_modules="),
    ),
    "pytz datetime": (
        lambda: {"when": [datetime.datetime(2024, 1, 1, tzinfo=pytz.timezone("Europe/Paris"))]},
        ("value['when'][0]", "datetime", "zoneinfo"),
    ),
    "mixed object column": (
        lambda: {"frame": pd.DataFrame({"a": [1, "x"]})},
        ("value['frame']", "column 'a'", "int, str", "Give it a dtype"),
    ),
}


def _covering_samples() -> list[tuple[str, Any]]:
    """One nested sample per sample leaf, taking the container pairs in turn (all of them,
    outer and inner, within the first leaves)."""
    samples = nested_samples()
    pairs = len(SAMPLE_CONTAINERS) ** 2
    step = len(SAMPLE_CONTAINERS) + 1  # coprime with pairs: distinct pairs, leaf by leaf
    return [samples[k * pairs + (k * step) % pairs] for k in range(len(samples) // pairs)]


SAMPLES = _covering_samples()

calls: list[tuple[str, str]] = []


@labox_task(cache_policy=INPUTS, tags={"suite": "fidelity"})
def give(name: str, salt: str) -> Any:
    calls.append((name, salt))
    return WHY[name]()


@labox_task(cache_policy=INPUTS, tags={"suite": "fidelity-samples"})
def give_sample(index: int, salt: str) -> Any:
    calls.append((str(index), salt))
    return SAMPLES[index][1]


@labox_task(tags={"suite": "fidelity-refused"})
def give_refused(name: str) -> Any:
    return REFUSED[name][0]()


Runs = dict[Any, tuple[str, str, Any]]  # argument -> (state name, task run id, value)


def _pipeline(task: Any, arguments: list[Any], salt: str) -> tuple[uuid.UUID, Runs]:
    """One flow run calling ``task(argument, salt)`` for each argument."""

    @flow
    def pipeline() -> tuple[uuid.UUID, Runs]:
        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        runs: Runs = {}
        for argument in arguments:
            state = task(argument, salt, return_state=True)
            task_run_id = str(state.state_details.task_run_id)
            runs[argument] = (state.name, task_run_id, state.result(raise_on_failure=False))
        return context.flow_run.id, runs

    flow_run_id, runs = pipeline()
    return flow_run_id, runs


async def _aload_all(flow_run_id: uuid.UUID) -> dict[str, Any]:
    return {
        str(ref.task_run_id): await ref.aload()
        for ref in await afind_results(flow_run_id=flow_run_id)
    }


def _every_path(task: Any, arguments: list[Any], expected: Callable[[Any], Any]) -> dict[str, str]:
    """Where each argument's result differs on some path; {} when it is the same on all."""
    salt = uuid.uuid4().hex  # unique inputs: the PostgreSQL database outlives this test
    first_run, first = _pipeline(task, arguments, salt)
    loaded = {str(ref.task_run_id): ref.load() for ref in find_results(flow_run_id=first_run)}
    aloaded = asyncio.run(_aload_all(first_run))
    second_run, second = _pipeline(task, arguments, salt)

    problems: dict[str, str] = {}
    for argument in arguments:
        state, task_run_id, value = first[argument]
        hit_state, _, hit = second[argument]
        found = {
            "first run": value if state == "Completed" else state,
            "find_results(...).load()": loaded.get(task_run_id, "no record"),
            "afind_results(...).aload()": aloaded.get(task_run_id, "no record"),
            "cache hit": hit if hit_state == "Cached" else hit_state,
        }
        for path, actual in found.items():
            if (problem := difference(expected(argument), actual)) is not None:
                problems[f"{argument} via {path}"] = problem
        if calls.count((str(argument), salt)) != 1:
            problems[f"{argument} ran"] = f"{calls.count((str(argument), salt))} times"
    assert find_results(flow_run_id=second_run) == []  # a hit saves nothing new
    return problems


def test_every_example_of_the_issue_is_the_same_on_every_path(backend: Backend) -> None:
    names = list(WHY)
    assert _every_path(give, names, lambda name: WHY[name]()) == {}


def test_a_sample_of_every_type_nested_two_levels_is_the_same_on_every_path(
    backend: Backend,
) -> None:
    indexes = list(range(len(SAMPLES)))
    problems = _every_path(give_sample, indexes, lambda index: SAMPLES[index][1])
    assert {f"{SAMPLES[int(key.split()[0])][0]} {key}": p for key, p in problems.items()} == {}


def test_the_sample_covers_every_leaf_and_every_container_on_both_levels() -> None:
    names = [name for name, _ in SAMPLES]
    containers = [name.split("(") for name in names]
    leaf_count = sum(len(leaves) for leaves in SAMPLE_LEAVES.values())
    assert len(SAMPLES) == leaf_count  # one per leaf value, in order (see _covering_samples)
    assert {name.rsplit("(", 1)[1].rstrip(")") for name in names} == set(SAMPLE_LEAVES)
    assert {outer for outer, *_ in containers} == set(SAMPLE_CONTAINERS)
    assert {inner for _, inner, *_ in containers} == set(SAMPLE_CONTAINERS)


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_refused_value_fails_its_run_naming_where_and_commits_nothing(
    backend: Backend, name: str
) -> None:
    @flow
    def pipeline() -> tuple[bool, str, str]:
        state = give_refused(name, return_state=True)
        return state.is_failed(), state.message or "", str(state.state_details.task_run_id)

    failed, message, task_run_id = pipeline()

    assert failed
    assert f"{ResultNotStorableError.__name__}: " in message
    for fragment in REFUSED[name][1]:
        assert fragment in message, fragment
    # A setting helps only to register a serializer; other fixes are in the value.
    assert ("LABOX_REGISTRY_MODULES" in message) == ("registry_modules=" in REFUSED[name][1])
    assert find_results(tags={TASK_RUN_ID: task_run_id}) == []


@labox_task(tags={"suite": "fidelity-refused"})
async def agive_refused(name: str) -> Any:
    return REFUSED[name][0]()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_async_task_is_refused_the_same_way(backend: Backend) -> None:
    @flow
    async def pipeline() -> tuple[bool, str, str]:
        state = await agive_refused("no serializer, nested", return_state=True)
        return state.is_failed(), state.message or "", str(state.state_details.task_run_id)

    failed, message, task_run_id = asyncio.run(pipeline())

    assert failed
    assert f"{ResultNotStorableError.__name__}: " in message
    assert "value['a'][3]" in message
    assert find_results(tags={TASK_RUN_ID: task_run_id}) == []


@labox_task(tags={"suite": "fidelity-forgotten"})
def read_meter() -> Reading:
    return Reading(values={"x": 1})


def test_a_storable_its_process_cannot_find_again_is_refused(backend: Backend) -> None:
    @flow
    def pipeline() -> tuple[bool, str]:
        with forgotten(Reading):  # as if its class statement had been replaced or lost
            state = read_meter(return_state=True)
        return state.is_failed(), state.message or ""

    failed, message = pipeline()

    assert failed
    assert f"{ResultNotStorableError.__name__}: " in message
    assert f"{__name__}.Reading" in message
    assert "class_id=" in message
    assert "LABOX_REGISTRY_MODULES" not in message


@labox_task
def keep(value: Any) -> Any:
    return value


_FRESH_READER = """
import json, sys
from labox_prefect import find_results
from labox_prefect.core import LaboxError

found = []
for ref in find_results(tags={"suite": sys.argv[1]}):
    try:
        ref.load()
        found.append(["loaded", ref.tags["prefect.result_type"]])
    except LaboxError as error:
        found.append([type(error).__name__, str(error)])
import importlib
flow_module = importlib.import_module(sys.argv[2])  # what the message says to do
from labox_prefect.core.testing import same
expected = {"Reading": flow_module.Reading(values={"x": float("nan")}),
            "Point": flow_module.Point(1, float("nan"))}
for ref in find_results(tags={"suite": sys.argv[1]}):
    name = ref.tags["prefect.result_type"].rsplit(":", 1)[1]
    found.append(["after import", name, same(expected[name], ref.load())])
print(json.dumps(found))
"""


def test_a_process_that_never_imported_the_class_is_told_which_module_to_import(
    backend: Backend,
) -> None:
    suite = uuid.uuid4().hex

    @flow
    def pipeline() -> None:
        for value in (Reading(values={"x": float("nan")}), Point(1, float("nan"))):
            keep.with_options(tags={"suite": suite})(value)

    pipeline()
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_READER, suite, __name__],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # where ``import <__name__>`` finds this module, as the test run imported it
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(MODULE_ROOT)]),
        },
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    errors, after = [], []
    for entry in json.loads(done.stdout.strip().splitlines()[-1]):
        (after if entry[0] == "after import" else errors).append(entry)
    assert len(errors) == 2
    for kind, message in errors:
        assert kind == "ResultClassNotRegisteredError", message
        assert f"import {__name__}" in message
        assert "Reading" in message or "Point" in message
    assert sorted(after) == [["after import", "Point", True], ["after import", "Reading", True]]
    assert {ref.tags[RESULT_TYPE] for ref in find_results(tags={"suite": suite})} == {
        f"{__name__}:Reading",
        f"{__name__}:Point",
    }
