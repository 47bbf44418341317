"""The pointer format a Prefect result record holds for a Labox result (or a run failure)."""

from __future__ import annotations

import json
import uuid

import pytest

from labox_prefect import LaboxSerializer, ResultPointerError, RunFailure
from labox_prefect.pointer import SERIALIZER_TYPE, ResultPointer, labox_blob_in, parse_blob

DATABASE = "sqlite+aiosqlite:///x.db"


def test_pointers_round_trip_and_junk_is_refused() -> None:
    pointer = ResultPointer(uuid.uuid4(), DATABASE)

    assert parse_blob(pointer.dump()) == pointer
    assert pointer.dump().decode("utf-8")  # Prefect embeds it in a JSON record
    with pytest.raises(ResultPointerError, match="not a Labox result pointer"):
        parse_blob(b"\x80\x04pickle")


def test_a_failure_keeps_type_and_message_only() -> None:
    failure = RunFailure.of(ValueError("bad input"))

    parsed = parse_blob(failure.dump())
    assert isinstance(parsed, RunFailure)
    assert (parsed.type_name, parsed.message) == ("builtins.ValueError", "bad input")


def test_pointers_are_found_in_prefect_records_of_their_own_database_only() -> None:
    pointer = ResultPointer(uuid.uuid4(), DATABASE)
    record = json.dumps(
        {
            "metadata": {"serializer": {"type": SERIALIZER_TYPE, "tags": {}}},
            "result": pointer.dump().decode(),
        },
        separators=(",", ":"),  # compact, as Prefect writes its records
    ).encode()

    assert LaboxSerializer().type == SERIALIZER_TYPE
    assert labox_blob_in(record, DATABASE) == pointer
    assert labox_blob_in(pointer.dump(), DATABASE) == pointer  # a bare result
    assert labox_blob_in(record, "sqlite+aiosqlite:///elsewhere.db") is None
    other = b'{"metadata":{"serializer":{"type":"json"}},"result":"1"}'
    assert labox_blob_in(other, DATABASE) is None
