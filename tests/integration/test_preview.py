"""The words and Markdown that tell a person what a saved value is."""

from __future__ import annotations

import base64
import dataclasses
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from labox_prefect.artifacts import slug
from labox_prefect.preview import (
    IMAGE_BYTES,
    escape,
    human_size,
    image_format,
    preview_markdown,
    shape_of,
    type_name,
)


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


def test_markdown_is_shown_as_written() -> None:
    assert escape("__body__ | *x*") == "\\_\\_body\\_\\_ \\| \\*x\\*"


def test_a_frame_previews_its_head_only() -> None:
    frame = pd.DataFrame({f"c{i}": range(100) for i in range(20)})

    preview = preview_markdown(frame)

    lines = preview.splitlines()
    assert lines[0] == "| " + " | ".join(f"c{i}" for i in range(8)) + " |"
    assert len(lines) == 2 + 5


def test_an_arrow_table_and_a_dataclass_preview_as_tables() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    assert "| a |\n| --- |\n| 1 |" in preview_markdown(pa.table({"a": [1, 2]}))
    assert preview_markdown(Point(1, 2)) == "| field | value |\n| --- | --- |\n| x | 1 |\n| y | 2 |"


def test_a_stream_is_never_iterated() -> None:
    pulled: list[int] = []

    def numbers() -> object:
        for number in range(3):
            pulled.append(number)
            yield number

    stream = numbers()

    assert "stream" in preview_markdown(stream)
    assert shape_of(stream) == "stream"
    assert pulled == []


def test_a_long_value_is_cut() -> None:
    assert len(preview_markdown("a" * 1_000_000)) < 300
    assert len(preview_markdown(list(range(1_000_000)))) < 300


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


def test_image_bytes_preview_as_an_inline_image() -> None:
    image = png(64, 32)

    markdown = preview_markdown(image)

    assert shape_of(image) == "PNG 64x32"
    assert markdown.startswith("![PNG image, 64x32](data:image/png;base64,")
    assert base64.b64decode(markdown.partition("base64,")[2].rstrip(")")) == image
    assert image_format(b"GIF89a" + bytes(10)) == "GIF"
    assert image_format(b"\xff\xd8\xff\xe0" + bytes(10)) == "JPEG"
    assert image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WebP"
    assert image_format(b"plain bytes") is None


def test_a_large_image_is_described_not_inlined() -> None:
    image = png(2000, 2000) + bytes(IMAGE_BYTES)

    markdown = preview_markdown(image)

    assert "data:" not in markdown
    assert "PNG image, 2000x2000" in markdown
    assert "results get" in markdown
