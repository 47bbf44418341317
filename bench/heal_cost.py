"""What self-healing writes cost: saving content that is already stored, rewrite vs skip.

A bulk save of ``--objects`` distinct byte values (``--size`` bytes each) to a FileStorage on
SQLite, into a fresh folder and database per round; then the same values saved again, which
is where the two variants differ: "heal" (the storage as shipped: a present blob is read
and compared with the value, rewritten if it differs, else its age is refreshed) and "skip"
(the old shortcut: an ``exists`` check, and no write when the key is present, so a damaged
blob stays damaged). Rounds alternate A B A B;
medians with min-max, and the ratio heal / skip. Nothing is asserted.

Usage: ``python bench/heal_cost.py [--rounds 5] [--objects 1000] [--size 4096]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from labox_prefect.core import BaseRecord, Registry, new_saver
from labox_prefect.core.builtin import FileStorage, StorableValue


class SkippingFileStorage(FileStorage):
    """The pre-healing behaviour, for comparison only: present keys are not rewritten."""

    def _write_bytes(self, data: bytes, path: str) -> None:
        if self.fs.exists(path):
            return
        super()._write_bytes(data, path)


async def one_round(storage_cls: type[FileStorage], objects: int, size: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'bench.db'}")
        await BaseRecord.create_all(engine)
        sessions = async_sessionmaker(engine)
        registry = Registry(
            modules=["labox_prefect.core.builtin"],
            inline_max_size=0,
            default_storage=storage_cls(root / "blobs"),
        )
        values = [os.urandom(size) for _ in range(objects)]
        timings = []
        for _ in range(2):  # first save writes new blobs; the second finds them all present
            start = time.perf_counter()
            async with sessions() as session, new_saver(session=session, registry=registry) as s:
                for value in values:
                    s.save_soon(StorableValue(value))
            timings.append(time.perf_counter() - start)
        await engine.dispose()
        return timings[0], timings[1]


def summary(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:.0f} ms ({low:.0f}-{high:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"heal": [], "skip": []}
    for _ in range(args.rounds):
        for name, cls in (("heal", FileStorage), ("skip", SkippingFileStorage)):
            results[name].append(asyncio.run(one_round(cls, args.objects, args.size)))
    print(f"{args.rounds} rounds of {args.objects} objects x {args.size} B, FileStorage + SQLite")
    for name, rows in results.items():
        print(
            f"  {name}: first save {summary([r[0] for r in rows])}, "
            f"saving the same again {summary([r[1] for r in rows])}"
        )
    for phase, index in (("first save", 0), ("same again", 1)):
        heal = statistics.median(r[index] for r in results["heal"])
        skip = statistics.median(r[index] for r in results["skip"])
        ratios = [
            h[index] / s[index] for h, s in zip(results["heal"], results["skip"], strict=True)
        ]
        print(
            f"  heal / skip, {phase}: {heal / skip:.2f}x "
            f"(per-round {min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
