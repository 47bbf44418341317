"""A conformance harness for serializers: run it against your own serializer before you ship it.

Storages hand a stream deserializer the bytes in whatever chunks they like, so a stream
serializer must read the same values back however its bytes are cut. The checks here feed
the deserializer every small chunk size, one chunk, the writer's own chunks, empty chunks and
random cuts, and compare what comes back. They raise AssertionError with a message saying
what went wrong and need no pytest::

    from labox_prefect.core.testing import check_value_serializer, check_stream_serializer

    def test_my_serializer():
        check_value_serializer(MySerializer(), my_value)

    async def test_my_stream_serializer():
        await check_stream_serializer(MyStreamSerializer(), [v1, v2, v3])

By default values are compared with `same_value` (equal *and* of the same types, through
containers); pass ``equal=`` when a format legitimately changes types (JSON reads a tuple
back as a list).
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from labox_prefect.core.component import check_component_name
from labox_prefect.core.serializer import (
    SerializedData,
    SerializedDataStream,
    Serializer,
    StreamSerializer,
)
from labox_prefect.core.testing.fidelity import same

T = TypeVar("T")

EXHAUSTIVE_CHUNK_SIZES = 64
"""Every chunk size from 1 to this is tried; larger sizes are sampled."""


def same_value(expected: Any, actual: Any) -> bool:
    """True if ``actual`` equals ``expected`` and has the same types, down through containers.

    Plain ``==`` would accept ``1`` for ``True`` or ``1.0`` for ``1``; a serializer that
    changes types that way loses information. The same comparison as `fidelity.same`
    (NaN equals NaN, -0.0 differs from 0.0, DataFrames compared with ``equals``).
    """
    return same(expected, actual)


def same_concatenation(expected: Sequence[Any], actual: Sequence[Any]) -> bool:
    """True if both sequences of bytes (or str) pieces join to the same whole.

    For stream serializers that keep only the concatenation (byte or text streams).
    """
    if not expected:
        return not actual
    empty = expected[0][:0]
    return bool(empty.join(expected) == empty.join(actual))


def check_value_serializer(
    serializer: Serializer[T],
    value: T,
    *,
    equal: Callable[[T, T], bool] | None = None,
) -> SerializedData:
    """Serialize ``value``, check the result, read it back and compare; return the result.

    Checks: a versioned name; ``data`` is bytes (or a memoryview of bytes); the content
    type is one the serializer declares; the config survives a JSON round trip (it is
    stored as JSON); equal input gives identical bytes (a deep copy is serialized too:
    content-addressed storage deduplicates only deterministic output); and the value read
    back equals ``value``.
    """
    equal = equal or same_value
    check_component_name(serializer.name, serializer)
    first = serializer.serialize_data(value)
    _expect(
        type(first.data) is bytes
        or (
            isinstance(first.data, memoryview)
            and first.data.format == "B"
            and first.data.c_contiguous
        ),
        f"{serializer.name}: serialize_data returned data of type "
        f"{type(first.data).__name__}; it must be bytes (or a contiguous memoryview of "
        f"format 'B').",
    )
    _check_content_type(serializer.name, first.content_type, serializer.content_types)
    config = _json_round_trip(serializer.name, first.config)
    for label, again in (
        ("the same value", serializer.serialize_data(value)),
        ("a deep copy of the value", serializer.serialize_data(copy.deepcopy(value))),
    ):
        _expect(
            again.data == first.data,
            f"{serializer.name}: serializing {label} a second time gave different bytes "
            f"({_preview(first.data)} then {_preview(again.data)}); output must be "
            f"deterministic.",
        )
    stored = SerializedData(
        data=first.data,
        content_type=first.content_type,
        content_encoding=first.content_encoding,
        config=config,
    )
    loaded = serializer.deserialize_data(stored)
    _expect(
        equal(value, loaded),
        f"{serializer.name}: read back {loaded!r} after writing {value!r}.",
    )
    return first


async def check_stream_serializer(
    serializer: StreamSerializer[T],
    values: Sequence[T],
    *,
    equal: Callable[[Sequence[T], Sequence[T]], bool] | None = None,
    seed: int = 0,
    cuts: Iterable[Sequence[int]] = (),
) -> bytes:
    """Serialize ``values`` as a stream, then read the bytes back under every chunking.

    Checks: a versioned name; every chunk written is bytes; the content type is declared;
    the config survives a JSON round trip; writing the same values again gives the same
    bytes; the values read back equal ``values`` under each chunking of `iter_chunkings`
    (``seed`` drives its random cuts, ``cuts`` adds chunkings of your own, such as
    hypothesis-drawn positions); and a reader closed after its first value closes the byte
    stream it reads from. Returns the serialized bytes.
    """
    equal = equal or same_value
    check_component_name(serializer.name, serializer)
    serialized, chunks = await _write(serializer, values)
    _check_content_type(serializer.name, serialized.content_type, serializer.content_types)
    config = _json_round_trip(serializer.name, serialized.config)
    payload = b"".join(chunks)
    _, chunks_again = await _write(serializer, values)
    _expect(
        b"".join(chunks_again) == payload,
        f"{serializer.name}: writing the same values twice gave different bytes; output must "
        f"be deterministic.",
    )

    def stored(pieces: Sequence[bytes]) -> SerializedDataStream:
        return SerializedDataStream(
            data_stream=_ClosableStream(pieces),
            content_type=serialized.content_type,
            content_encoding=serialized.content_encoding,
            config=config,
        )

    for label, pieces in [("as written", chunks), *iter_chunkings(payload, seed=seed, cuts=cuts)]:
        loaded = [item async for item in serializer.deserialize_data_stream(stored(pieces))]
        _expect(
            equal(list(values), loaded),
            f"{serializer.name}: read back {_preview_items(loaded)} from the bytes cut "
            f"{label}, after writing {_preview_items(values)}.",
        )
    if values:
        source = _ClosableStream(_fixed_size(payload, 1))
        await _check_early_close(serializer, replace(stored([]), data_stream=source), source)
    return payload


def iter_chunkings(
    payload: bytes, *, seed: int = 0, cuts: Iterable[Sequence[int]] = ()
) -> Iterator[tuple[str, list[bytes]]]:
    """Ways to cut ``payload`` into chunks, each with a label saying how it was cut.

    Every fixed size from 1 to `EXHAUSTIVE_CHUNK_SIZES` (and up to the payload's length),
    16 larger sizes drawn at random, the whole payload as one chunk, the payload with an
    empty chunk between every two pieces, 8 random cuttings, and one per sequence of cut
    positions in ``cuts`` (each position is taken modulo ``len(payload) + 1``).
    """
    size = len(payload)
    rng = random.Random(seed)
    fixed = range(1, min(size, EXHAUSTIVE_CHUNK_SIZES) + 1)
    larger = range(EXHAUSTIVE_CHUNK_SIZES + 1, size)
    sampled = sorted(rng.sample(larger, min(16, len(larger))))
    for chunk_size in [*fixed, *sampled]:
        yield f"into chunks of {chunk_size} bytes", _fixed_size(payload, chunk_size)
    yield "as one chunk", [payload]
    with_empties = [piece for part in _fixed_size(payload, 7) for piece in (part, b"")]
    yield "into 7-byte chunks each followed by an empty chunk", [b"", *with_empties]
    for attempt in range(8):
        positions = sorted(rng.sample(range(size + 1), min(size + 1, rng.randint(1, 12))))
        yield (
            f"at random positions {positions} (seed {seed}, attempt {attempt})",
            _cut(payload, positions),
        )
    for given in cuts:
        positions = sorted(p % (size + 1) for p in given)
        yield f"at the given positions {positions}", _cut(payload, positions)


class _ClosableStream:
    """The byte stream a storage would hand over, recording whether it was closed."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = iter(pieces)
        self.closed = False

    def __aiter__(self) -> _ClosableStream:
        return self

    async def __anext__(self) -> bytes:
        if self.closed:
            raise StopAsyncIteration
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


async def _write(
    serializer: StreamSerializer[T], values: Sequence[T]
) -> tuple[SerializedDataStream, list[bytes]]:
    async def produce() -> AsyncIterator[T]:
        for value in values:
            yield value

    serialized = serializer.serialize_data_stream(produce())
    chunks = []
    async for chunk in serialized.data_stream:
        _expect(
            isinstance(chunk, bytes),
            f"{serializer.name}: the data stream yielded a {type(chunk).__name__}; every "
            f"chunk must be bytes.",
        )
        chunks.append(chunk)
    return serialized, chunks


async def _check_early_close(
    serializer: StreamSerializer[Any], content: SerializedDataStream, source: _ClosableStream
) -> None:
    reader = serializer.deserialize_data_stream(content)
    try:
        await reader.__anext__()
    except StopAsyncIteration:
        return  # nothing read back (e.g. only empty chunks): nothing to stop early
    aclose = getattr(reader, "aclose", None)
    if not callable(aclose):
        raise AssertionError(
            f"{serializer.name}: deserialize_data_stream returned an iterator without "
            f"aclose(); return an async generator so a reader that stops early can release "
            f"its resources."
        )
    await aclose()
    _expect(
        source.closed,
        f"{serializer.name}: a reader closed after its first value left the byte stream it "
        f"reads from open; close it (e.g. with contextlib.aclosing) when the reader stops.",
    )


def _fixed_size(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def _cut(payload: bytes, positions: Sequence[int]) -> list[bytes]:
    bounds = [0, *positions, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


def _check_content_type(name: str, content_type: str, declared: Sequence[str]) -> None:
    _expect(
        content_type in declared,
        f"{name}: wrote content type {content_type!r}, which is not among its declared "
        f"content_types {tuple(declared)!r}.",
    )


def _json_round_trip(name: str, config: Any) -> Any:
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"{name}: its config {config!r} cannot be stored as JSON ({error})."
        ) from None
    restored = json.loads(text)
    _expect(
        restored == config and isinstance(restored, dict),
        f"{name}: its config {config!r} changes when stored as JSON; use a dict of str, "
        f"numbers, booleans, None, lists and dicts only.",
    )
    return restored


def _expect(condition: bool, message: str) -> None:
    # An explicit raise, not assert: checks must hold under python -O and outside pytest.
    if not condition:
        raise AssertionError(message)


def _preview(data: bytes | memoryview) -> str:
    return repr(bytes(data[:40])) + ("..." if len(data) > 40 else "")


def _preview_items(items: Sequence[Any]) -> str:
    shown = ", ".join(repr(item)[:60] for item in items[:3])
    more = f", ... ({len(items)} items)" if len(items) > 3 else ""
    return f"[{shown}{more}]"
