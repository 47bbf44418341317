"""The faithful DataFrame serializer against pyarrow's own round trip, on a 1M-row frame.

Before the descriptor (issue 6), ``labox.pandas.parquet@v1`` wrote ``Table.from_pandas`` to
Parquet and read ``to_pandas`` back: that path is the baseline here, run in the same process
on the same frame. Rounds alternate (baseline, ours, baseline, ours, ...) and the medians
with their min-max are printed, with the ratio ours / baseline for writing and reading.
Run: .venv/bin/python bench/frame_fidelity.py [--rounds N] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from labox_prefect.core.extra.pandas import parquet_data_frame_serializer
from labox_prefect.core.extra.pyarrow import read_parquet, write_parquet
from labox_prefect.core.serializer import SerializedData


def frame(rows: int) -> pd.DataFrame:
    """The usual columns: ids, floats, ints, timestamps, a categorical and short strings."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.random(rows),
            "y": rng.integers(0, 1000, rows).astype("int32"),
            "at": pd.to_datetime(rng.integers(0, 2**40, rows), unit="ms", utc=True),
            "label": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            "name": pd.array([f"n{i % 977}" for i in range(rows)], dtype="str"),
        }
    )


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main(rounds: int, rows: int) -> None:
    value = frame(rows)
    times: dict[str, list[float]] = {k: [] for k in ("base-w", "ours-w", "base-r", "ours-r")}
    data = write_parquet(pa.Table.from_pandas(value))
    ours = parquet_data_frame_serializer.serialize_data(value)
    steps = {
        "base-w": lambda: write_parquet(pa.Table.from_pandas(value)),
        "base-r": lambda: read_parquet(data, "baseline").to_pandas(),
        "ours-w": lambda: parquet_data_frame_serializer.serialize_data(value),
        "ours-r": lambda: parquet_data_frame_serializer.deserialize_data(ours),
    }
    for _ in range(rounds):
        for key, step in steps.items():
            times[key].append(timed(step)[0])
    loaded = parquet_data_frame_serializer.deserialize_data(
        SerializedData(ours.data, ours.content_type)
    )
    pd.testing.assert_frame_equal(value, loaded, check_exact=True)

    def show(key: str) -> str:
        values = times[key]
        low, high = min(values) * 1e3, max(values) * 1e3
        return f"{statistics.median(values) * 1e3:.0f} ms ({low:.0f}-{high:.0f})"

    print(f"{rows:,} rows, {rounds} interleaved rounds, medians (min-max)")
    for step, name in (("w", "write"), ("r", "read")):
        ratio = statistics.median(times[f"ours-{step}"]) / statistics.median(times[f"base-{step}"])
        print(
            f"{name}: ours {show(f'ours-{step}')} vs pyarrow's round trip "
            f"{show(f'base-{step}')}: ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1_000_000)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.rows)
