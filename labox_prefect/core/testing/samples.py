"""Sample values of every type the typed value tree keeps, and sample classes of the user's kind.

``SAMPLE_LEAVES`` maps a type's name to a few tricky values of it; ``SAMPLE_CONTAINERS`` maps
a container kind to a function wrapping a value in it. Nesting every leaf in every pair of
containers covers every type two levels deep with a fixed, small set of values. Add your
own types with ``SAMPLE_LEAVES["mytype"] = [...]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict


class Shade(enum.Enum):
    """A user Enum with mixed value types."""

    LIGHT = "light"
    DARK = 2


class Access(enum.Flag):
    """A user Flag, whose combinations are members without a name."""

    READ = 1
    WRITE = 2


class Level(enum.IntEnum):
    """A user IntEnum (an int subclass that must stay an Enum)."""

    LOW = 1
    HIGH = 2


class Pair(NamedTuple):
    """A user NamedTuple."""

    left: Any
    right: Any = None


@dataclasses.dataclass
class Box:
    """A user dataclass."""

    content: Any
    label: str = "box"


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    """A frozen user dataclass (hashable, so it can be a set member or a dict key)."""

    content: Any


class Envelope(BaseModel):
    """A plain user pydantic model that keeps extra fields."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    content: Any = None


_PARIS = zoneinfo.ZoneInfo("Europe/Paris")
_PLUS_5_30 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

SAMPLE_LEAVES: dict[str, list[Any]] = {
    "None": [None],
    "bool": [True, False],
    "int": [0, -1, 2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1, 10**40],
    "float": [0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 5e-324],
    "str": ["", "héllo", "!tag", '{"!x": 1}', "\x00"],
    "bytes": [b"", b"\x00\xff", bytes(range(256)) * 20],
    "bytearray": [bytearray(b"ab")],
    "complex": [complex(1, -0.0), complex(float("nan"), float("inf"))],
    "Decimal": [decimal.Decimal("1.10"), decimal.Decimal("-0"), decimal.Decimal("NaN")],
    "date": [datetime.date(2024, 2, 29), datetime.date.min],
    "time": [datetime.time(23, 59, 59, 999999), datetime.time(1, tzinfo=_PLUS_5_30)],
    "datetime": [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        datetime.datetime(2024, 10, 27, 2, 30, tzinfo=_PARIS, fold=1),
        datetime.datetime(2024, 1, 2, tzinfo=_PLUS_5_30),
    ],
    "timedelta": [datetime.timedelta(days=-1, microseconds=1)],
    "UUID": [uuid.UUID(int=12345)],
    "path": [
        pathlib.PurePosixPath("/a/b"),
        pathlib.PureWindowsPath(r"C:\\a"),
        pathlib.Path("rel/x"),
    ],
    "Enum": [Shade.LIGHT, Shade.DARK, Access.READ | Access.WRITE, Level.HIGH],
    "NamedTuple": [Pair(1, (2,))],
    "dataclass": [Box((1, "a")), FrozenBox(frozenset({1}))],
    "model": [Envelope(content={1: 2.5}), Envelope.model_validate({"content": 1, "more": (1,)})],
    "pandas.Timestamp": [
        pd.Timestamp("2024-01-02 03:04:05.123456789"),
        pd.Timestamp("2024-01-02", tz="UTC").as_unit("s"),
        pd.Timestamp("2024-10-27 00:30:00.000000001", tz="UTC").tz_convert(_PARIS),
    ],
    "pandas.Timedelta": [pd.Timedelta(1, unit="ns"), pd.Timedelta(days=2).as_unit("ms")],
    "pandas.NaT": [pd.NaT],
    "numpy": [
        np.int8(-5),
        np.uint64(2**64 - 1),
        np.float32(-0.0),
        np.float64("nan"),
        np.bool_(True),
        np.complex64(1 - 2j),
        np.datetime64("2024-01-02T03:04:05.123", "ms"),
        np.str_("é"),
    ],
}

SAMPLE_CONTAINERS: dict[str, Callable[[Any], Any]] = {
    "list": lambda x: [x, 1],
    "tuple": lambda x: (x,),
    "dict": lambda x: {"k": x, "!k": 1},
    "dict key": lambda x: {_key(x): 1, "other": 2},
    "set": lambda x: {_key(x)},
    "frozenset": lambda x: frozenset({_key(x), 0}),
    "NamedTuple": lambda x: Pair(x),
    "dataclass": lambda x: Box(x),
    "model": lambda x: Envelope(content=x, extra_field=x),
}


def nested_samples() -> list[tuple[str, Any]]:
    """Every sample leaf inside every pair of containers, with a name for each."""
    found = []
    for leaf_name, leaves in SAMPLE_LEAVES.items():
        for leaf in leaves:
            for outer_name, outer in SAMPLE_CONTAINERS.items():
                for inner_name, inner in SAMPLE_CONTAINERS.items():
                    name = f"{outer_name}({inner_name}({leaf_name}))"
                    found.append((name, outer(inner(leaf))))
    return found


def _key(value: Any) -> Any:
    """``value`` if it is hashable, else a hashable stand-in (a frozen box of its repr)."""
    try:
        hash(value)
    except TypeError:
        return FrozenBox(repr(value))
    return value
