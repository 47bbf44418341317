"""Built-in storages: local files, memory and S3 (one fsspec implementation), and the database."""

from __future__ import annotations

import os
from pathlib import Path

from labox_prefect.core.builtin.storages.database import DatabaseStorage
from labox_prefect.core.builtin.storages.file import FileStorage
from labox_prefect.core.builtin.storages.fsspec import FsspecStorage
from labox_prefect.core.builtin.storages.memory import MemoryStorage
from labox_prefect.core.builtin.storages.s3 import S3Storage

DEFAULT_LABOX_HOME = "~/.labox-prefect"


def labox_home() -> Path:
    """``$LABOX_HOME``, or ``~/.labox-prefect``: where data lives when nothing else is said."""
    return Path(os.environ.get("LABOX_HOME") or DEFAULT_LABOX_HOME).expanduser()


def default_file_storage() -> FileStorage:
    """The storage a registry uses when given none: files under ``$LABOX_HOME/storage``.

    Nothing is created until the first write, so building a registry touches no disk.
    """
    return FileStorage(labox_home() / "storage")


__all__ = [
    "DatabaseStorage",
    "FileStorage",
    "FsspecStorage",
    "MemoryStorage",
    "S3Storage",
    "default_file_storage",
    "labox_home",
]
