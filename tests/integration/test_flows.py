"""The example flows end Failed when a persisted task fails: no failure hides behind a
Completed flow run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.integration.conftest import Backend

FLOWS = Path(__file__).resolve().parents[2] / "flows"
if str(FLOWS) not in sys.path:  # the flows import their neighbour as users run them
    sys.path.insert(0, str(FLOWS))

import compute_once  # noqa: E402
import protein_folding  # noqa: E402

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

GOOD = {"temperature": 300.0, "ph": 7.0, "concentration": 0.1}


def _run(trials: list[dict[str, float]]) -> Any:
    return asyncio.run(protein_folding.protein_folding(trials, return_state=True))


@sqlite_only
def test_protein_folding_analyses_its_trials(backend: Backend) -> None:
    state = _run([GOOD])

    assert state.is_completed()
    summary = state.result()
    assert isinstance(summary, pd.DataFrame)
    assert list(summary["steps"]) == [400]


@sqlite_only
def test_protein_folding_fails_when_a_trial_fails(backend: Backend) -> None:
    broken = {"temperature": 300.0, "concentration": 0.1}  # no "ph": the trial raises

    state = _run([GOOD, broken])

    assert state.is_failed()
    assert "ph" in (state.message or "") or "KeyError" in repr(state.data)


@sqlite_only
def test_compute_once_folds_each_sequence_once(backend: Backend) -> None:
    assert compute_once.main(runs=3) == 1
