"""Classes of a script run as a file: found again by the script itself and by its importers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import asyncio, dataclasses, sys
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from labox_prefect.core import BaseRecord, Registry, load_one, save_one
from labox_prefect.core.builtin import FileStorage, StorableValue

@dataclasses.dataclass
class Box:
    size: tuple[int, int]

async def open_registry():
    engine = create_async_engine("sqlite+aiosqlite:///labox.db")
    await BaseRecord.create_all(engine)
    storage = FileStorage("blobs")
    registry = Registry(modules=["labox_prefect.core.builtin"], default_storage=storage)
    return async_sessionmaker(engine), registry

async def save():
    sessions, registry = await open_registry()
    async with sessions() as session:
        record = await save_one(StorableValue(Box((1, 2))), session=session, registry=registry)
    async with sessions() as session:  # the same script loads it back (a cache hit)
        loaded = await load_one(record.id, session=session, registry=registry)
    assert type(loaded.value) is Box and loaded.value == Box((1, 2)), loaded.value
    print(record.id)

if __name__ == "__main__":
    asyncio.run(save())
"""

LOADER = """
import asyncio, sys, uuid
import myflow
from labox_prefect.core import load_one

async def main():
    sessions, registry = await myflow.open_registry()
    async with sessions() as session:
        loaded = await load_one(uuid.UUID(sys.argv[1]), session=session, registry=registry)
    assert type(loaded.value) is myflow.Box and loaded.value == myflow.Box((1, 2)), loaded.value
    print("loaded", type(loaded.value).__module__)

asyncio.run(main())
"""


def test_a_class_of_a_script_run_as_a_file_loads_where_the_script_is_imported(
    tmp_path: Path,
) -> None:
    (tmp_path / "myflow.py").write_text(textwrap.dedent(SCRIPT))
    (tmp_path / "load_it.py").write_text(textwrap.dedent(LOADER))
    saved = subprocess.run(
        [sys.executable, "myflow.py"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert saved.returncode == 0, saved.stderr[-2000:]
    manifest_id = saved.stdout.strip().splitlines()[-1]
    loaded = subprocess.run(
        [sys.executable, "load_it.py", manifest_id],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().endswith("loaded myflow")
