"""Loading: order, verification, class resolution and stream lifetimes."""

from __future__ import annotations

import gc
import random
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentCorruptedError,
    ContentRecord,
    DamagedRecordError,
    ManifestNotFoundError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    StorableTypeError,
    load_one,
    new_loader,
    new_saver,
    save_one,
)
from labox_prefect.core.builtin import FileStorage, StorableStream, StorableValue
from labox_prefect.core.extra import pandas as labox_pandas
from labox_prefect.core.extra.pydantic import StorableModel

Sessions = async_sessionmaker[AsyncSession]


class Note(StorableModel, class_id="2f4a6c8e0b1d3f57"):
    text: str


class Other(StorableModel, class_id="8e6c4a2f0d1b3957"):
    text: str


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_bulk_load_returns_results_in_request_order(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session, new_saver(session=session, registry=registry) as saver:
        futures = [saver.save_soon(Note(text=str(i))) for i in range(100)]
    records = [f.value for f in futures]
    random.Random(7).shuffle(records)
    async with sessions() as session, new_loader(session=session, registry=registry) as loader:
        loaded = [loader.load_soon(r, Note) for r in records]
    texts = {r.id: f.value.text for r, f in zip(records, loaded, strict=True)}
    expected = {f.value.id: str(i) for i, f in enumerate(futures)}
    assert texts == expected


async def test_class_is_found_through_the_registry_by_id(
    sessions: Sessions, registry: Registry
) -> None:
    reg = Registry(registries=[registry], storables=[Note])
    async with sessions() as session:
        record = await save_one(Note(text="hi"), session=session, registry=reg)
        loaded = await load_one(record.id, session=session, registry=reg)
    assert loaded == Note(text="hi")


async def test_unknown_class_id_and_wrong_class_are_clear_errors(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        record = await save_one(Note(text="hi"), session=session, registry=registry)
        unknown = await save_one(Note(text="hi"), session=session, registry=registry)
        # A class id that no class of this process has (the class was never imported here).
        await session.execute(
            update(ManifestRecord)
            .where(ManifestRecord.id == unknown.id)
            .values(class_id=uuid.uuid4())
        )
        await session.commit()
        with pytest.raises(NotRegisteredError, match="No storable class with class_id"):
            await load_one(unknown.id, session=session, registry=registry)
        with pytest.raises(StorableTypeError, match="pass the class it was saved as"):
            await load_one(record, Other, session=session, registry=registry)
        with pytest.raises(ManifestNotFoundError, match="No manifest with id"):
            await load_one(uuid.uuid4(), Note, session=session, registry=registry)


async def _saved_blob(
    sessions: Sessions, reg: Registry, obj: Any, folder: Path
) -> tuple[ManifestRecord, Path]:
    """Save ``obj`` as a StorableValue; its record and the one blob in ``folder`` holding it."""
    async with sessions() as session:
        record = await save_one(StorableValue(obj), session=session, registry=reg)
        size = (
            await session.execute(
                select(ContentRecord.content_size).where(ContentRecord.manifest_id == record.id)
            )
        ).scalar_one()
    return record, _only_blob(folder, size)


async def test_tampered_blob_is_refused(sessions: Sessions, tmp_path: Path) -> None:
    storage = FileStorage(str(tmp_path))
    reg = Registry(modules=["labox_prefect.core.builtin"], default_storage=storage)
    record, path = await _saved_blob(sessions, reg, b"precious" * 1000, tmp_path)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    async with sessions() as session:
        with pytest.raises(ContentCorruptedError, match="corrupted"):
            await load_one(record, StorableValue, session=session, registry=reg)


@pytest.mark.parametrize("value", ["bytes", "frame"])
async def test_tampered_large_blob_is_refused_as_corrupted(
    sessions: Sessions, tmp_path: Path, value: str
) -> None:
    # Large blobs are hashed beside their decoding: the check still decides, and a decoder
    # that chokes on the altered bytes does not hide the corruption.
    storage = FileStorage(str(tmp_path))
    modules = ["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"]
    reg = Registry(modules=modules, default_storage=storage)
    obj = b"precious" * 40_000 if value == "bytes" else pd.DataFrame({"x": range(100_000)})
    record, path = await _saved_blob(sessions, reg, obj, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) - 30] ^= 0xFF  # in the Parquet footer: decoding fails too
    path.write_bytes(bytes(data))
    async with sessions() as session:
        with pytest.raises(ContentCorruptedError, match="corrupted"):
            await load_one(record, StorableValue, session=session, registry=reg)


async def test_tampered_stream_fails_at_its_end(sessions: Sessions, tmp_path: Path) -> None:
    storage = FileStorage(str(tmp_path))
    reg = Registry(modules=["labox_prefect.core.builtin"], default_storage=storage)
    async with sessions() as session:
        record = await save_one(
            StorableStream(numbers(1000), item_type=int), session=session, registry=reg
        )
        size = (
            await session.execute(
                select(ContentRecord.content_size).where(ContentRecord.manifest_id == record.id)
            )
        ).scalar_one()
    path = _only_blob(tmp_path, size)
    path.write_bytes(path.read_bytes().replace(b"999", b"998"))
    async with sessions() as session:
        loaded = await load_one(record, StorableStream, session=session, registry=reg)
        with pytest.raises(ContentCorruptedError):
            _ = [item async for item in loaded.stream]


async def test_exit_stack_closes_loaded_streams(sessions: Sessions, registry: Registry) -> None:
    async with sessions() as session:
        record = await save_one(
            StorableStream(numbers(50), item_type=int), session=session, registry=registry
        )
    async with AsyncExitStack() as stack, sessions() as session:
        loaded = await load_one(
            record, StorableStream, session=session, registry=registry, stack=stack
        )
        stream = loaded.stream
        assert await anext(aiter(stream)) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(aiter(stream))


async def test_a_loaded_stream_holds_no_item_while_the_next_is_read(
    sessions: Sessions, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each item of a stream may be a large frame: only the consumer may keep one.
    frames = [pd.DataFrame({"x": [float(i)] * 100}) for i in range(3)]
    async with sessions() as session:
        record = await save_one(
            StorableStream(_yield_all(frames), item_type=pd.DataFrame),
            session=session,
            registry=registry,
        )
    handed_out: list[weakref.ref[pd.DataFrame]] = []
    alive_when_reading: list[bool] = []
    read_frame = labox_pandas.read_frame

    def recording_read_frame(*args: Any) -> pd.DataFrame:
        gc.collect()
        alive_when_reading.append(any(ref() is not None for ref in handed_out))
        read = read_frame(*args)
        handed_out.append(weakref.ref(read))
        return read

    monkeypatch.setattr(labox_pandas, "read_frame", recording_read_frame, raising=True)
    async with sessions() as session:
        loaded = await load_one(record, StorableStream, session=session, registry=registry)
    count = 0
    async for item in loaded.stream:
        count += 1
        del item
    assert count == 3
    assert alive_when_reading == [False, False, False]


async def _yield_all(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _only_blob(root: Path, size: int) -> Path:
    """The single stored file of that size under a FileStorage root."""
    (path,) = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == size]
    return path


async def test_a_manifest_whose_contents_are_gone_names_itself(
    sessions: Sessions, registry: Registry
) -> None:
    """The issue's example: a bare KeyError before; now the damaged manifest is named."""
    async with sessions() as session:
        record = await save_one(StorableValue({"kept": 1}), session=session, registry=registry)
        await session.execute(delete(ContentRecord).where(ContentRecord.manifest_id == record.id))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(DamagedRecordError, match=rf"Manifest {record.id} cannot be rebuilt"):
            await load_one(record.id, session=session, registry=registry)


async def test_a_class_id_naming_a_class_of_another_unpacker_is_refused(
    sessions: Sessions, registry: Registry
) -> None:
    """The issue's example: a manifest whose class id names another registered class."""
    async with sessions() as session:
        record = await save_one(StorableValue([1, 2]), session=session, registry=registry)
        await session.execute(
            update(ManifestRecord)
            .where(ManifestRecord.id == record.id)
            .values(class_id=Note.storable_class_id())
        )
        await session.commit()
    async with sessions() as session:
        knows_note = Registry(registries=[registry], storables=[Note])
        with pytest.raises(DamagedRecordError, match=r"class id .* names Note"):
            await load_one(record.id, session=session, registry=knows_note)
