"""Conformance harnesses for plugin authors: check a storage or serializer of your own."""

from labox_prefect.core.testing.storages import (
    PATH_ESCAPES,
    STORAGE_CHECKS,
    StorageCheck,
    Tamper,
    run_storage_checks,
)

__all__ = [
    "PATH_ESCAPES",
    "STORAGE_CHECKS",
    "StorageCheck",
    "Tamper",
    "run_storage_checks",
]
