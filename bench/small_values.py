"""Small JSON-like results: the typed value tree against the plain JSON it replaced.

Target (issue 6): a plain dict of str/int/float/list saves and loads no more than 10% slower
than with the v1 format (labox.value@v1 + labox.json@v1). Both run in one process, on the
same SQLite file and embedded storage, in interleaved rounds: each round saves then loads N
dicts one save_one/load_one at a time, as a task's results are, old and new alternating
object by object (A B, then B A) so that the machine's load hits both alike. Also prints
the encoder alone (serialize + deserialize of one dict). Medians with min-max.
Run: .venv/bin/python bench/small_values.py [--rounds N] [--objects N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from labox_prefect.core import BaseRecord, Registry, SerializedData, load_one, save_one
from labox_prefect.core.builtin import (
    FileStorage,
    StorableValue,
    json_serializer,
    values_serializer,
)
from labox_prefect.core.builtin.storables.value import LegacyValueUnpacker


class OldValue(StorableValue[Any], class_id="0ddba11c0ffee000", unpacker=LegacyValueUnpacker()):
    """A StorableValue written as in v1: one labox.json@v1 content."""


def result(i: int) -> dict[str, Any]:
    return {
        "name": f"run-{i}",
        "step": i,
        "loss": 1.0 / (i + 1),
        "metrics": {"acc": 0.9, "f1": 0.8, "n": 1000 + i},
        "history": [0.5, 0.4, 0.3, float(i)],
        "tags": ["a", "b", "c"],
    }


async def save_and_load(
    make: Callable[[dict[str, Any]], StorableValue[Any]],
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry,
    value: dict[str, Any],
) -> float:
    """Seconds to save one value and load it back, each in its own session."""
    start = time.perf_counter()
    async with sessions() as session:
        record = await save_one(make(value), session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, session=session, registry=registry)
    elapsed = time.perf_counter() - start
    assert loaded.value == value
    return elapsed


def encode_decode(serializer: Any, values: list[dict[str, Any]]) -> float:
    """The best of 3 passes of one serializer's round trip of every value (less noise)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for value in values:
            data = serializer.serialize_data(value)
            serializer.deserialize_data(
                SerializedData(data=data.data, content_type=data.content_type)
            )
        best = min(best, time.perf_counter() - start)
    return best


def summary(name: str, old: list[float], new: list[float]) -> None:
    ratios = [b / a for a, b in zip(old, new, strict=True)]
    print(
        f"{name}: old {statistics.median(old) * 1e3:.1f} ms, new "
        f"{statistics.median(new) * 1e3:.1f} ms; new/old median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


async def main(rounds: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'bench.db'}")
        await BaseRecord.create_all(engine)
        sessions = async_sessionmaker(engine)
        registry = Registry(
            modules=["labox_prefect.core.builtin"], default_storage=FileStorage(str(root))
        )
        variants: dict[str, Callable[[dict[str, Any]], StorableValue[Any]]] = {
            "old": lambda v: OldValue(v, serializer=json_serializer),
            "new": StorableValue,
        }
        for i in range(20):  # warm up both paths
            for name in ("old", "new"):
                await save_and_load(variants[name], sessions, registry, result(i))
        times: dict[str, list[float]] = {"old": [], "new": []}
        encoder: dict[str, list[float]] = {"old": [], "new": []}
        values = [result(i) for i in range(2000)]
        serializers = {"old": json_serializer, "new": values_serializer}
        for _ in range(rounds):
            spent = {"old": 0.0, "new": 0.0}
            for i in range(n):  # old and new alternate object by object, in both orders
                for name in ("old", "new") if i % 2 else ("new", "old"):
                    spent[name] += await save_and_load(
                        variants[name], sessions, registry, result(i)
                    )
            for name in ("old", "new"):
                times[name].append(spent[name])
                encoder[name].append(encode_decode(serializers[name], values))
        await engine.dispose()
    print(f"{rounds} interleaved rounds; {n} dicts saved and loaded one at a time per round")
    summary("save_one + load_one", times["old"], times["new"])
    summary("encoder alone (2000 dicts)", encoder["old"], encoder["new"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.objects))
