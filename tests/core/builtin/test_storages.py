"""The built-in storages: the conformance harness on each, then what is specific to each."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from labox_prefect.core import ContentMissingError, Storage, StorageConfig, StorageUnavailableError
from labox_prefect.core.builtin.storages import (
    DatabaseStorage,
    FileStorage,
    FsspecStorage,
    MemoryStorage,
    S3Storage,
)
from labox_prefect.core.builtin.storages.fsspec import key_for_hash
from labox_prefect.core.digest import HashingStream, digest_bytes
from labox_prefect.core.testing import STORAGE_CHECKS, Tamper, run_storage_checks
from tests.conftest import S3Server

NOT_OUTSIDE_THE_RECORD = "DatabaseStorage keeps content in the record: no blob to lose or list"
SKIPPED_CHECKS: dict[str, dict[str, str]] = {
    "database": {
        "missing": NOT_OUTSIDE_THE_RECORD,
        "delete": NOT_OUTSIDE_THE_RECORD + " (delete is a no-op)",
        "dedup": NOT_OUTSIDE_THE_RECORD + " (identical content gives identical configs)",
        "iter_stored": NOT_OUTSIDE_THE_RECORD + " (iter_stored yields nothing)",
        "large_stream_round_trip": "DatabaseStorage refuses content over max_size",
        "failed_stream": "DatabaseStorage refuses content over max_size before a stream ends",
        "blob_ages": NOT_OUTSIDE_THE_RECORD + " (iter_stored_blobs yields nothing)",
    }
}


@dataclass
class StorageCase:
    """A storage under test and a way to alter its stored bytes behind its back."""

    storage: Storage
    tamper: Tamper


def _fsspec_tamper(storage: FsspecStorage) -> Tamper:
    async def tamper(config: StorageConfig) -> None:
        await asyncio.to_thread(
            storage.fs.pipe_file, f"{storage.root}/{config['key']}", b'{"tampered": true}'
        )

    return tamper


async def _edit_database_config(config: StorageConfig) -> None:
    config["text"] += " "  # what an UPDATE of the record's storage_config would do


def _case(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StorageCase:
    if kind == "database":
        return StorageCase(DatabaseStorage(), _edit_database_config)
    storage: FsspecStorage
    if kind == "file":
        storage = FileStorage(tmp_path / "blobs")
    elif kind == "memory":
        storage = MemoryStorage()
    else:
        storage = request.getfixturevalue("s3_storage")
    return StorageCase(storage, _fsspec_tamper(storage))


# Checks that cannot apply to a storage (SKIPPED_CHECKS, each with its reason) are not
# generated at all, so a skip in the report always means a missing service.
APPLICABLE = [
    (kind, check)
    for kind in ("file", "memory", "s3", "database")
    for check in STORAGE_CHECKS
    if check not in SKIPPED_CHECKS.get(kind, {})
]


@pytest.mark.parametrize(("kind", "check"), APPLICABLE)
async def test_conformance(
    kind: str, check: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    case = _case(kind, tmp_path, request)
    await STORAGE_CHECKS[check](case.storage, tamper=case.tamper)


async def test_all_checks_run_on_one_storage(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    ran = await run_storage_checks(storage, tamper=_fsspec_tamper(storage))
    assert ran == list(STORAGE_CHECKS)


async def test_run_storage_checks_requires_reasons_to_skip() -> None:
    with pytest.raises(ValueError, match="Say why"):
        await run_storage_checks(MemoryStorage(), tamper=None, skip={"tampering": " "})
    with pytest.raises(ValueError, match="Unknown storage checks"):
        await run_storage_checks(MemoryStorage(), tamper=None, skip={"nope": "typo"})


async def test_database_storage_passes_the_checks_that_apply() -> None:
    ran = await run_storage_checks(
        DatabaseStorage(), tamper=_edit_database_config, skip=SKIPPED_CHECKS["database"]
    )
    assert "tampering" in ran
    assert "path_escapes" in ran


# --- the fsspec storages --------------------------------------------------------------------


async def test_blobs_are_addressed_by_their_sha256(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    data = b"content-addressed"
    content_hash = hashlib.sha256(data).hexdigest()
    config = await storage.write_data(data, digest_bytes(data, "text/plain"), {})
    assert config == {"key": f"{content_hash[:2]}/{content_hash}"}
    assert (tmp_path / content_hash[:2] / content_hash).read_bytes() == data


def test_key_for_hash_refuses_what_is_not_a_sha256() -> None:
    with pytest.raises(ValueError, match="lowercase hex sha256"):
        key_for_hash("../" + "a" * 61)
    with pytest.raises(ValueError, match="lowercase hex sha256"):
        key_for_hash("A" * 64)


async def test_file_storage_creates_its_folder_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    storage = FileStorage(root)
    assert not root.exists()
    await storage.write_data(b"x", digest_bytes(b"x", "text/plain"), {})
    assert root.is_dir()


async def test_memory_storages_do_not_share_blobs() -> None:
    first, second = MemoryStorage(), MemoryStorage()
    config = await first.write_data(b"mine", digest_bytes(b"mine", "text/plain"), {})
    with pytest.raises(ContentMissingError, match=r"labox\.memory@v1"):
        await second.read_data(config)
    assert [c async for c in second.iter_stored()] == []


def _files_under(root: Path) -> list[str]:
    """Every file below ``root``, temporary ones included, relative to it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_concurrent_writes_of_one_content_store_one_blob(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    data = b"race" * 10_000
    digest = digest_bytes(data, "text/plain")

    async def stream() -> AsyncIterator[bytes]:
        yield data

    async def write_stream() -> StorageConfig:
        hashing = HashingStream(stream(), "text/plain")
        return await storage.write_data_stream(hashing, hashing.digest, {})

    configs = await asyncio.gather(
        *(storage.write_data(data, digest, {}) for _ in range(10)),
        *(write_stream() for _ in range(10)),
    )
    assert len({c["key"] for c in configs}) == 1
    assert _files_under(tmp_path) == [configs[0]["key"]]


async def _failing_stream() -> AsyncIterator[bytes]:
    for _ in range(3):
        yield b"x" * (3 * 1024 * 1024)
    raise ConnectionResetError("the source went away")


@pytest.mark.parametrize("kind", ["file", "memory", "s3"])
async def test_an_emptied_temporary_folder_is_no_temporary_file(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Found by the fault suite: SeaweedFS keeps ``.tmp/`` once its last object is gone and
    s3fs lists it as an entry of itself, which gc reported as a temporary file every run."""
    storage: FsspecStorage
    if kind == "file":
        storage = FileStorage(tmp_path)
    elif kind == "memory":
        storage = MemoryStorage()
    else:
        storage = request.getfixturevalue("s3_storage")
    storage.fs.pipe_file(f"{storage.root}/.tmp/dead-write", b"partial")
    later = datetime.now(UTC) + timedelta(days=1)
    assert await storage.collect_temporary(later, dry_run=False) == [".tmp/dead-write"]
    assert await storage.collect_temporary(later, dry_run=True) == []


@pytest.mark.parametrize("kind", ["file", "memory", "s3"])
async def test_failed_stream_leaves_no_temporary_object(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    storage: FsspecStorage
    if kind == "file":
        storage = FileStorage(tmp_path)
    elif kind == "memory":
        storage = MemoryStorage()
    else:
        storage = request.getfixturevalue("s3_storage")
    hashing = HashingStream(_failing_stream(), "application/octet-stream")
    with pytest.raises(ConnectionResetError, match="went away"):
        await storage.write_data_stream(hashing, hashing.digest, {})
    left = storage.fs.find(storage.root, detail=True).values()
    assert [entry["name"] for entry in left if entry["type"] == "file"] == []


async def test_a_failed_rename_leaves_no_partial_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path)

    def broken_move(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage.fs, "mv", broken_move)
    with pytest.raises(OSError, match="disk full"):
        await storage.write_data(b"never", digest_bytes(b"never", "text/plain"), {})
    assert _files_under(tmp_path) == []


# --- S3 -------------------------------------------------------------------------------------


async def test_s3_config_holds_no_bucket_endpoint_or_secret(
    s3_storage: S3Storage, s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = b'{"secret": "not really"}'
    config = await s3_storage.write_data(data, digest_bytes(data, "application/json"), {})
    assert await s3_storage.read_data(config) == data
    assert set(config) == {"key"}
    shown = f"{config} {s3_storage!r} {s3_storage!s}"
    assert s3_storage.bucket in repr(s3_storage)
    for secret in (s3_server.key, s3_server.secret, s3_server.endpoint_url):
        assert secret not in shown
    assert s3_server.secret not in caplog.text  # not even in botocore's debug output
    # The access key id is no secret (every signed request carries it, and botocore's debug
    # log shows it); our own log lines still never name it.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("labox_prefect")]
    assert not [line for line in ours if s3_server.key in line]


async def test_s3_prefix_is_where_objects_go(s3_storage: S3Storage, s3_server: S3Server) -> None:
    config = await s3_storage.write_data(b"{}", digest_bytes(b"{}", "application/json"), {})
    listed = s3_server.filesystem().find(s3_storage.bucket)
    assert listed == [f"{s3_storage.bucket}/labox/{config['key']}"]


async def test_s3_storage_serves_several_event_loops(s3_storage: S3Storage) -> None:
    data = b'{"loops": 2}'
    config = await s3_storage.write_data(data, digest_bytes(data, "application/json"), {})

    async def read_elsewhere() -> bytes:
        return await s3_storage.read_data(config)

    with ThreadPoolExecutor(max_workers=1) as thread:
        assert thread.submit(asyncio.run, read_elsewhere()).result() == data
    assert await s3_storage.read_data(config) == data


@pytest.mark.parametrize(
    ("bucket", "prefix", "problem"),
    [
        ("my/bucket", "", "not a bucket name"),
        ("s3://bucket", "", "not a bucket name"),
        ("ok-bucket", "a/../b", "may not contain"),
        ("ok-bucket", "./x", "may not contain"),
    ],
)
def test_s3_storage_refuses_bad_locations(bucket: str, prefix: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        S3Storage(bucket, prefix)


# --- the database storage -------------------------------------------------------------------


async def test_database_storage_keeps_exact_bytes() -> None:
    data = '{ "spaced" :  "é€😀", "n": 1.50 }\n'.encode()
    config = await DatabaseStorage().write_data(data, digest_bytes(data, "application/json"), {})
    assert config == {"text": data.decode()}
    assert await DatabaseStorage().read_data(config) == data


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [("text/plain", None), ("application/octet-stream", None), ("application/json", "gzip")],
)
async def test_database_storage_refuses_what_is_not_plain_json(
    content_type: str, encoding: str | None
) -> None:
    digest = digest_bytes(b"{}", content_type, encoding)
    with pytest.raises(ValueError, match="FileStorage or S3Storage"):
        await DatabaseStorage().write_data(b"{}", digest, {})


async def test_database_storage_accepts_json_media_types_with_parameters() -> None:
    data = b'{"a": 1}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.thing+json"):
        digest = digest_bytes(data, content_type)
        assert await DatabaseStorage().write_data(data, digest, {}) == {"text": '{"a": 1}'}


async def test_database_storage_refuses_large_content_early() -> None:
    storage = DatabaseStorage(max_size=100)
    data = b'"' + b"x" * 200 + b'"'
    with pytest.raises(ValueError, match="more than 100 bytes"):
        await storage.write_data(data, digest_bytes(data, "application/json"), {})

    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"[1,2,3,4,5,6,7,8,9]"

    hashing = HashingStream(endless(), "application/json")
    with pytest.raises(ValueError, match="FileStorage or S3Storage"):
        await storage.write_data_stream(hashing, hashing.digest, {})
    assert consumed == 6


async def test_database_storage_refuses_nul_characters() -> None:
    data = b'"\x00"'
    with pytest.raises(ValueError, match="NUL"):
        await DatabaseStorage().write_data(data, digest_bytes(data, "application/json"), {})


async def test_an_unreachable_s3_endpoint_fails_fast_and_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's example: S3 down gave botocore's EndpointConnectionError after ~16 s."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = S3Storage("down", endpoint_url=f"http://127.0.0.1:{port}", key="K", secret="S")
    data = b"nowhere to go"
    with pytest.raises(StorageUnavailableError, match=r"cannot be reached.*server runs"):
        await storage.write_data(data, digest_bytes(data, "text/plain"), {})
    with pytest.raises(StorageUnavailableError):
        await storage.read_data({"key": key_for_hash("0" * 64)})
