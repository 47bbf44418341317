"""The typed value tree: Python values to JSON-able trees and back (format: VALUES.md).

str, bool, None, 64-bit ints, finite floats, lists and str-keyed dicts are written as JSON;
every other supported value is a one-key object ``{"!<tag>": payload}`` from a closed set of
tags (tuple, set, bytes, Decimal, date, ..., the user's Enums, NamedTuples, dataclasses and
pydantic models, pandas and numpy scalars, and references to other contents). A user dict
that could be mistaken for a tag (a key starting with ``!``) or that has non-str keys is
written as ``{"!dict": [[key, value], ...]}``.

Encoding never imports anything: pandas, numpy and pydantic values are recognised through
``sys.modules``. Decoding imports only pandas or numpy (our own dependencies) for their tags
and finds the user's classes among imported modules (see labox_prefect.core.classes), never
by importing a module named by data. A value the tree cannot keep faithfully is refused
when it is encoded, with a SerializationError naming its path (``value['a'][3]``), its type
and what to do.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import pathlib
import sys
import uuid
import zoneinfo
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, NamedTuple

import orjson

from labox_prefect.core.builtin.serializers.datetime import in_zone, zone_is_kept
from labox_prefect.core.builtin.serializers.text import unpaired_surrogate_message
from labox_prefect.core.classes import class_identity, find_class
from labox_prefect.core.errors import LaboxError, SerializationError
from labox_prefect.core.live_state import live_kind

TAG = "!"
"""Every tag, and only tags, start with this character."""
REF_TAG = "!ref"

MAX_DEPTH = 50
"""Values nested deeper are refused (a level costs up to 4 JSON levels; orjson stops at 254)."""

BYTES_INLINE_MAX = 4096
"""bytes up to this size are inlined (base64) in a body; larger ones become contents."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1  # orjson writes and reads every int in this range exactly
_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_PATHS: dict[str, type[pathlib.PurePath]] = {
    c.__name__: c
    for c in (
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    )
}
_NUMPY_KINDS = "biufcmMSU"  # numbers, datetimes and fixed-size strings: no object, no void

Route = Callable[[Any, str], "str | None"]
"""Given a leaf and its path, the key of the content it was stored as, or None to inline it."""


class EncodedTree(NamedTuple):
    """A JSON tree as read, before decoding; ``plain`` if it holds no tag (decodes to itself).

    A NamedTuple: one is made per content read, and it costs a fraction of a dataclass."""

    tree: Any
    plain: bool = False


_UNKNOWN: Any = object()
_SHOWN_STEPS = 6
"""Path steps a too-deep value's message shows."""


class _Attr(str):
    """A path step into an attribute (rendered ``.name``)."""


class _Item:
    """A path step to a set's member or a dict's key, rendered only for messages."""

    __slots__ = ("label", "value")

    def __init__(self, label: str, value: Any) -> None:
        self.label = label
        self.value = value

    def __str__(self) -> str:
        return f"<{self.label} {self.value!r}>"


