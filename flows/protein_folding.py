"""The seed guide's protein-folding experiment as a Prefect flow.

Each trial is a task returning an ``ExperimentData`` (a pydantic StorableModel, see
example_storables.py): its parameters and results go into the record as JSON, and its
``trajectory`` (an async stream of DataFrames) into a Parquet file written frame by frame.
The trials carry the seed's tags (funding source, project, phase).

A stream is read once: the frames a trial returns are consumed when the result is saved.
So the analysis task does what any later reader does: it finds this run's trials by tag and
loads each record, whose trajectory streams back from storage one Parquet row group at a
time, never the whole simulation in memory.

    python flows/protein_folding.py
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator

# An offline machine would log a failed telemetry call of the temporary server: skip it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pandas as pd
from example_storables import MODULE, ExperimentData
from prefect import flow
from prefect.runtime import flow_run

from labox_prefect import afind_results, labox_task

SEED_TAGS = {
    "funding_source": "nsf_grant_12345",
    "project": "protein_dynamics_2024",
    "phase": "initial_screening",
}

TRIALS = [
    {"temperature": 298.15, "ph": 7.4, "concentration": 0.1},
    {"temperature": 310.15, "ph": 7.2, "concentration": 0.2},
    {"temperature": 320.15, "ph": 6.8, "concentration": 0.15},
]


async def simulate(
    parameters: dict[str, float], steps: int, per_frame: int
) -> AsyncIterator[pd.DataFrame]:
    """A toy folding trajectory: one DataFrame per block of simulation steps."""
    rate = parameters["concentration"] * 300.0 / parameters["temperature"]
    for block in range(steps // per_frame):
        time = [block * per_frame + i for i in range(per_frame)]
        yield pd.DataFrame(
            {
                "step": time,
                "rmsd": [round(8.0 * math.exp(-rate * t / 40) + 0.5, 4) for t in time],
                "energy": [round(-120.0 * (1 - math.exp(-rate * t / 25)), 3) for t in time],
            }
        )


@labox_task(tags=SEED_TAGS, prefect_tags=["folding"], registry_modules=[MODULE])
def run_trial(index: int, parameters: dict[str, float], steps: int = 400) -> ExperimentData:
    """One trial: summary results plus the whole trajectory as a stream."""
    stability = [round(100 - parameters["temperature"] / 4 + i * 3.1, 1) for i in range(3)]
    affinity = [
        round(parameters["ph"] * 1.7 + i * parameters["concentration"] * 10, 2) for i in range(3)
    ]
    return ExperimentData(
        experiment_name=f"protein_folding_analysis_trial_{index}",
        parameters=parameters,
        results={"binding_affinity": affinity, "stability": stability},
        trajectory=simulate(parameters, steps, per_frame=50),
    )


@labox_task(tags={**SEED_TAGS, "phase": "analysis"}, prefect_tags=["folding"])
async def analyse_trials(run_id: str) -> pd.DataFrame:
    """Load this run's trials by tag and reduce each trajectory, frame by frame."""
    rows = []
    for ref in await afind_results(task_name="run_trial", flow_run_id=run_id, tags=SEED_TAGS):
        trial: ExperimentData = await ref.aload()
        frames = steps = 0
        final_rmsd, min_energy = math.nan, math.inf
        async for frame in trial.trajectory:  # one Parquet row group at a time
            frames += 1
            steps += len(frame)
            final_rmsd = float(frame["rmsd"].iloc[-1])
            min_energy = min(min_energy, float(frame["energy"].min()))
        rows.append(
            {
                "experiment": trial.experiment_name,
                "temperature": trial.parameters["temperature"],
                "frames": frames,
                "steps": steps,
                "final_rmsd": final_rmsd,
                "min_energy": min_energy,
                "record": str(ref.manifest_id),
            }
        )
    return pd.DataFrame(rows).sort_values("experiment", ignore_index=True)


@flow(name="protein-folding")
async def protein_folding(trials: list[dict[str, float]] | None = None) -> pd.DataFrame:
    """Run every trial concurrently, then analyse their stored trajectories."""
    trials = trials or TRIALS
    futures = run_trial.map(range(1, len(trials) + 1), trials)
    futures.result()  # raises a failed trial's error: the flow run fails with it
    return await analyse_trials(str(flow_run.id))


if __name__ == "__main__":
    summary = asyncio.run(protein_folding())
    with pd.option_context("display.width", 140):
        print("\nTrials, analysed from their stored trajectories:\n")
        print(summary.drop(columns="record").to_string(index=False))
