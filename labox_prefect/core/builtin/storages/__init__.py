"""Built-in storages: local files, memory and S3 (one fsspec implementation), and the database.

No storage here reads the environment: where blobs go is always said by the caller (a
registry's ``default_storage``, or the folder the saver derives beside a SQLite database).
"""

from __future__ import annotations

from labox_prefect.core.builtin.storages.database import DatabaseStorage
from labox_prefect.core.builtin.storages.file import FileStorage
from labox_prefect.core.builtin.storages.fsspec import FsspecStorage
from labox_prefect.core.builtin.storages.memory import MemoryStorage
from labox_prefect.core.builtin.storages.s3 import S3Storage

__all__ = [
    "DatabaseStorage",
    "FileStorage",
    "FsspecStorage",
    "MemoryStorage",
    "S3Storage",
]
