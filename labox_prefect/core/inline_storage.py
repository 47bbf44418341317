"""Small JSON content kept inside the content record itself: no files, no bucket.

Every registry holds one of these (so it lives beside the contracts, not in the batteries).

Saving a handful of small JSON bodies to files costs a round trip each; keeping them in the
storage config, which the content record already stores, costs nothing. The exact bytes are
kept (as their UTF-8 text) so the recorded hash still verifies on load.
"""

from __future__ import annotations

import reprlib
from collections.abc import AsyncIterable, AsyncIterator, Callable

from labox_prefect.core.component import check_component_name
from labox_prefect.core.digest import Digest
from labox_prefect.core.errors import StorageKeyError
from labox_prefect.core.storage import Storage, StorageConfig, TagMap

DEFAULT_MAX_SIZE = 64 * 1024
"""Largest body kept in a record by default: database rows should stay small."""


class DatabaseStorage(Storage):
    """Keeps JSON content of at most ``max_size`` bytes in its storage config.

    Nothing lives outside the database, so there is nothing to list or delete: deleting the
    record deletes the content.
    """

    default_name = "labox.database@v1"
    keeps_data_in_records = True

    def __init__(self, *, name: str = default_name, max_size: int = DEFAULT_MAX_SIZE):
        self.name = check_component_name(name, self)
        if max_size < 0:
            raise ValueError(f"DatabaseStorage: max_size must be >= 0, not {max_size}.")
        self.max_size = max_size

    async def write_data(self, data: bytes, digest: Digest, tags: TagMap, /) -> StorageConfig:
        self._check_size(len(data))
        return {"text": self._text_of(data, digest)}

    async def read_data(self, config: StorageConfig, /) -> bytes:
        return self.read_inline(config)

    def read_inline(self, config: StorageConfig, /) -> bytes:
        """The bytes that ``config`` holds, read without waiting on anything (loaders read
        records kept here in one go); StorageKeyError for a config this storage never wrote.
        """
        return self._text_in(config).encode("utf-8")

    async def write_data_stream(
        self,
        data_stream: AsyncIterable[bytes],
        get_digest: Callable[[], Digest],
        tags: TagMap,
        /,
    ) -> StorageConfig:
        chunks: list[bytes] = []
        size = 0
        async for chunk in data_stream:
            size += len(chunk)
            self._check_size(size)  # stop reading as soon as the stream is too large
            chunks.append(chunk)
        return {"text": self._text_of(b"".join(chunks), get_digest())}

    async def read_data_stream(self, config: StorageConfig, /) -> AsyncIterator[bytes]:
        data = self._text_in(config).encode("utf-8")
        if data:
            yield data

    async def delete_data(self, config: StorageConfig, /) -> None:
        self._text_in(config)  # refuse what this storage never wrote, like every storage

    async def iter_stored(self) -> AsyncIterator[StorageConfig]:
        return
        yield  # an async generator that yields nothing: no blob lives outside the records

    def _check_size(self, size: int) -> None:
        if size > self.max_size:
            msg = (
                f"{self.name}: content of more than {self.max_size} bytes does not belong in a "
                f"database row; save it to a FileStorage or S3Storage instead (or raise "
                f"DatabaseStorage(max_size=...))."
            )
            raise ValueError(msg)

    def keeps(self, data: bytes | memoryview, digest: Digest) -> bool:
        """Whether this content can live in a record: small, uncompressed UTF-8 JSON."""
        try:
            self._check_size(len(data))
            self._text_of(data, digest)
        except ValueError:
            return False
        return True

    def _text_of(self, data: bytes | memoryview, digest: Digest) -> str:
        media_type = digest.content_type.split(";", 1)[0].strip().lower()
        is_json = media_type == "application/json" or media_type.endswith("+json")
        if not is_json or digest.content_encoding is not None:
            encoding = f" with encoding {digest.content_encoding!r}" if is_json else ""
            msg = (
                f"{self.name} keeps only uncompressed JSON, not {digest.content_type!r}"
                f"{encoding}; save this content to a FileStorage or S3Storage instead."
            )
            raise ValueError(msg)
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError as error:
            msg = f"{self.name}: the JSON content is not UTF-8 ({error}); use a file storage."
            raise ValueError(msg) from None
        if "\x00" in text:
            msg = (
                f"{self.name}: the content holds a NUL character, which PostgreSQL cannot keep "
                f"in a JSON column; save it to a FileStorage or S3Storage instead."
            )
            raise ValueError(msg)
        return text

    def _text_in(self, config: StorageConfig) -> str:
        text = config.get("text") if isinstance(config, dict) and set(config) == {"text"} else None
        if not isinstance(text, str):
            msg = (
                f"{self.name}: refusing the storage config {reprlib.repr(config)}; this storage "
                f"only reads configs like {{'text': '...'}} that it wrote itself."
            )
            raise StorageKeyError(msg)
        return text
