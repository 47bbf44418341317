"""The words and the one line that tell a person what a saved value is."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from labox_prefect.artifacts import slug
from labox_prefect.preview import human_size, image_format, preview_line, shape_of, type_name


def test_the_type_is_the_values_own() -> None:
    assert type_name(pd.DataFrame()) == "DataFrame"
    assert type_name(np.zeros(3)) == "ndarray"
    assert type_name({"a": 1}) == "dict"


def test_shapes_and_lengths() -> None:
    assert shape_of(pd.DataFrame({"a": range(4), "b": range(4)})) == "4x2"
    assert shape_of(np.zeros((2, 3, 4))) == "2x3x4"
    assert shape_of(np.float64(1.0)) == "scalar"
    assert shape_of([1, 2, 3]) == "3 items"
    assert shape_of({"a": 1}) == "1 key"
    assert shape_of("x" * 1500) == "1,500 characters"
    assert shape_of(42) is None


def test_sizes_read_in_binary_units() -> None:
    assert human_size(512) == "512 B"
    assert human_size(24_000) == "23.4 KiB"
    assert human_size(5 * 1024**3) == "5.0 GiB"


def test_a_frame_previews_its_column_names() -> None:
    frame = pd.DataFrame({f"column_{i}": range(3) for i in range(20)})

    line = preview_line(frame)

    assert line.startswith("columns: column_0, column_1, ")
    assert len(line) == 80
    assert line.endswith("…")
    assert preview_line(pa.table({"a": [1, 2], "b": [3, 4]})) == "columns: a, b"


def test_models_dataclasses_and_mappings_preview_their_fields() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: str

    assert preview_line(Point(1, "two")) == "x=1, y='two'"
    assert preview_line({"a": [1, 2], "b": None}) == "a=[1, 2], b=None"
    assert preview_line({1: "a"}) == "{1: 'a'}"  # not str keys: a repr


def test_a_stream_is_never_iterated() -> None:
    pulled: list[int] = []

    def numbers() -> object:
        for number in range(3):
            pulled.append(number)
            yield number

    stream = numbers()

    assert "stream" in preview_line(stream)
    assert shape_of(stream) == "stream"
    assert pulled == []


def test_a_long_value_is_cut_to_one_line() -> None:
    assert len(preview_line("a" * 1_000_000)) == 80
    assert len(preview_line(list(range(1_000_000)))) <= 80
    assert preview_line("two\nlines") == "'two\\nlines'"
    assert "\n" not in preview_line({"text": "two\n  lines", "n": 1})
    assert preview_line("abcdef", length=4) == "'ab…"


def test_keys_are_slugs() -> None:
    assert slug("Daily Sales: EU") == "daily-sales-eu"
    assert slug("x" * 100) == "x" * 28
    assert slug("__body__") == "body"


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"".join(b"\x00" + bytes([128]) * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_image_bytes_preview_as_their_format() -> None:
    image = png(64, 32)

    assert shape_of(image) == "PNG 64x32"
    assert preview_line(image) == "PNG image"
    assert image_format(b"GIF89a" + bytes(10)) == "GIF"
    assert image_format(b"\xff\xd8\xff\xe0" + bytes(10)) == "JPEG"
    assert image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WebP"
    assert image_format(b"plain bytes") is None
