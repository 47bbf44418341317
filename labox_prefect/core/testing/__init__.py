"""Conformance harnesses for plugin authors: check a storage or serializer of your own."""

from labox_prefect.core.testing.serializers import (
    EXHAUSTIVE_CHUNK_SIZES,
    check_stream_serializer,
    check_value_serializer,
    iter_chunkings,
    same_concatenation,
    same_value,
)
from labox_prefect.core.testing.storages import (
    PATH_ESCAPES,
    STORAGE_CHECKS,
    StorageCheck,
    Tamper,
    run_storage_checks,
)

__all__ = [
    "EXHAUSTIVE_CHUNK_SIZES",
    "PATH_ESCAPES",
    "STORAGE_CHECKS",
    "StorageCheck",
    "Tamper",
    "check_stream_serializer",
    "check_value_serializer",
    "iter_chunkings",
    "run_storage_checks",
    "same_concatenation",
    "same_value",
]
