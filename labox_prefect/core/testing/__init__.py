"""Conformance harnesses for plugin authors: check a storage or serializer of your own.

Round-trip fidelity: `same` / `difference` compare value and type recursively,
`check_serializer_round_trip` / `check_saved_round_trip` demand "same or refused", and
`SAMPLE_LEAVES` / `SAMPLE_CONTAINERS` / `nested_samples` give fixed values of every
supported type. Hypothesis strategies (`values`, `leaves`, `containers`, `register_leaves`,
`LEAF_STRATEGIES`) live in labox_prefect.core.testing.strategies and are importable from
here too when hypothesis is installed.
"""

from typing import Any

from labox_prefect.core.storable import forgotten
from labox_prefect.core.testing.fidelity import (
    check_registry_round_trips,
    check_saved_round_trip,
    check_serializer_round_trip,
    difference,
    same,
)
from labox_prefect.core.testing.samples import (
    SAMPLE_CONTAINERS,
    SAMPLE_LEAVES,
    Access,
    Box,
    Envelope,
    FrozenBox,
    Level,
    Pair,
    Shade,
    nested_samples,
)
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

_STRATEGIES = ("LEAF_STRATEGIES", "containers", "leaves", "register_leaves", "values")


def __getattr__(name: str) -> Any:
    # The strategies need hypothesis, a test dependency: import them only when asked for.
    if name in _STRATEGIES:
        from labox_prefect.core.testing import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXHAUSTIVE_CHUNK_SIZES",
    "LEAF_STRATEGIES",
    "PATH_ESCAPES",
    "SAMPLE_CONTAINERS",
    "SAMPLE_LEAVES",
    "STORAGE_CHECKS",
    "Access",
    "Box",
    "Envelope",
    "FrozenBox",
    "Level",
    "Pair",
    "Shade",
    "StorageCheck",
    "Tamper",
    "check_registry_round_trips",
    "check_saved_round_trip",
    "check_serializer_round_trip",
    "check_stream_serializer",
    "check_value_serializer",
    "containers",
    "difference",
    "forgotten",
    "iter_chunkings",
    "leaves",
    "nested_samples",
    "register_leaves",
    "run_storage_checks",
    "same",
    "same_concatenation",
    "same_value",
    "values",
]
