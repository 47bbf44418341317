"""Peak memory of saving and loading a large DataFrame stream, one phase per fresh process.

Targets: a 2 GB DataFrame stream saved and loaded in under 400 MB of peak memory (issue 2),
in at most 1.25x the time of plain pyarrow (issue 7, median of the rounds).
A pydantic StorableModel with a Parquet DataFrame stream field is saved into SQLite + a
FileStorage, its frames made on the fly (so only the framework could hold many at once);
then it is loaded and every frame is read, and the rows and a sha256 of every value are
compared with what was saved. Each phase runs in its own process and reports its peak
resident memory (VmHWM). Beside them: an idle process that imported the same modules (the
baseline that is not the stream's doing), and the same frames written and read with plain
pyarrow (ParquetWriter, one row group per frame; ParquetFile.read_row_group) as the floor.
Rounds (``--rounds``, default 5) run the four phases each, ours first in odd rounds and plain
pyarrow first in even ones; each round prints its times and ratios, and the summary gives
medians (min-max) over the rounds.
Run: .venv/bin/python bench/stream_memory.py [--size-mb 2048 | --quick] [--rows-per-frame N]
[--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from labox_prefect.core import BaseRecord, Registry, load_one, save_one
from labox_prefect.core.builtin import FileStorage
from labox_prefect.core.extra.pandas import ParquetDataFrameStreamSerializer
from labox_prefect.core.extra.pydantic import ContentSpec, StorableModel

TARGET_MB = 400
TIME_TARGET = 1.25
QUICK_SIZE_MB = 256
COLUMNS = 4  # an int64 id and three float64: 32 bytes a row
MODULES = ["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"]

FrameStream = Annotated[
    AsyncIterable[pd.DataFrame], ContentSpec(serializer=ParquetDataFrameStreamSerializer())
]


class Measurements(StorableModel, class_id="5e5e5e5e7a7a7a7a"):
    description: str
    frames: FrameStream


@dataclass
class Tally:
    """What went through a phase: frames, rows, in-memory bytes and a sha256 of it all."""

    frames: int = 0
    rows: int = 0
    bytes: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def add(self, frame: pd.DataFrame) -> None:
        """Count a frame and hash its index range and column buffers, copying nothing."""
        index = frame.index
        if not isinstance(index, pd.RangeIndex):
            raise TypeError(f"frame {self.frames} came back with a {type(index).__name__}")
        self.frames += 1
        self.rows += len(frame)
        self.bytes += int(frame.memory_usage(index=True, deep=True).sum())
        self.digest.update(f"{index.start}:{index.stop}:{list(frame.columns)}".encode())
        for name in frame.columns:
            self.digest.update(np.ascontiguousarray(frame[name].to_numpy()))

    def summary(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "rows": self.rows,
            "bytes": self.bytes,
            "digest": self.digest.hexdigest(),
        }


def make_frame(number: int, rows: int) -> pd.DataFrame:
    """Frame ``number``: the same values in every process, so a load can be checked.

    Columns are adopted without a copy (no consolidation into one block), so making a frame
    costs the frame itself, not twice that: the bench must not inflate its own peak.
    """
    rng = np.random.default_rng(number)
    start = number * rows
    z = rng.random(rows)
    z *= 1000.0
    columns = {
        "id": np.arange(start, start + rows, dtype=np.int64),
        "x": rng.random(rows),
        "y": rng.standard_normal(rows),
        "z": z,
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(start, start + rows), copy=False)


def frames(count: int, rows: int, tally: Tally) -> Iterator[pd.DataFrame]:
    for number in range(count):
        frame = make_frame(number, rows)
        tally.add(frame)
        yield frame
        del frame  # the consumer has it: hold no frame while making the next


async def async_frames(count: int, rows: int, tally: Tally) -> AsyncIterator[pd.DataFrame]:
    for frame in frames(count, rows, tally):
        yield frame
        del frame


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_database(root: Path) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], Registry]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'bench.db'}")
    registry = Registry(
        modules=MODULES, storables=[Measurements], default_storage=FileStorage(root / "blobs")
    )
    return engine, async_sessionmaker(engine, expire_on_commit=True), registry


async def labox_save(root: Path, count: int, rows: int) -> dict[str, Any]:
    engine, sessions, registry = open_database(root)
    await BaseRecord.create_all(engine)
    tally = Tally()
    obj = Measurements(description="stream memory bench", frames=async_frames(count, rows, tally))
    started, cpu_start = time.perf_counter(), time.process_time()
    async with sessions() as session:
        record = await save_one(obj, session=session, registry=registry)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_start
    await engine.dispose()
    stored = sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())
    return {
        "manifest": str(record.id),
        "seconds": seconds,
        "cpu": cpu,
        "stored": stored,
        **tally.summary(),
    }


async def labox_load(root: Path, manifest: str) -> dict[str, Any]:
    engine, sessions, registry = open_database(root)
    tally = Tally()
    started, cpu_start = time.perf_counter(), time.process_time()
    async with sessions() as session:
        loaded = await load_one(
            uuid.UUID(manifest), Measurements, session=session, registry=registry
        )
    async for frame in loaded.frames:
        tally.add(frame)
        del frame
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_start
    await engine.dispose()
    return {"seconds": seconds, "cpu": cpu, **tally.summary()}


def plain_write(root: Path, count: int, rows: int) -> dict[str, Any]:
    tally = Tally()
    started, cpu_start = time.perf_counter(), time.process_time()
    writer: pq.ParquetWriter | None = None
    for frame in frames(count, rows, tally):
        table = pa.Table.from_pandas(frame, preserve_index=None)
        if writer is None:
            writer = pq.ParquetWriter(root / "plain.parquet", table.schema, compression="snappy")
        writer.write_table(table, row_group_size=rows)
        del frame, table
    assert writer is not None
    writer.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_start
    return {"seconds": seconds, "cpu": cpu, **tally.summary()}


def plain_read(root: Path, rows: int) -> dict[str, Any]:
    tally = Tally()
    started, cpu_start = time.perf_counter(), time.process_time()
    parquet = pq.ParquetFile(root / "plain.parquet")
    for number in range(parquet.num_row_groups):
        frame = parquet.read_row_group(number).to_pandas()
        frame.index = pd.RangeIndex(number * rows, number * rows + len(frame))
        tally.add(frame)
        del frame
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_start
    return {"seconds": seconds, "cpu": cpu, **tally.summary()}


def run_phase(args: argparse.Namespace) -> None:
    """Child side: do one phase, then print its results and peak memory as one JSON line."""
    root = Path(args.root)
    result: dict[str, Any]
    if args.phase == "idle":
        open_database(root)  # the same imports and objects, no stream
        result = {}
    elif args.phase == "plain-write":
        result = plain_write(root, args.frames, args.rows_per_frame)
    elif args.phase == "plain-read":
        result = plain_read(root, args.rows_per_frame)
    elif args.phase == "save":
        result = asyncio.run(labox_save(root, args.frames, args.rows_per_frame))
    else:
        result = asyncio.run(labox_load(root, args.manifest))
    print(json.dumps({**result, "peak_mb": peak_rss_mb()}))


def child(phase: str, root: Path, args: argparse.Namespace, manifest: str = "") -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--root", str(root)]
    command += ["--frames", str(args.frames), "--rows-per-frame", str(args.rows_per_frame)]
    command += ["--manifest", manifest] if manifest else []
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], unit: str = "x", digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f}{unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def one_round(args: argparse.Namespace, ours_first: bool) -> dict[str, dict[str, Any]]:
    """Each phase once, in a fresh process: writes, then reads, the side first alternating."""
    with tempfile.TemporaryDirectory(prefix="labox-bench-") as tmp:
        root = Path(tmp)
        phases: dict[str, dict[str, Any]] = {"idle": child("idle", root, args)}
        writes = ["save", "plain-write"] if ours_first else ["plain-write", "save"]
        for phase in writes:
            phases[phase] = child(phase, root, args)
        for phase in ["load", "plain-read"] if ours_first else ["plain-read", "load"]:
            phases[phase] = child(phase, root, args, phases["save"]["manifest"])
    return phases


def main(args: argparse.Namespace) -> None:
    frame_mb = args.rows_per_frame * COLUMNS * 8 / 2**20
    args.frames = max(1, round(args.size_mb / frame_mb))
    print(
        f"a stream of {args.frames} frames x {args.rows_per_frame:,} rows x {COLUMNS} columns "
        f"(~{frame_mb:.0f} MB each); each phase in a fresh process; {args.rounds} rounds, "
        f"the side that goes first alternating"
    )
    rounds = []
    for number in range(args.rounds):
        phases = one_round(args, ours_first=number % 2 == 0)
        rounds.append(phases)
        base = phases["idle"]["peak_mb"]
        print(
            f"round {number + 1}: "
            + ", ".join(
                f"{name} {phases[name]['seconds']:.2f} s (CPU {phases[name]['cpu']:.2f}) "
                f"{phases[name]['peak_mb'] - base:+.0f} MB"
                for name in ("plain-write", "save", "plain-read", "load")
            )
            + f"; save/plain {phases['save']['seconds'] / phases['plain-write']['seconds']:.2f}x"
            f" (CPU {phases['save']['cpu'] / phases['plain-write']['cpu']:.2f}x)"
            f", load/plain {phases['load']['seconds'] / phases['plain-read']['seconds']:.2f}x"
            f" (CPU {phases['load']['cpu'] / phases['plain-read']['cpu']:.2f}x)",
            flush=True,
        )
    saved = rounds[0]["save"]
    gib = saved["bytes"] / 2**30
    print(f"frames in memory, total:  {saved['bytes']:,} bytes ({gib:.2f} GiB), ", end="")
    print(f"{saved['rows']:,} rows")
    print(f"stored Parquet blob:      {saved['stored']:,} bytes")
    idle = [r["idle"]["peak_mb"] for r in rounds]
    print(f"idle process (baseline):  {spread(idle, ' MB', 0)} peak RSS (same imports, no stream)")
    print("phase                time, s            peak RSS over idle, MB")
    for name, phase in (
        ("plain pyarrow write", "plain-write"),
        ("labox save", "save"),
        ("plain pyarrow read", "plain-read"),
        ("labox load", "load"),
    ):
        seconds = [r[phase]["seconds"] for r in rounds]
        over = [r[phase]["peak_mb"] - r["idle"]["peak_mb"] for r in rounds]
        print(f"{name:<21}{spread(seconds, '', 2):<19}{spread(over, '', 0)}")
    for name, ours, plain in (("save", "save", "plain-write"), ("load", "load", "plain-read")):
        times = [r[ours]["seconds"] / r[plain]["seconds"] for r in rounds]
        cpu = [r[ours]["cpu"] / r[plain]["cpu"] for r in rounds]
        memory = [
            (r[ours]["peak_mb"] - r["idle"]["peak_mb"])
            / max(r[plain]["peak_mb"] - r["idle"]["peak_mb"], 1)
            for r in rounds
        ]
        verdict = "met" if statistics.median(times) <= TIME_TARGET else "NOT met"
        print(
            f"labox {name} / plain pyarrow: time {spread(times)} (target <= {TIME_TARGET}x, "
            f"median: {verdict}); CPU {spread(cpu)}; peak over idle {spread(memory)}"
        )
    same = {
        (p["frames"], p["rows"], p["digest"])
        for r in rounds
        for p in (r["save"], r["load"], r["plain-write"], r["plain-read"])
    }
    print(
        f"loaded back intact:       {'yes' if len(same) == 1 else 'NO'} "
        f"({saved['frames']} frames, {saved['rows']:,} rows, sha256 of every index and value)"
    )
    worst = max(max(r["save"]["peak_mb"], r["load"]["peak_mb"]) for r in rounds)
    print(
        f"target < {TARGET_MB} MB peak for a {gib:.2f} GiB stream: "
        f"{'met' if worst < TARGET_MB else 'NOT met'} (worst phase of all rounds {worst:.0f} MB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=2048, help="in-memory size of all frames")
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_SIZE_MB} MB stream")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows-per-frame", type=int, default=1_000_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.size_mb = QUICK_SIZE_MB
    if arguments.phase:
        run_phase(arguments)
    else:
        main(arguments)
