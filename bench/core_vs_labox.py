"""labox_prefect.core against the labox 0.1.0 peer, side by side in one run.

Targets (issue 7): bulk save of 1,000 small pydantic models >= 5x faster than the peer and
bulk load >= 2x, in every round, the first load after the save included; a 1M-row DataFrame
saved and loaded within 1.3x of plain ``to_parquet`` / ``read_parquet``.

Every round starts from fresh databases and folders (SQLite + local files) and runs the two
sides interleaved, the side that goes first alternating from round to round: save ours, save
the peer's (or the other way round), then load each side's records once (the first load of
those records in the process: no warm cache of ours). The frame part does the same with
plain pandas and ours. Each phase is timed in wall-clock seconds and in CPU seconds of the
process (both threads: aiosqlite runs SQLite on a thread of its own).

Garbage collection: a full collection of the cyclic garbage collector walks every object of
the process (pandas, pyarrow, SQLAlchemy, both packages: ~80 ms here) and starts whenever
enough long-lived objects piled up, whichever code happens to allocate next. Each timed phase
therefore starts with ``gc.collect()`` (not timed), so that neither side pays for the
collection that the other side's objects made due; the collector stays on during the phase,
so each side pays for what its own allocations trigger (printed as ``gc`` per phase).

Run: .venv-bench/bin/python bench/core_vs_labox.py [--rounds N] (see bench/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import labox.builtin as peer_builtin
import labox.core as peer
import labox.extra.pydantic as peer_pydantic
import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from labox_prefect import core as ours
from labox_prefect.core.builtin import FileStorage, StorableValue
from labox_prefect.core.extra.pydantic import StorableModel

N_MODELS = 1_000
N_ROWS = 1_000_000
TARGETS = {"save": 5.0, "load": 2.0}
FRAME_TARGET = 1.3


class OurModel(StorableModel, class_id="b0b0b0b0c1c1c1c1"):
    name: str
    values: list[float]
    meta: dict[str, str]


class PeerModel(peer_pydantic.StorableModel, class_id="d2d2d2d2"):
    name: str
    values: list[float]
    meta: dict[str, str]


def models(cls: type[Any]) -> list[Any]:
    return [
        cls(name=f"m{i}", values=[i, i / 2, i / 3], meta={"k": str(i)}) for i in range(N_MODELS)
    ]


class GcClock:
    """Seconds spent in the cyclic garbage collector since the last ``reset``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def reset(self) -> None:
        self.seconds = 0.0


GC = GcClock()


@dataclass
class Timing:
    wall: float
    cpu: float
    gc: float


async def timed(fn: Callable[[], Awaitable[Any]]) -> Timing:
    gc.collect()
    GC.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    await fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, GC.seconds)


@dataclass
class Side:
    """One package's bulk save and load over its own database and folder."""

    name: str
    engine: AsyncEngine
    save: Callable[[], Awaitable[None]]
    load: Callable[[], Awaitable[None]]
    timings: dict[str, Timing] = field(default_factory=dict)


async def our_side(root: Path) -> Side:
    engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'ours.db'}")
    await ours.BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    registry = ours.Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pydantic"],
        storables=[OurModel],
        default_storage=FileStorage(root / "ours"),
    )
    objs = models(OurModel)
    records: list[Any] = []

    async def save() -> None:
        async with sessions() as session:
            async with ours.new_saver(session=session, registry=registry) as saver:
                futures = [saver.save_soon(o) for o in objs]
        records[:] = [f.value for f in futures]

    async def load() -> None:
        async with sessions() as session:
            async with ours.new_loader(session=session, registry=registry) as loader:
                futures = [loader.load_soon(r, OurModel) for r in records]
        assert [f.value for f in futures] == objs

    return Side("ours", engine, save, load)


async def peer_side(root: Path) -> Side:
    engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'peer.db'}")
    await peer.BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    registry = peer.Registry(
        modules=["labox.builtin", "labox.extra.pydantic"],
        storables=[PeerModel],
        default_storage=peer_builtin.FileStorage(root / "peer", mkdir=True),
    )
    objs = models(PeerModel)
    records: list[Any] = []

    async def save() -> None:
        async with sessions() as session, peer.new_saver(registry, session) as saver:
            futures = [saver.save_soon(o) for o in objs]
        records[:] = [f.value for f in futures]

    async def load() -> None:
        async with sessions() as session, peer.new_loader(registry, session) as loader:
            futures = [loader.load_soon(r, PeerModel) for r in records]
        assert [f.value for f in futures] == objs

    return Side("peer", engine, save, load)


def make_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(N_ROWS),
            "x": rng.random(N_ROWS),
            "y": rng.integers(0, 1000, N_ROWS),
            "label": pd.Categorical(rng.choice(["a", "b", "c"], N_ROWS)),
        }
    )


