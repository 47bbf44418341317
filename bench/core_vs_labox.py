"""labox_prefect.core against the labox 0.1.0 peer, side by side in one run.

Targets (issue 2): bulk save of 1,000 small pydantic models >= 5x faster than the peer, bulk
load >= 2x, and a 1M-row DataFrame within 1.3x of plain to_parquet / read_parquet.
Run: .venv/bin/python bench/core_vs_labox.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import labox.builtin as peer_builtin
import labox.core as peer
import labox.extra.pydantic as peer_pydantic
import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from labox_prefect import core as ours
from labox_prefect.core.builtin import FileStorage, StorableValue
from labox_prefect.core.extra.pydantic import StorableModel

N_MODELS = 1_000
N_ROWS = 1_000_000


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


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def bench_ours(root: Path) -> tuple[float, float]:
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

    save_s = await timed(save)
    load_s = await timed(load)
    await engine.dispose()
    return save_s, load_s


async def bench_peer(root: Path) -> tuple[float, float]:
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

    save_s = await timed(save)
    load_s = await timed(load)
    await engine.dispose()
    return save_s, load_s


async def bench_frame(root: Path) -> tuple[float, float, float, float]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": np.arange(N_ROWS),
            "x": rng.random(N_ROWS),
            "y": rng.integers(0, 1000, N_ROWS),
            "label": pd.Categorical(rng.choice(["a", "b", "c"], N_ROWS)),
        }
    )
    plain = root / "plain.parquet"
    start = time.perf_counter()
    frame.to_parquet(plain)
    plain_write = time.perf_counter() - start
    start = time.perf_counter()
    pd.read_parquet(plain)
    plain_read = time.perf_counter() - start

    engine = create_async_engine(f"sqlite+aiosqlite:///{root / 'frame.db'}")
    await ours.BaseRecord.create_all(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=True)
    registry = ours.Registry(
        modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"],
        default_storage=FileStorage(root / "frames"),
    )
    async with sessions() as session:
        start = time.perf_counter()
        record = await ours.save_one(StorableValue(frame), session=session, registry=registry)
        ours_write = time.perf_counter() - start
    async with sessions() as session:
        start = time.perf_counter()
        loaded = await ours.load_one(record, StorableValue, session=session, registry=registry)
        ours_read = time.perf_counter() - start
    pd.testing.assert_frame_equal(loaded.value, frame)
    await engine.dispose()
    return ours_write, plain_write, ours_read, plain_read


async def main(rounds: int) -> None:
    results: dict[str, list[float]] = {k: [] for k in ("save", "load", "fw", "fr")}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            our_save, our_load = await bench_ours(root)
            peer_save, peer_load = await bench_peer(root)
            ow, pw, orr, pr = await bench_frame(root)
        results["save"].append(peer_save / our_save)
        results["load"].append(peer_load / our_load)
        results["fw"].append(ow / pw)
        results["fr"].append(orr / pr)
        print(
            f"round: save ours {our_save * 1e3:.0f} ms vs peer {peer_save * 1e3:.0f} ms; "
            f"load ours {our_load * 1e3:.0f} ms vs peer {peer_load * 1e3:.0f} ms; "
            f"1M-row frame write {ow * 1e3:.0f} vs plain {pw * 1e3:.0f} ms, "
            f"read {orr * 1e3:.0f} vs plain {pr * 1e3:.0f} ms"
        )
    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"bulk save of {N_MODELS} models: {med['save']:.1f}x faster than labox 0.1.0 (target >= 5x)"
    )
    print(
        f"bulk load of {N_MODELS} models: {med['load']:.1f}x faster than labox 0.1.0 (target >= 2x)"
    )
    print(f"1M-row DataFrame save: {med['fw']:.2f}x the time of plain to_parquet (target <= 1.3x)")
    print(
        f"1M-row DataFrame load: {med['fr']:.2f}x the time of plain read_parquet (target <= 1.3x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
