"""The storable classes the example flows return, in a module of their own.

A stored object is loaded back through the registry, which finds its class by class id and
never imports a module because a record names it. So the classes live in an importable
module that every process reading them registers: the flows pass it to
``labox_task(registry_modules=[...])``, and a reader (the CLI, a notebook, a report flow in
another process) sets ``LABOX_REGISTRY_MODULES=example_storables`` with this folder on its
``PYTHONPATH``. Each class pins its ``class_id`` once: renaming or moving the class later
keeps old records loadable.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Annotated

import pandas as pd

from labox_prefect.core.extra.pandas import ParquetDataFrameStreamSerializer
from labox_prefect.core.extra.pydantic import ContentSpec, StorableModel

MODULE = __name__
"""What to register: ``labox_task(registry_modules=[MODULE])``."""

DataFrameStream = Annotated[
    AsyncIterable[pd.DataFrame], ContentSpec(serializer=ParquetDataFrameStreamSerializer())
]
"""An async stream of DataFrames, stored as one Parquet file with a row group per frame."""


class SampleSummary(StorableModel, class_id="5d0c8a7e41b94f2a"):
    """What the demo flow concludes about one batch of samples."""

    batch: str
    samples: int
    mean_yield: float
    best_sample: str


class ExperimentData(StorableModel, class_id="b7e3f1a90c2d4e58"):
    """One protein-folding trial (the seed guide's example): parameters, results, trajectory.

    ``trajectory`` is a stream: saved frame by frame and read back chunk by chunk, so a long
    simulation never has to fit in memory.
    """

    experiment_name: str
    parameters: dict[str, float]
    results: dict[str, list[float]]
    trajectory: DataFrameStream


__all__ = ["MODULE", "DataFrameStream", "ExperimentData", "SampleSummary"]
