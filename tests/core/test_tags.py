"""One tag rule, checked before anything is written, the same on every database."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from labox_prefect.core import (
    ContentRecord,
    InvalidTagsError,
    ManifestRecord,
    Registry,
    find_manifests,
    load_one,
    new_saver,
)
from labox_prefect.core.builtin import MemoryStorage, StorableValue
from labox_prefect.core.tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, check_tags

Sessions = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"k": "a\x00b"}, r"tag 'k': the value holds a NUL character"),
        ({"a\x00": "v"}, r"the key holds a NUL character"),
        ({"k": "\ud800"}, r"lone surrogate"),
        ({"k" * (MAX_KEY_LENGTH + 1): "v"}, r"the key has 257 characters, more than 256"),
        ({"k": "v" * (MAX_VALUE_LENGTH + 1)}, r"the value has 4097 characters"),
        ({"k": 1}, r"not str to str"),
        ({"": "x"}, r"tag '': 'x': the key is empty"),
    ],
)
def test_the_tag_rule_names_the_tag_and_the_fix(tags: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTagsError, match=message):
        check_tags(tags)  # type: ignore[arg-type]


def test_tags_within_the_rule_pass_unchanged() -> None:
    tags = {"k": "", "k" * MAX_KEY_LENGTH: "v" * MAX_VALUE_LENGTH, "ctl": "\x01\t\n"}
    assert check_tags(tags) == tags


async def test_a_nul_in_a_tag_fails_its_object_alone_in_a_batch(
    sessions: Sessions, registry: Registry, storage: MemoryStorage
) -> None:
    """The issue's example on SQLite and PostgreSQL: the others of the batch are saved."""
    registry = Registry(registries=[registry], inline_max_size=0, default_storage=storage)
    async with sessions() as session:
        with pytest.raises(InvalidTagsError, match=r"tag 'k'.*NUL"):
            async with new_saver(session=session, registry=registry) as saver:
                before = saver.save_soon(StorableValue("first"), {"k": "fine"})
                bad = saver.save_soon(StorableValue("bad"), {"k": "a\x00b"})
                after = saver.save_soon(StorableValue("after"), {"k": "fine"})
    with pytest.raises(InvalidTagsError):
        _ = bad.value
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ManifestRecord)) == 2
        assert await session.scalar(select(func.count()).select_from(ContentRecord)) == 2
        found = await find_manifests(session, tags={"k": "fine"})
        assert {m.id for m in found} == {before.value.id, after.value.id}
        assert (await load_one(after.value, session=session, registry=registry)).value == "after"
    blobs = [config async for config in storage.iter_stored()]
    assert len(blobs) == 2  # nothing of the refused object was written


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tags=st.dictionaries(st.text(max_size=12), st.text(max_size=12), min_size=1, max_size=3))
async def test_every_tag_the_rule_accepts_is_found_again_by_itself(
    sessions: Sessions, registry: Registry, tags: dict[str, str]
) -> None:
    """The one rule means: accepted tags are stored and found by themselves on any database."""
    try:
        check_tags(tags)
    except InvalidTagsError:
        return  # refused before anything is written, on every database alike
    async with sessions() as session:
        async with new_saver(session=session, registry=registry) as saver:
            future = saver.save_soon(StorableValue(1), tags)
        for key, value in tags.items():
            found = await find_manifests(session, tags={key: value})
            assert future.value.id in {m.id for m in found}
        found = await find_manifests(session, tags=tags)
        assert future.value.id in {m.id for m in found}
