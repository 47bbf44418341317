"""Saving: round trips of every storable family, batches, failures and what reaches the DB."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pytest
from pydantic import BaseModel
from sqlalchemy import event, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentRecord,
    InvalidTagsError,
    ManifestRecord,
    NotRegisteredError,
    Registry,
    SaveNotCompleteError,
    SerializationError,
    SerializedData,
    Serializer,
    StorableTypeError,
    get_contents,
    load_one,
    new_saver,
    save_one,
    save_one_with_contents,
    verify_manifests,
)
from labox_prefect.core.builtin import (
    FileStorage,
    MemoryStorage,
    StorableDataclass,
    StorableValue,
)
from labox_prefect.core.extra.pandas import ParquetDataFrameStreamSerializer
from labox_prefect.core.extra.pydantic import ContentSpec, StorableModel
from tests.core.conftest import ALL_MODULES

Sessions = async_sessionmaker[AsyncSession]


class Point(BaseModel):
    x: float
    y: float


class Sample(StorableModel, class_id="5a3c1e0f9b2d4a68"):
    name: str
    when: datetime.datetime
    points: list[Point]
    weights: dict[str, float]
    note: str | None = None
    raw: bytes = b""
    frame: pd.DataFrame | None = None


@dataclass
class Measurement(StorableDataclass, class_id="7d2e4f6a8c0b1e3d"):
    label: str
    shape: tuple[int, int]
    payload: bytes
    day: datetime.date


FrameStream = Annotated[
    AsyncIterable[pd.DataFrame], ContentSpec(serializer=ParquetDataFrameStreamSerializer())
]


class Series(StorableModel, class_id="3b9d7f1a2c4e6a80"):
    title: str
    chunks: FrameStream


async def frames(n: int) -> AsyncIterator[pd.DataFrame]:
    for i in range(n):
        yield pd.DataFrame({"t": [i, i + 1], "v": [i * 2.0, i * 3.0]})


async def test_model_round_trip_keeps_nested_optional_bytes_and_frames(
    sessions: Sessions, registry: Registry
) -> None:
    frame = pd.DataFrame({"a": range(5), "b": list("abcde")})
    sample = Sample(
        name="s1",
        when=datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC),
        points=[Point(x=1, y=2), Point(x=3, y=4)],
        weights={"w": 0.5},
        raw=bytes(range(256)) * 100,
        frame=frame,
    )
    async with sessions() as session:
        record = await save_one(sample, session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, Sample, session=session, registry=registry)
    assert loaded.model_dump(exclude={"frame"}) == sample.model_dump(exclude={"frame"})
    pd.testing.assert_frame_equal(loaded.frame, frame)


async def test_large_values_are_contents_of_their_own_not_base64_in_the_body(
    sessions: Sessions, registry: Registry
) -> None:
    raw = b"\x00\xff" * 50_000
    sample = Sample(
        name="big", when=datetime.datetime.now(datetime.UTC), points=[], weights={}, raw=raw
    )
    async with sessions() as session:
        record = await save_one(sample, session=session, registry=registry)
        rows = (
            (
                await session.execute(
                    select(ContentRecord).where(ContentRecord.manifest_id == record.id)
                )
            )
            .scalars()
            .all()
        )
    by_key = {row.content_key: row for row in rows}
    assert by_key["raw"].content_size == len(raw)
    assert by_key["raw"].content_type == "application/octet-stream"
    assert by_key["__body__"].content_size < 1_000


async def test_save_one_with_contents_hands_back_what_get_contents_reads(
    sessions: Sessions, registry: Registry
) -> None:
    sample = Sample(
        name="c",
        when=datetime.datetime.now(datetime.UTC),
        points=[Point(x=1, y=2)],
        weights={},
        raw=b"\x01" * 50_000,
        frame=pd.DataFrame({"a": [1, 2]}),
    )
    async with sessions() as session:
        manifest, contents = await save_one_with_contents(
            sample, session=session, registry=registry, tags={"k": "v"}
        )
    async with sessions() as session:
        stored = await get_contents(session, manifest.id)

    def columns(record: ContentRecord) -> dict[str, Any]:
        return {c.key: getattr(record, c.key) for c in ContentRecord.__table__.columns}

    assert [columns(c) for c in contents] == [columns(c) for c in stored]
    assert [c.content_key for c in contents] == sorted(c.content_key for c in contents)
    assert manifest.tags == {"k": "v"}


async def test_saved_records_are_detached_with_their_identity_and_no_pending_change(
    sessions: Sessions, registry: Registry
) -> None:
    """Records handed back by a save are those a query gives: in no session, identified by
    their primary key, with nothing to flush; a session takes one in without an INSERT."""
    async with sessions() as session:
        manifest, contents = await save_one_with_contents(
            StorableValue({"a": 1}), session=session, registry=registry, tags={"k": "v"}
        )
        async with new_saver(session=session, registry=registry) as saver:
            future = saver.save_soon(StorableValue([1]))
    for record in (manifest, *contents, future.value):
        state = sa_inspect(record)
        assert state.detached
        assert state.identity == (record.id,)
        assert not state.modified, "building the record must not record changes to flush"
        assert not state.unloaded, "every column is loaded"
        assert not state.expired_attributes
    async with sessions() as session:
        merged = await session.merge(manifest, load=False)  # refused for a transient record
        assert merged.tags == {"k": "v"}
        assert [c.manifest_id for c in contents] == [manifest.id]


async def test_before_commit_writes_in_the_saves_own_transaction(
    engine: AsyncEngine, sessions: Sessions, registry: Registry
) -> None:
    """What the hook writes is committed with the record, by the save's one COMMIT."""
    commits: list[str] = []
    event.listen(engine.sync_engine, "commit", lambda conn: commits.append("commit"))
    seen: list[uuid.UUID] = []
    async with sessions() as session:

        async def note(manifest_id: uuid.UUID) -> None:
            seen.append(manifest_id)
            other = ManifestRecord(id=uuid.uuid4(), class_id=uuid.uuid4(), unpacker_name="x")
            other.tags = {"noted": str(manifest_id)}
            session.add(other)
            await session.flush()

        manifest, _ = await save_one_with_contents(
            StorableValue({"a": 1}), session=session, registry=registry, before_commit=note
        )
    assert seen == [manifest.id]
    assert commits == ["commit"]
    async with sessions() as session:
        noted = (await session.scalars(select(ManifestRecord))).all()
    assert sorted(record.tags.get("noted", "") for record in noted) == ["", str(manifest.id)]


