"""One configuration: the target a task saves to is the target find_results, ResultRef and
the CLI read (a named block, the run's block, the saved ``default`` block, the environment)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.blocks.core import Block
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr
from typer.testing import CliRunner

from labox_prefect import (
    InvalidSettingError,
    LaboxResultStorage,
    ResultTargetError,
    find_results,
    labox_task,
)
from labox_prefect import target as target_module
from labox_prefect.cli import app
from labox_prefect.core.builtin import FileStorage, MemoryStorage, S3Storage
from labox_prefect.result_storage import saved_default_block
from labox_prefect.target import DEFAULT_BLOCK_NAME, Target, resolve_target
from tests.integration.conftest import Backend

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_storage_urls(tmp_path: Path) -> None:
    def storage(url: str) -> object:
        return Target("sqlite+aiosqlite://", url, s3_endpoint_url="http://s3").storage()

    assert isinstance(storage(str(tmp_path)), FileStorage)
    assert isinstance(storage(f"file://{tmp_path}"), FileStorage)
    assert isinstance(storage("memory://"), MemoryStorage)
    s3 = storage("s3://my-bucket/some/prefix")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "some/prefix")
    with pytest.raises(InvalidSettingError, match="scheme 'gs' is not one Labox stores to"):
        storage("gs://bucket")
    with pytest.raises(InvalidSettingError, match="s3://bucket/prefix") as refused:
        storage("ftp://ana:s3cr3t@host/folder")
    assert "s3cr3t" not in str(refused.value)  # the URL may hold a password: not repeated


def test_targets_hide_secrets() -> None:
    target = Target("postgresql+asyncpg://me:pw@host/db", "s3://b/p", s3_key="k", s3_secret="s")

    assert target.database_label == "postgresql+asyncpg://me:***@host/db"
    assert "pw" not in repr(target)
    assert "'s'" not in repr(target)


def _block_elsewhere(tmp_path: Path) -> LaboxResultStorage:
    """A block with a database and storage of its own, apart from the LABOX_* environment."""
    home = tmp_path / "elsewhere"
    return LaboxResultStorage(
        database_url=SecretStr(f"sqlite+aiosqlite:///{(home / 'other.db').as_posix()}"),
        storage_url=(home / "blobs").as_posix(),
    )


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@sqlite_only
def test_a_named_block_is_read_by_find_results_the_refs_and_the_cli(
    backend: Backend, tmp_path: Path
) -> None:
    name = f"elsewhere-{uuid.uuid4().hex[:8]}"
    block = _block_elsewhere(tmp_path)
    block.save(name, _sync=True)  # type: ignore[call-arg]
    mark = uuid.uuid4().hex

    @labox_task(tags={"mark": mark}, result_storage=block)
    def made() -> dict[str, int]:
        return {"n": 1}

    @flow(result_storage=block)
    def pipeline() -> int:
        made()
        return len(find_results(tags={"mark": mark}))  # the flow's block: no name needed

    assert pipeline() == 1
    assert find_results(tags={"mark": mark}) == []  # the environment's database has none
    (ref,) = find_results(tags={"mark": mark}, block=name)
    assert ref.target.database_label == block.target().database_label
    assert ref.load() == {"n": 1}

    listed = _cli("--block", name, "results", "ls", "--json", "--tag", f"mark={mark}")
    assert listed.exit_code == 0, listed.output
    assert [row["id"] for row in json.loads(listed.stdout)] == [str(ref.manifest_id)]
    assert json.loads(_cli("results", "ls", "--json", "--tag", f"mark={mark}").stdout) == []
    shown = _cli("--block", name, "results", "show", ref.manifest_id.hex[:8])
    assert shown.exit_code == 0, shown.output
    assert "other.db" in shown.stdout


@sqlite_only
def test_a_missing_block_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(ResultTargetError, match="no-such-block"):
        find_results(block="no-such-block")

    result = _cli("--block", "no-such-block", "results", "ls")

    assert result.exit_code == 2
    assert "no-such-block" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def default_block_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LaboxResultStorage]:
    """The saved ``default`` block names its own database for one test, then is reset."""
    saved_default_block()  # make sure it exists, so the test overwrites it
    block = _block_elsewhere(tmp_path)
    monkeypatch.setattr(target_module, "_saved", {})  # forget the blocks this process read
    block.save(DEFAULT_BLOCK_NAME, overwrite=True, _sync=True)  # type: ignore[call-arg]
    try:
        yield block
    finally:
        LaboxResultStorage().save(DEFAULT_BLOCK_NAME, overwrite=True, _sync=True)  # type: ignore[call-arg]


@sqlite_only
def test_the_saved_default_block_is_where_tasks_save_and_readers_read(
    backend: Backend, default_block_elsewhere: LaboxResultStorage
) -> None:
    mark = uuid.uuid4().hex

    @labox_task(tags={"mark": mark})
    def made() -> str:
        return "saved through the default block"

    @flow
    def pipeline() -> None:
        made()

    pipeline()

    expected = default_block_elsewhere.target().database_label
    assert resolve_target().database_label == expected
    (ref,) = find_results(tags={"mark": mark})
    assert ref.target.database_label == expected
    assert ref.load() == "saved through the default block"
    listed = _cli("results", "ls", "--json", "--tag", f"mark={mark}")
    assert [row["id"] for row in json.loads(listed.stdout)] == [str(ref.manifest_id)]


@sqlite_only
def test_without_a_configured_api_readers_use_the_environment(
    backend: Backend, default_block_elsewhere: LaboxResultStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_server(*_: Any, **__: Any) -> None:
        raise AssertionError("a reader must not ask (and so start) an ephemeral Prefect API")

    monkeypatch.setattr(Block, "load", no_server)
    with temporary_settings(updates={PREFECT_API_URL: None}):
        target = resolve_target()

    assert target.database_label == Target.from_settings().database_label
    assert target.database_label != default_block_elsewhere.target().database_label
