"""Blobs in process memory: for tests and throwaway work."""

from __future__ import annotations

from fsspec.implementations.memory import MemoryFileSystem

from labox_prefect.core.builtin.storages.fsspec import FsspecStorage


class MemoryStorage(FsspecStorage):
    """Content-addressed blobs that live as long as this object.

    fsspec's memory filesystem shares one store across all its instances; this storage gives
    its filesystem a private store instead, so two MemoryStorages never see each other's
    blobs and the memory is released with the storage.
    """

    def __init__(self, *, name: str = "labox.memory@v1") -> None:
        fs = MemoryFileSystem(skip_instance_cache=True)
        fs.store = {}
        fs.pseudo_dirs = [""]
        super().__init__(fs, "/labox", name=name, object_store=False)