async def test_a_failing_before_commit_leaves_nothing_committed(
    sessions: Sessions, registry: Registry
) -> None:
    async def refuse(manifest_id: uuid.UUID) -> None:
        raise RuntimeError("the key row could not be written")

    async with sessions() as session:
        with pytest.raises(RuntimeError, match="could not be written"):
            await save_one_with_contents(
                StorableValue({"a": 1}), session=session, registry=registry, before_commit=refuse
            )
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ManifestRecord)) == 0
        assert await session.scalar(select(func.count()).select_from(ContentRecord)) == 0


async def test_dataclass_keeps_tuples_bytes_and_dates(
    sessions: Sessions, registry: Registry
) -> None:
    original = Measurement("m", (3, 4), b"\x01\x02", datetime.date(2024, 1, 2))
    async with sessions() as session:
        record = await save_one(original, session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, Measurement, session=session, registry=registry)
    assert loaded == original
    assert isinstance(loaded.shape, tuple)
    assert isinstance(loaded.payload, bytes)


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2, {"b": None}]},
        "héllo",
        b"\x00bytes",
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        [1.5, 2.5],
    ],
)
async def test_storable_value_infers_its_serializer(
    sessions: Sessions, registry: Registry, value: Any
) -> None:
    async with sessions() as session:
        record = await save_one(StorableValue(value), session=session, registry=registry)
    async with sessions() as session:
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    assert loaded.value == value
    assert type(loaded.value) is type(value)


