"""Blobs as files under a local folder."""

from __future__ import annotations

import os
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from labox_prefect.core.builtin.storages.fsspec import FsspecStorage
from labox_prefect.core.storage import StorageConfig


class FileStorage(FsspecStorage):
    """Content-addressed files under ``path``; the folder is created on the first write.

    Writes go to a temporary file under the same folder and are renamed into place, so a
    crashed process never leaves a partial file under a final name.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str = "labox.file@v1") -> None:
        root = Path(path).expanduser().absolute()
        super().__init__(
            LocalFileSystem(auto_mkdir=True), root.as_posix(), name=name, object_store=False
        )

    def local_path(self, config: StorageConfig, /) -> str:
        """The blob's file (blobs are replaced by renames, never rewritten in place)."""
        return self._path(self.key_of(config))