async def bench_frame(root: Path, frame: pd.DataFrame, ours_first: bool) -> dict[str, Timing]:
    """Write, then read, a frame with plain pandas and with ours, in the order given."""
    plain = root / "plain.parquet"
    engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'frame.db'}")
    await ours.BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    registry = ours.Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"],
        default_storage=FileStorage(root / "frames"),
    )
    records: list[Any] = []
    loaded: list[pd.DataFrame] = []

    async def plain_write() -> None:
        frame.to_parquet(plain)

    async def plain_read() -> None:
        pd.read_parquet(plain)

    async def ours_write() -> None:
        async with sessions() as session:
            records.append(
                await ours.save_one(StorableValue(frame), session=session, registry=registry)
            )

    async def ours_read() -> None:
        async with sessions() as session:
            value = await ours.load_one(
                records[0], StorableValue, session=session, registry=registry
            )
        loaded.append(value.value)

    writes = [("ours write", ours_write), ("plain write", plain_write)]
    reads = [("ours read", ours_read), ("plain read", plain_read)]
    if not ours_first:
        writes.reverse()
        reads.reverse()
    timings = {}
    for name, step in [*writes, *reads]:
        timings[name] = await timed(step)
    pd.testing.assert_frame_equal(loaded[0], frame)
    await engine.dispose()
    return timings


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


async def main(rounds: int, skip_frame: bool) -> None:
    ratios: dict[str, list[float]] = {
        k: [] for k in ("save", "load", "save cpu", "load cpu", "fw", "fr", "fw cpu", "fr cpu")
    }
    frame = make_frame()
    for number in range(rounds):
        ours_first = number % 2 == 0
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            sides = [await our_side(root), await peer_side(root)]
            if not ours_first:
                sides.reverse()
            for phase in ("save", "load"):
                for side in sides:
                    side.timings[phase] = await timed(getattr(side, phase))
            for side in sides:
                await side.engine.dispose()
            by_name = {side.name: side.timings for side in sides}
            line = [f"round {number + 1} ({sides[0].name} first):"]
            for phase in ("save", "load"):
                mine, theirs = by_name["ours"][phase], by_name["peer"][phase]
                ratios[phase].append(theirs.wall / mine.wall)
                ratios[f"{phase} cpu"].append(theirs.cpu / mine.cpu)
                line.append(
                    f"{phase} ours {mine.wall * 1e3:.0f} ms (CPU {mine.cpu * 1e3:.0f}, gc "
                    f"{mine.gc * 1e3:.0f}) vs peer {theirs.wall * 1e3:.0f} ms (CPU "
                    f"{theirs.cpu * 1e3:.0f}, gc {theirs.gc * 1e3:.0f}): "
                    f"{theirs.wall / mine.wall:.1f}x, CPU {theirs.cpu / mine.cpu:.1f}x;"
                )
            if not skip_frame:
                t = await bench_frame(root, frame, ours_first)
                fw = t["ours write"].wall / t["plain write"].wall
                fr = t["ours read"].wall / t["plain read"].wall
                fw_cpu = t["ours write"].cpu / t["plain write"].cpu
                fr_cpu = t["ours read"].cpu / t["plain read"].cpu
                ratios["fw"].append(fw)
                ratios["fr"].append(fr)
                ratios["fw cpu"].append(fw_cpu)
                ratios["fr cpu"].append(fr_cpu)
                line.append(
                    f"frame write {t['ours write'].wall * 1e3:.0f} vs plain "
                    f"{t['plain write'].wall * 1e3:.0f} ms ({fw:.2f}x, CPU {fw_cpu:.2f}x), read "
                    f"{t['ours read'].wall * 1e3:.0f} vs plain {t['plain read'].wall * 1e3:.0f} "
                    f"ms ({fr:.2f}x, CPU {fr_cpu:.2f}x)"
                )
        print(" ".join(line), flush=True)
    print(f"rounds: {rounds}; ratios are median (min-max) over rounds")
    for phase, what in (("save", "bulk save"), ("load", "bulk load (first load)")):
        target = TARGETS[phase]
        met = sum(r >= target for r in ratios[phase])
        print(
            f"{what} of {N_MODELS} models, peer / ours: wall {spread(ratios[phase])}, "
            f"CPU {spread(ratios[f'{phase} cpu'])}; target >= {target:.0f}x in every round: "
            f"met in {met}/{rounds} rounds"
        )
    if not skip_frame:
        for key, what in (("fw", "save / to_parquet"), ("fr", "load / read_parquet")):
            verdict = "met" if statistics.median(ratios[key]) <= FRAME_TARGET else "NOT met"
            print(
                f"1M-row DataFrame {what}: wall {spread(ratios[key])}, CPU "
                f"{spread(ratios[f'{key} cpu'])}; target <= {FRAME_TARGET}x (median): {verdict}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-frame", action="store_true", help="only the bulk save and load")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.skip_frame))