async def test_stream_field_round_trips_chunk_by_chunk(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        record = await save_one(
            Series(title="s", chunks=frames(4)), session=session, registry=registry
        )
    async with sessions() as session:
        loaded = await load_one(record, Series, session=session, registry=registry)
        chunks = [chunk async for chunk in loaded.chunks]
    assert len(chunks) == 4
    pd.testing.assert_frame_equal(chunks[3], pd.DataFrame({"t": [3, 4], "v": [6.0, 9.0]}))


async def test_record_is_usable_after_commit_and_in_another_session(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        record = await save_one(
            StorableValue({"k": 1}), session=session, registry=registry, tags={"p": "q"}
        )
        # expire_on_commit=True has run: attributes must still be readable without I/O.
        assert isinstance(record.id, uuid.UUID)
        assert record.tags == {"p": "q"}
        assert record.created_at.tzinfo is not None
    async with sessions() as other:
        loaded = await load_one(record, session=other, registry=registry)
    assert loaded.value == {"k": 1}


async def test_bulk_save_uses_one_insert_per_table(
    engine: AsyncEngine, sessions: Sessions, registry: Registry
) -> None:
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sessions() as session:
            async with new_saver(session=session, registry=registry, tags={"batch": "1"}) as saver:
                futures = [saver.save_soon(StorableValue({"i": i})) for i in range(200)]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 2
    records = [f.value for f in futures]
    assert len({r.id for r in records}) == 200
    assert all(r.tags == {"batch": "1"} for r in records)


async def test_one_failing_object_does_not_lose_the_others(
    sessions: Sessions, registry: Registry
) -> None:
    with pytest.raises(SerializationError, match=r"Cannot save value \(a object\)"):
        async with sessions() as session:
            async with new_saver(session=session, registry=registry) as saver:
                good = [saver.save_soon(StorableValue(i)) for i in range(5)]
                bad = saver.save_soon(StorableValue(object()))
    assert [f.value.id for f in good]
    with pytest.raises(SerializationError):
        _ = bad.value
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(ManifestRecord))
        ids = {f.value.id for f in good}
        found = set(
            (await session.execute(select(ManifestRecord.id).where(ManifestRecord.id.in_(ids))))
            .scalars()
            .all()
        )
    assert found == ids
    assert count is not None
    assert count >= 5


async def test_manifest_is_not_recorded_when_a_stream_fails_midway(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    async def broken() -> AsyncIterator[pd.DataFrame]:
        yield pd.DataFrame({"t": [1], "v": [1.0]})
        raise RuntimeError("sensor went away")

    with pytest.raises(RuntimeError, match="sensor went away"):
        async with sessions() as session:
            await save_one(Series(title="x", chunks=broken()), session=session, registry=registry)
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ManifestRecord)
            .where(ManifestRecord.class_id == Series.storable_class_id())
        )
    assert count == 0
    assert [config async for config in storage.iter_stored()] == []