class ValueEncoder:
    """Turns values into the JSON tree; with ``route``, some leaves become contents."""

    __slots__ = ("_path", "_root", "_value", "route")

    def __init__(self, route: Route | None = None) -> None:
        self.route = route
        self._root = "value"
        self._path: list[Any] = []
        self._value: Any = _UNKNOWN  # the root's value, when known: to name a cycle

    def encode(self, value: Any, where: str = "value") -> Any:
        """The JSON tree of ``value``; ``where`` names it in error messages and content keys.

        A value that is plain JSON already (the common small result) is its own tree: it is
        checked, not copied, and its text is left to the JSON encode (see ``walk``).
        """
        if is_plain_json(value):
            return value
        return self.walk(value, where)

    def walk(self, value: Any, where: str = "value") -> Any:
        """``encode`` without the shortcut for plain JSON: every node is visited.

        Each str (a value, a dict key, a set member) is checked as it is met, so one holding an
        unpaired surrogate is refused with a SerializationError naming its path. The writers
        of trees walk one the JSON encode refused (a plain value is its own tree, so the path
        is the value's own) to name what it holds that cannot be written.
        """
        self.at(where)
        self._value = value
        return self._enc(value)

    def at(self, where: str) -> None:
        """Name the root of what is encoded next (for messages and content keys)."""
        self._root = where
        self._path.clear()
        self._value = _UNKNOWN

    def where(self) -> str:
        """The path of the value being encoded, e.g. ``value['a'][3].name``."""
        return self._render(self._path)

    def _render(self, path: list[Any]) -> str:
        parts = [self._root]
        for step in path:
            if isinstance(step, _Attr):
                parts.append(f".{step}")
            elif isinstance(step, _Item):
                parts.append(f"[{step}]")
            else:
                parts.append(f"[{step!r}]")
        return "".join(parts)

    def _text(self, text: str) -> str:
        """``text``, once its UTF-8 encode (strict: it raises on an unpaired surrogate) works.

        Raises SerializationError naming the path of a str that has no UTF-8 encoding.
        """
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(unpaired_surrogate_message(self.where())) from None
        return text

    def refuse(self, value: Any, why: str, fix: str) -> SerializationError:
        cls = type(value)
        name = cls.__qualname__ if cls.__module__ == "builtins" else _qualified(cls)
        return SerializationError(f"Cannot save {self.where()} (a {name}): {why}; {fix}.")

    # --- the walk -----------------------------------------------------------------------

    def _enc(self, v: Any) -> Any:
        t = type(v)
        if t is str:
            return v if v.isascii() else self._text(v)
        if t is bool or v is None:
            return v
        if t is int:
            return v if _INT_MIN <= v <= _INT_MAX else {"!int": str(v)}
        if t is float:
            return v if v - v == 0.0 else {"!float": repr(v)}
        if len(self._path) >= MAX_DEPTH:
            raise self._too_deep(v)
        if t is list:
            return self._list(v)
        if t is dict:
            return self._dict(v)
        encode = _ENCODERS.get(t)
        if encode is not None:
            return encode(self, v)
        return self._other(v)

    def _list(self, items: Any) -> list[Any]:
        out: list[Any] = []
        append = out.append
        path = self._path
        for i, x in enumerate(items):
            tx = type(x)
            if (
                (tx is str and x.isascii())
                or tx is bool
                or x is None
                or (tx is float and x - x == 0.0)
                or (tx is int and _INT_MIN <= x <= _INT_MAX)
            ):
                append(x)
            else:
                path.append(i)
                append(self._enc(x))
                path.pop()
        return out

    def _dict(self, d: dict[Any, Any]) -> Any:
        out: dict[str, Any] = {}
        path = self._path
        for k, x in d.items():
            if type(k) is not str or k[:1] == TAG:
                return {"!dict": self._pairs(d)}
            if not k.isascii():
                path.append(_Item("key", k))
                self._text(k)
                path.pop()
            tx = type(x)
            if (
                (tx is str and x.isascii())
                or tx is bool
                or x is None
                or (tx is float and x - x == 0.0)
                or (tx is int and _INT_MIN <= x <= _INT_MAX)
            ):
                out[k] = x
            else:
                path.append(k)
                out[k] = self._enc(x)
                path.pop()
        return out

    def _pairs(self, d: Mapping[Any, Any]) -> list[list[Any]]:
        pairs = []
        path = self._path
        for k, x in d.items():
            path.append(_Item("key", k))
            key = self._enc(k)
            path[-1] = k
            pairs.append([key, self._enc(x)])
            path.pop()
        return pairs

    def _members(self, items: Any, tag: str) -> dict[str, Any]:
        path = self._path
        nodes = []
        for x in items:
            path.append(_Item("member", x))
            nodes.append(self._enc(x))
            path.pop()
        # sets have no order: sort so equal sets give equal bytes (every str is checked)
        return {tag: sorted(nodes, key=orjson.dumps)}

    def _bytes(self, v: bytes) -> Any:
        if self.route is not None and len(v) > BYTES_INLINE_MAX:
            key = self.route(v, self.where())
            if key is not None:
                return {REF_TAG: key}
        return {"!bytes": base64.b64encode(v).decode("ascii")}

    def _other(self, v: Any) -> Any:
        cls = type(v)
        if isinstance(v, enum.Enum):
            identity = class_identity(cls, self.where)
            if cls.__members__.get(v.name) is v:
                return {"!enum": [identity, self._text(v.name)]}
            return {"!enum": [identity, None, self._enc(v.value)]}  # a composite Flag
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(v, (pandas.Timestamp, pandas.Timedelta)):
            return self._pandas(v, pandas)
        if pandas is not None and v is pandas.NaT:
            return {"!pd.NaT": None}
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(v, numpy.generic):
            return self._numpy(v)
        if isinstance(v, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
            return {"!namedtuple": [class_identity(cls, self.where), self._list(v)]}
        if self.route is not None:
            key = self.route(v, self.where())
            if key is not None:
                return {REF_TAG: key}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {"!dataclass": [class_identity(cls, self.where), self.dataclass_fields(v)]}
        if _is_model(v):
            return {"!model": [class_identity(cls, self.where), self.model_state(v)]}
        raise self._unsupported(v)

    # --- parts shared with the field unpackers --------------------------------------------

    def dataclass_fields(self, obj: Any) -> dict[str, Any]:
        """``{field name: node}`` for every field of a dataclass instance."""
        path = self._path
        out = {}
        for field in dataclasses.fields(obj):
            path.append(_Attr(field.name))
            out[field.name] = self._enc(getattr(obj, field.name))
            path.pop()
        return out

    def model_state(self, model: Any, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A pydantic model's state: fields, fields set, extra fields and private attributes.

        ``fields`` replaces the field nodes (field unpackers encode fields themselves).
        """
        path = self._path
        if fields is None:
            fields = {}
            for name, value in model.__dict__.items():
                path.append(_Attr(name))
                fields[name] = self._enc(value)
                path.pop()
        state: dict[str, Any] = {
            "fields": fields,
            "set": sorted(model.__pydantic_fields_set__),
        }
        extra = model.__pydantic_extra__
        if extra:
            path.append(_Attr("__pydantic_extra__"))
            state["extra"] = self._dict(extra)
            path.pop()
        private = _private_attributes(model)
        if private:
            path.append(_Attr("__pydantic_private__"))
            state["private"] = self._dict(private)
            path.pop()
        return state

    # --- scalars of pandas and numpy ------------------------------------------------------

    def _pandas(self, v: Any, pandas: Any) -> Any:
        try:
            if isinstance(v, pandas.Timestamp):
                node: dict[str, Any] = {"!pd.Timestamp": [v.value, _tz_node(v.tz), v.unit]}
            else:
                node = {"!pd.Timedelta": [v.value, v.unit]}
            back = ValueDecoder().decode(node)
        except (OverflowError, ValueError, TypeError, LaboxError) as error:
            raise self.refuse(
                v, f"it cannot be written exactly ({error})", "convert it to nanoseconds"
            ) from None
        if (
            type(back) is not type(v)
            or back != v
            or str(back) != str(v)
            or type(getattr(back, "tz", None)) is not type(getattr(v, "tz", None))
        ):
            raise self.refuse(
                v,
                f"its time zone {v.tz!r} would not come back as the same type",
                "convert it with .tz_convert(zoneinfo.ZoneInfo(name)) or to UTC first",
            )
        return node

    def _numpy(self, v: Any) -> Any:
        dtype = v.dtype
        if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
            raise self.refuse(
                v,
                f"numpy scalars of dtype {dtype} have no faithful encoding",
                "convert it to a Python value or to a numeric or string dtype",
            )
        return {"!np": [dtype.str, base64.b64encode(v.tobytes()).decode("ascii")]}

    # --- refusals -------------------------------------------------------------------------

    def _too_deep(self, value: Any) -> SerializationError:
        """The value contains itself (named where, when the root is known), or is too deep."""
        cycle = self._cycle()
        if cycle is not None:
            start, end = cycle
            return SerializationError(
                f"Cannot save {self._render(self._path[:start])}: it contains itself at "
                f"{self._render(self._path[:end])}; break the cycle (store a copy, or an id "
                f"to look the inner value up)."
            )
        shown = self._render(self._path[:_SHOWN_STEPS])
        return SerializationError(
            f"Cannot save {shown}… (a {type(value).__qualname__}, {len(self._path)} levels "
            f"down): it is nested more than {MAX_DEPTH} levels deep; flatten the structure."
        )

    def _cycle(self) -> tuple[int, int] | None:
        """Where the path first meets a value it is already inside: (start, end) steps."""
        if self._value is _UNKNOWN:
            return None
        node, seen = self._value, {id(self._value): 0}
        for end, step in enumerate(self._path, start=1):
            try:
                if isinstance(step, _Item):
                    node = step.value
                elif isinstance(step, _Attr):
                    node = getattr(node, step)
                else:
                    node = node[step]
            except Exception:  # a step this walk cannot repeat: no cycle named
                return None
            if id(node) in seen:
                return seen[id(node)], end
            seen[id(node)] = end
        return None

    def _unsupported(self, v: Any) -> SerializationError:
        if isinstance(v, AsyncIterable):
            return self.refuse(
                v,
                "an async stream can be stored only as a whole StorableStream or as a field "
                "of a StorableModel or StorableDataclass",
                "move it to a field of its own",
            )
        live = live_kind(v)
        if live is not None:
            return self.refuse(
                v, f"{live} is live state of this process, not data", "store the data it holds"
            )
        cls = type(v)
        why = "it has no faithful encoding and no serializer is registered for its type"
        register = f"register a serializer for {_qualified(cls)} (Registry(serializers=[...]))"
        plain = next((base for base in _PLAIN_BASES if isinstance(v, base)), None)
        if plain is not None:  # OrderedDict, Counter, defaultdict, UserList's kin...
            return self.refuse(
                v,
                why,
                f"store it as a plain {plain.__name__} ({plain.__name__}(...)) if its type "
                f"need not come back, or {register}",
            )
        return self.refuse(
            v,
            why,
            f"{register}, make it a dataclass or pydantic model, or convert it to a supported "
            f"type (see labox_prefect/core/builtin/serializers/VALUES.md)",
        )


_PLAIN_BASES: tuple[type[Any], ...] = (dict, list, set, frozenset, tuple)
"""Containers the tree keeps as such: a subclass of one it does not know can be stored as
its base, losing only its type (a NamedTuple is known; see VALUES.md)."""


class ValueDecoder:
    """Turns a JSON tree back into values; ``refs`` holds the contents it references."""

    __slots__ = ("refs",)

    def __init__(self, refs: Mapping[str, Any] | None = None) -> None:
        self.refs = refs

    def decode(self, node: Any) -> Any:
        t = type(node)
        if t is list:
            return [self.decode(x) if type(x) in _CONTAINERS else x for x in node]
        if t is dict:
            if len(node) == 1:
                key = next(iter(node))
                if key[:1] == TAG:
                    return self._tag(key, node[key])
            return {k: (self.decode(x) if type(x) in _CONTAINERS else x) for k, x in node.items()}
        return node

    def _tag(self, tag: str, payload: Any) -> Any:
        decode = _DECODERS.get(tag)
        if decode is None:
            raise SerializationError(
                f"Unknown tag {tag!r} in a stored value: it was written by a newer version of "
                f"labox_prefect, or the content is corrupted."
            )
        try:
            return decode(self, payload)
        except LaboxError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
            raise SerializationError(
                f"Cannot read the {tag!r} node {str(payload)[:80]!r}: {error}. The content is "
                f"corrupted or was not written by labox_prefect."
            ) from None

    def dataclass(self, cls: Any, fields: Mapping[str, Any]) -> Any:
        """An instance of dataclass ``cls`` with ``fields`` (nodes) set, without ``__init__``.

        Fields added to the class since the save take their defaults.
        """
        obj = cls.__new__(cls)
        stored = dict(fields)
        for field in dataclasses.fields(cls):
            if field.name in stored:
                value = self.decode(stored.pop(field.name))
            elif field.default is not dataclasses.MISSING:
                value = field.default
            elif field.default_factory is not dataclasses.MISSING:
                value = field.default_factory()
            else:
                raise SerializationError(
                    f"The stored {cls.__qualname__} has no field {field.name!r}, which the "
                    f"class now requires; give the field a default."
                )
            object.__setattr__(obj, field.name, value)
        if stored:
            raise SerializationError(
                f"The stored {cls.__qualname__} has fields {sorted(stored)} that the class no "
                f"longer has; add them back (with defaults) to read old records."
            )
        return obj

    def model(self, cls: Any, state: Mapping[str, Any]) -> Any:
        """An instance of pydantic model ``cls`` from its stored state, without validation."""
        fields = {k: self.decode(x) for k, x in state["fields"].items()}
        extra = self.decode(state["extra"]) if "extra" in state else None
        fields_set = set(state["set"])
        if fields.keys() == cls.model_fields.keys():
            obj = cls.__new__(cls)
            allow = cls.model_config.get("extra") == "allow"
            obj.__setstate__(
                {
                    "__dict__": fields,
                    "__pydantic_extra__": (extra or {}) if allow else None,
                    "__pydantic_fields_set__": fields_set,
                    "__pydantic_private__": _default_private(cls),
                }
            )
        else:  # the class changed since the save: new fields take their defaults
            unknown = fields.keys() - cls.model_fields.keys()
            if unknown:
                raise SerializationError(
                    f"The stored {cls.__qualname__} has fields {sorted(unknown)} that the class "
                    f"no longer has; add them back (with defaults) to read old records."
                )
            obj = cls.model_construct(
                fields_set & cls.model_fields.keys(), **fields, **(extra or {})
            )
        if "private" in state:
            private = dict(obj.__pydantic_private__ or {})
            private.update(self.decode(state["private"]))
            object.__setattr__(obj, "__pydantic_private__", private)
        return obj


# --- tag encoders (by exact type) -------------------------------------------------------


def _time_zone_check(enc: ValueEncoder, v: datetime.time | datetime.datetime) -> None:
    if zone_is_kept(v):
        return
    tz = v.tzinfo
    raise enc.refuse(
        v,
        f"its time zone {tz!r} ({type(tz).__qualname__}) would come back as another type",
        "use a zoneinfo.ZoneInfo (datetimes only) or an unnamed datetime.timezone offset",
    )


def _encode_datetime(enc: ValueEncoder, v: datetime.datetime) -> Any:
    _time_zone_check(enc, v)
    if isinstance(v.tzinfo, zoneinfo.ZoneInfo):
        return {"!datetime": [v.isoformat(), v.tzinfo.key, v.fold]}
    return {"!datetime": [v.isoformat(), None, v.fold] if v.fold else v.isoformat()}


def _encode_time(enc: ValueEncoder, v: datetime.time) -> Any:
    _time_zone_check(enc, v)
    return {"!time": [v.isoformat(), v.fold] if v.fold else v.isoformat()}


def _encode_tuple(enc: ValueEncoder, v: tuple[Any, ...]) -> Any:
    return {"!tuple": enc._list(v)}


_ENCODERS: dict[type[Any], Callable[[ValueEncoder, Any], Any]] = {
    tuple: _encode_tuple,
    set: lambda enc, v: enc._members(v, "!set"),
    frozenset: lambda enc, v: enc._members(v, "!frozenset"),
    bytes: ValueEncoder._bytes,
    bytearray: lambda enc, v: {"!bytearray": base64.b64encode(v).decode("ascii")},
    decimal.Decimal: lambda enc, v: {"!decimal": str(v)},
    datetime.date: lambda enc, v: {"!date": v.isoformat()},
    datetime.time: _encode_time,
    datetime.datetime: _encode_datetime,
    datetime.timedelta: lambda enc, v: {"!timedelta": [v.days, v.seconds, v.microseconds]},
    uuid.UUID: lambda enc, v: {"!uuid": str(v)},
    complex: lambda enc, v: {"!complex": [enc._enc(v.real), enc._enc(v.imag)]},
    **{
        c: (lambda enc, v: {"!path": [type(v).__name__, enc._text(str(v))]})
        for c in _PATHS.values()
    },
}


# --- tag decoders ------------------------------------------------------------------------


def _decode_datetime(dec: ValueDecoder, payload: Any) -> datetime.datetime:
    if isinstance(payload, str):
        return datetime.datetime.fromisoformat(payload)
    text, key, fold = payload
    value = datetime.datetime.fromisoformat(text).replace(fold=fold)
    return value if key is None else in_zone(value, key, "labox.values@v1")


def _decode_time(dec: ValueDecoder, payload: Any) -> datetime.time:
    if isinstance(payload, str):
        return datetime.time.fromisoformat(payload)
    return datetime.time.fromisoformat(payload[0]).replace(fold=payload[1])


def _decode_enum(dec: ValueDecoder, payload: Any) -> Any:
    cls = find_class(payload[0], "Enum", lambda c: issubclass(c, enum.Enum))
    if payload[1] is None:
        return cls(dec.decode(payload[2]))
    member = cls.__members__.get(payload[1])
    if member is None:
        raise SerializationError(
            f"{_qualified(cls)} has no member {payload[1]!r} any more; add it back to read "
            f"old records."
        )
    return member


def _decode_ref(dec: ValueDecoder, key: Any) -> Any:
    if dec.refs is None or key not in dec.refs:
        raise SerializationError(
            f"The stored value references the content {key!r}, which the record does not have; "
            f"the record is incomplete or corrupted."
        )
    return dec.refs[key]


def _decode_path(dec: ValueDecoder, payload: Any) -> pathlib.PurePath:
    cls = _PATHS[payload[0]]
    try:
        return cls(payload[1])
    except NotImplementedError:
        raise SerializationError(
            f"Cannot read a {cls.__name__} on this system ({sys.platform}); load it where "
            f"it was saved, or save a PurePosixPath or PureWindowsPath instead."
        ) from None


def _decode_timestamp(dec: ValueDecoder, payload: Any) -> Any:
    import pandas

    value, tz, unit = payload
    if tz is None:
        stamp = pandas.Timestamp(value, unit="ns")
    else:
        stamp = pandas.Timestamp(value, unit="ns", tz="UTC").tz_convert(_tz_from_node(tz))
    return stamp.as_unit(unit)


def _decode_timedelta(dec: ValueDecoder, payload: Any) -> Any:
    import pandas

    return pandas.Timedelta(payload[0], unit="ns").as_unit(payload[1])


def _decode_nat(dec: ValueDecoder, payload: Any) -> Any:
    import pandas

    return pandas.NaT


def _decode_numpy(dec: ValueDecoder, payload: Any) -> Any:
    import numpy

    dtype = numpy.dtype(str(payload[0]))
    if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
        raise SerializationError(f"A stored numpy scalar has the dtype {dtype}, which is refused.")
    if dtype.itemsize == 0:  # an empty str_ or bytes_ has a zero-width dtype
        return dtype.type()
    return numpy.frombuffer(base64.b64decode(payload[1]), dtype=dtype)[0]


def _decode_model(dec: ValueDecoder, payload: Any) -> Any:
    cls = find_class(payload[0], "pydantic model", _is_model_class)
    return dec.model(cls, payload[1])


def _is_dataclass_class(cls: type[Any]) -> bool:
    return dataclasses.is_dataclass(cls)


def _decode_namedtuple(dec: ValueDecoder, payload: Any) -> Any:
    cls = find_class(
        payload[0],
        "NamedTuple",
        lambda c: issubclass(c, tuple) and isinstance(getattr(c, "_fields", None), tuple),
    )
    return cls(*dec.decode(payload[1]))


_DECODERS: dict[str, Callable[[ValueDecoder, Any], Any]] = {
    "!dict": lambda dec, p: {dec.decode(k): dec.decode(v) for k, v in p},
    "!tuple": lambda dec, p: tuple(dec.decode(p)),
    "!set": lambda dec, p: set(dec.decode(p)),
    "!frozenset": lambda dec, p: frozenset(dec.decode(p)),
    "!int": lambda dec, p: int(p),
    "!float": lambda dec, p: _NON_FINITE[p],
    "!bytes": lambda dec, p: base64.b64decode(p, validate=True),
    "!bytearray": lambda dec, p: bytearray(base64.b64decode(p, validate=True)),
    "!decimal": lambda dec, p: decimal.Decimal(p),
    "!date": lambda dec, p: datetime.date.fromisoformat(p),
    "!time": _decode_time,
    "!datetime": _decode_datetime,
    "!timedelta": lambda dec, p: datetime.timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "!uuid": lambda dec, p: uuid.UUID(p),
    "!path": _decode_path,
    "!complex": lambda dec, p: complex(dec.decode(p[0]), dec.decode(p[1])),
    "!enum": _decode_enum,
    "!namedtuple": _decode_namedtuple,
    "!dataclass": lambda dec, p: dec.dataclass(
        find_class(p[0], "dataclass", _is_dataclass_class), p[1]
    ),
    "!model": _decode_model,
    "!pd.Timestamp": _decode_timestamp,
    "!pd.Timedelta": _decode_timedelta,
    "!pd.NaT": _decode_nat,
    "!np": _decode_numpy,
    REF_TAG: _decode_ref,
}
_CONTAINERS = (list, dict)

TAGS = frozenset(_DECODERS)
"""The closed set of tags (documented in VALUES.md)."""


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is exactly JSON (str-keyed dicts without tag-like keys, lists, str,
    bool, None, 64-bit ints, finite floats), so that it is its own tree."""
    t = type(value)
    if t is dict:
        items: Any = value.items()
    elif t is list:
        items = enumerate(value)
    else:
        return _is_plain_atom(value, t)
    if depth >= MAX_DEPTH:
        return False
    is_dict = t is dict
    for key, x in items:
        if is_dict and (type(key) is not str or key[:1] == TAG):
            return False
        tx = type(x)
        if tx is str or tx is bool or x is None:
            continue
        if tx is int:
            if not _INT_MIN <= x <= _INT_MAX:
                return False
        elif tx is float:
            if x - x != 0.0:
                return False
        elif tx is dict or tx is list:
            if not is_plain_json(x, depth + 1):
                return False
        else:
            return False
    return True


def _is_plain_atom(value: Any, t: type[Any]) -> bool:
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if t is float:
        return bool(value - value == 0.0)
    return False


def encode_value(value: Any, where: str = "value") -> Any:
    """The JSON tree of ``value`` (no references); SerializationError if it is not storable."""
    return ValueEncoder().encode(value, where)


def decode_value(tree: Any, refs: Mapping[str, Any] | None = None) -> Any:
    """The value of a JSON tree; ``refs`` are the contents its ``!ref`` nodes name."""
    return ValueDecoder(refs).decode(tree)


def handled_by_kind(cls: type[Any]) -> bool:
    """True if values of ``cls`` are encoded by what they are (not by a registered type)."""
    if issubclass(cls, enum.Enum) or (
        issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)
    ):
        return True
    if dataclasses.is_dataclass(cls) or _is_model_class(cls):
        return True
    pandas = sys.modules.get("pandas")
    if pandas is not None and issubclass(cls, (pandas.Timestamp, pandas.Timedelta)):
        return True
    if pandas is not None and cls is type(pandas.NaT):
        return True
    numpy = sys.modules.get("numpy")
    return numpy is not None and issubclass(cls, numpy.generic)


def _is_model(v: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(v, pydantic.BaseModel)


def _is_model_class(cls: type[Any]) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


def _private_attributes(model: Any) -> dict[str, Any]:
    private = getattr(model, "__pydantic_private__", None)
    if not private:
        return {}
    from pydantic_core import PydanticUndefined

    return {k: v for k, v in private.items() if v is not PydanticUndefined}


def _default_private(cls: type[Any]) -> dict[str, Any] | None:
    attributes = getattr(cls, "__private_attributes__", None)
    if not attributes:
        return None
    from pydantic_core import PydanticUndefined

    private = {}
    for name, attribute in attributes.items():
        default = attribute.get_default()
        if default is not PydanticUndefined:
            private[name] = default
    return private


def _tz_node(tz: Any) -> Any:
    if tz is None:
        return None
    if type(tz) is datetime.timezone:
        offset = tz.utcoffset(None)
        return offset.total_seconds() if offset is not None else None
    return str(tz)


def _tz_from_node(node: Any) -> Any:
    if isinstance(node, (int, float)):
        return datetime.timezone(datetime.timedelta(seconds=node))
    return zoneinfo.ZoneInfo(node) if isinstance(node, str) else node


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