async def test_future_value_before_exit_is_a_clear_error(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session, new_saver(session=session, registry=registry) as saver:
        future = saver.save_soon(StorableValue(1))
        with pytest.raises(SaveNotCompleteError, match="after the block"):
            _ = future.value
    assert future.value.id


async def test_non_storable_and_bad_tags_are_refused(
    sessions: Sessions, registry: Registry
) -> None:
    async with sessions() as session:
        with pytest.raises(StorableTypeError, match="Wrap it in StorableValue"):
            await save_one(42, session=session, registry=registry)  # type: ignore[arg-type]
        with pytest.raises(InvalidTagsError, match="not str to str"):
            await save_one(StorableValue(1), session=session, registry=registry, tags={"n": 1})  # type: ignore[dict-item]


async def test_unregistered_storage_is_refused_before_anything_is_written(
    sessions: Sessions, registry: Registry
) -> None:
    stray = MemoryStorage(name="stray.memory@v1")
    async with sessions() as session:
        with pytest.raises(NotRegisteredError, match=r"stray\.memory@v1"):
            await save_one(StorableValue(1, storage=stray), session=session, registry=registry)
    assert [c async for c in stray.iter_stored()] == []


async def test_small_json_lives_in_its_record_and_the_rest_in_the_storage(
    sessions: Sessions, storage: MemoryStorage
) -> None:
    inline = Registry(modules=["labox_prefect.core.builtin"], default_storage=storage)
    blobs_only = Registry(
        modules=["labox_prefect.core.builtin"], default_storage=storage, inline_max_size=0
    )
    async with sessions() as session:
        small = await save_one(StorableValue({"k": 1}), session=session, registry=inline)
        big = await save_one(StorableValue({"k": "x" * 10_000}), session=session, registry=inline)
        text = await save_one(StorableValue("plain text"), session=session, registry=inline)
        off = await save_one(StorableValue({"k": 2}), session=session, registry=blobs_only)
        names = dict(
            (
                await session.execute(
                    select(ContentRecord.manifest_id, ContentRecord.storage_name).where(
                        ContentRecord.manifest_id.in_([small.id, big.id, text.id, off.id])
                    )
                )
            ).all()
        )
    assert names == {
        small.id: "labox.database@v1",
        big.id: storage.name,
        text.id: storage.name,
        off.id: storage.name,
    }
    async with sessions() as session:
        assert (await load_one(small, session=session, registry=inline)).value == {"k": 1}


async def test_saving_again_repairs_a_damaged_blob(sessions: Sessions, tmp_path: Path) -> None:
    """The issue's example: flip a byte of a stored blob, save the same value again."""
    files = FileStorage(tmp_path / "blobs")
    registry = Registry(
        modules=["labox_prefect.core.builtin"], inline_max_size=0, default_storage=files
    )
    value = b"measured bytes " * 100
    async with sessions() as session:
        old = await save_one(StorableValue(value), session=session, registry=registry)
        [content] = await get_contents(session, old.id)
    blob = tmp_path / "blobs" / content.storage_config["key"]
    damaged = bytearray(blob.read_bytes())
    damaged[10] ^= 0xFF
    blob.write_bytes(bytes(damaged))

    async with sessions() as session:
        new = await save_one(StorableValue(value), session=session, registry=registry)
    async with sessions() as session:
        assert (await load_one(new, session=session, registry=registry)).value == value
        assert (await load_one(old, session=session, registry=registry)).value == value
        assert (await verify_manifests(session, registry)).ok


@pytest.mark.filterwarnings("ignore:types.Wide has no class_id")
async def test_a_content_key_too_long_for_its_column_fails_its_object_alone(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    """Long keys: a raw "value too long" from PostgreSQL lost the whole batch before."""
    long_name = "measurement_" + "x" * 300
    Wide = make_dataclass(
        "Wide",
        [(long_name, Annotated[bytes, ContentSpec()])],
        bases=(StorableDataclass,),
    )
    wide = Wide(b"payload")
    async with sessions() as session:
        with pytest.raises(StorableTypeError, match=r"content keys are text of at most 255"):
            async with new_saver(
                session=session, registry=Registry(registries=[registry], storables=[Wide])
            ) as saver:
                refused = saver.save_soon(wide)
                kept = saver.save_soon(StorableValue(b"kept"))
    with pytest.raises(StorableTypeError):
        _ = refused.value
    async with sessions() as session:
        assert (await load_one(kept.value, session=session, registry=registry)).value == b"kept"


class WordySerializer(Serializer[complex]):
    """A serializer whose content type does not fit its column."""

    name = "test.wordy@v1"
    types = (complex,)

    def serialize_data(self, value: complex, /) -> SerializedData:
        return SerializedData(data=str(value).encode(), content_type="text/x-" + "w" * 300)

    def deserialize_data(self, content: SerializedData, /) -> complex:
        return complex(content.data.decode())


async def test_a_content_type_too_long_for_its_column_fails_its_object_alone(
    sessions: Sessions, registry: Registry
) -> None:
    wordy = Registry(registries=[registry], serializers=[WordySerializer()])
    async with sessions() as session:
        with pytest.raises(SerializationError, match=r"content type .* at most 255"):
            async with new_saver(session=session, registry=wordy) as saver:
                refused = saver.save_soon(StorableValue(1 + 2j))
                kept = saver.save_soon(StorableValue("kept"))
    with pytest.raises(SerializationError):
        _ = refused.value
    async with sessions() as session:
        assert (await load_one(kept.value, session=session, registry=wordy)).value == "kept"


class _TaskNoting(MemoryStorage):
    """A memory storage that notes the asyncio task each write runs in."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[asyncio.Task[Any] | None] = []

    async def write_data(self, data: bytes, digest: Any, tags: Any, /) -> Any:
        self.tasks.append(asyncio.current_task())
        return await super().write_data(data, digest, tags)


async def test_a_batch_of_one_is_written_in_the_callers_own_task(sessions: Sessions) -> None:
    storage = _TaskNoting()
    registry = Registry(modules=ALL_MODULES, default_storage=storage)
    async with sessions() as session:
        record = await save_one(StorableValue(b"\x00\xff"), session=session, registry=registry)
        async with new_saver(session=session, registry=registry) as saver:
            saver.save_soon(StorableValue(b"\x01"))
            saver.save_soon(StorableValue(b"\x02"))
        loaded = await load_one(record, StorableValue, session=session, registry=registry)
    assert loaded.value == b"\x00\xff"
    assert storage.tasks[0] is asyncio.current_task()  # no task of its own: cheaper
    assert all(task is not asyncio.current_task() for task in storage.tasks[1:])  # gathered


def _spy_on_writes(monkeypatch: pytest.MonkeyPatch, storage: FileStorage) -> list[type[Any]]:
    """The type of ``data`` of each ``write_data`` call of ``storage``, in order."""
    seen: list[type[Any]] = []
    write_data = storage.write_data

    async def spy(data: bytes, digest: Any, tags: Any, /) -> dict[str, Any]:
        seen.append(type(data))
        return await write_data(data, digest, tags)

    monkeypatch.setattr(storage, "write_data", spy)
    return seen


async def test_a_frame_reaches_a_file_storage_as_a_view_and_heals_from_it(
    sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bytes copy of the Parquet: the storage writes (and compares) Arrow's buffer."""
    files = FileStorage(tmp_path / "blobs")
    registry = Registry(modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"])
    registry = Registry(registries=[registry], default_storage=files)
    seen = _spy_on_writes(monkeypatch, files)
    frame = pd.DataFrame({"a": range(50_000), "b": [1.5] * 50_000})
    async with sessions() as session:
        old = await save_one(StorableValue(frame), session=session, registry=registry)
        [content] = await get_contents(session, old.id)
    blob = tmp_path / "blobs" / content.storage_config["key"]
    damaged = bytearray(blob.read_bytes())
    damaged[-100] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    async with sessions() as session:
        new = await save_one(StorableValue(frame), session=session, registry=registry)
        again = await save_one(StorableValue(frame), session=session, registry=registry)
    assert seen == [memoryview, memoryview, memoryview]
    async with sessions() as session:
        for record in (old, new, again):
            loaded = (await load_one(record, session=session, registry=registry)).value
            pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert (await verify_manifests(session, registry)).ok


class _BytesOnlyFiles(FileStorage):
    writes_views = False


async def test_a_storage_that_takes_no_views_is_given_bytes(
    sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _BytesOnlyFiles(tmp_path / "blobs")
    registry = Registry(modules=["labox_prefect.core.builtin", "labox_prefect.core.extra.pandas"])
    registry = Registry(registries=[registry], default_storage=files)
    seen = _spy_on_writes(monkeypatch, files)
    frame = pd.DataFrame({"a": range(1_000)})
    async with sessions() as session:
        record = await save_one(StorableValue(frame), session=session, registry=registry)
        loaded = (await load_one(record, session=session, registry=registry)).value
    assert seen == [bytes]
    pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
