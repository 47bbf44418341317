"""The typed value tree (labox.values@v1): its tags, escapes, refusals and what it never does."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import sys
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from labox_prefect.core import NotRegisteredError, SerializationError, SerializedData
from labox_prefect.core.builtin import values_serializer
from labox_prefect.core.builtin.serializers import values as values_module
from labox_prefect.core.builtin.serializers.tree import TAGS, decode_value, encode_value
from labox_prefect.core.testing import Box, Pair, Shade, same


def dump(value: Any) -> bytes:
    return values_serializer.serialize_data(value).data


def load(data: bytes) -> Any:
    return values_serializer.deserialize_data(
        SerializedData(data=data, content_type="application/json")
    )


@pytest.mark.parametrize(
    ("value", "json"),
    [
        ({"a": [1, 2.5, None, True, "x"]}, b'{"a":[1,2.5,null,true,"x"]}'),
        ((1, "a"), b'{"!tuple":[1,"a"]}'),
        ({"b", "a"}, b'{"!set":["a","b"]}'),
        ({1: "x"}, b'{"!dict":[[1,"x"]]}'),
        ({"!tuple": 1}, b'{"!dict":[["!tuple",1]]}'),
        (float("nan"), b'{"!float":"nan"}'),
        (-0.0, b"-0.0"),
        (2**64, b'{"!int":"18446744073709551616"}'),
        (b"\x00", b'{"!bytes":"AA=="}'),
        (decimal.Decimal("1.10"), b'{"!decimal":"1.10"}'),
        (datetime.date(2024, 1, 2), b'{"!date":"2024-01-02"}'),
        (datetime.timedelta(days=1, microseconds=2), b'{"!timedelta":[1,0,2]}'),
        (Shade.DARK, b'{"!enum":["labox_prefect.core.testing.samples:Shade","DARK"]}'),
        (Pair(1), b'{"!namedtuple":["labox_prefect.core.testing.samples:Pair",[1,null]]}'),
        (
            Box((1,)),
            b'{"!dataclass":["labox_prefect.core.testing.samples:Box",'
            b'{"content":{"!tuple":[1]},"label":"box"}]}',
        ),
        (pd.NaT, b'{"!pd.NaT":null}'),
        (np.float32(1.0), b'{"!np":["<f4","AACAPw=="]}'),
    ],
)
def test_each_type_has_one_documented_encoding(value: Any, json: bytes) -> None:
    assert dump(value) == json
    assert same(value, load(json))


def test_every_tag_is_documented_in_the_format_note() -> None:
    note = (Path(values_module.__file__).parent / "VALUES.md").read_text()
    missing = [tag for tag in TAGS if f"`{tag}`" not in note]
    assert not missing


def test_plain_json_is_written_as_json_and_read_without_decoding() -> None:
    value = {"name": "x", "sizes": [1, 2, 3], "ratio": 0.5, "ok": None}
    assert dump(value) == orjson.dumps(value)


def test_equal_sets_give_equal_bytes_whatever_their_insertion_order() -> None:
    words = [f"w{i}" for i in range(50)]
    assert dump(set(words)) == dump(set(reversed(words)))


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ({"a": [1, 2, 3, object()]}, ["value['a'][3]", "a object", "register a serializer"]),
        (
            collections.OrderedDict(a=1),
            ["value (a collections.OrderedDict)", "store it as a plain dict (dict(...))"],
        ),
        ({"c": [collections.Counter("ab")]}, ["value['c'][0]", "a plain dict (dict(...))"]),
        ([collections.deque([1])], ["value[0] (a collections.deque)", "see labox_prefect/"]),
        ({"k": "\ud800"}, ["value['k'] (a str)", "unpaired surrogate", "save it as bytes"]),
        ([(1, {"\ud800": 2})], ["value[0][1][<key '\\ud800'>] (a str)", "unpaired surrogate"]),
        ({3: ["x", "\udfff"]}, ["value[3][1] (a str)", "unpaired surrogate"]),
        ({"k": {1, ("x", "\ud800")}}, ["value['k'][<member ('x', '\\ud800')>][1] (a str)"]),
        (Box(content=("a\ud800",)), ["value.content[0] (a str)", "unpaired surrogate"]),
        ({"p": PurePosixPath("/data/\udcff")}, ["value['p'] (a str)", "unpaired surrogate"]),
        (
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(0), "CET")),
            ["time zone", "zoneinfo.ZoneInfo"],
        ),
        ([(1, {"x": collections.UserString("s")})], ["value[0][1]['x']", "UserString"]),
        ({"a": [1, {"lock": threading.Lock()}]}, ["value['a'][1]['lock']", "a lock is live state"]),
        ([len], ["value[0] (a builtin_function_or_method): a function is live state"]),
        ({"g": (i for i in ())}, ["value['g'] (a generator): a generator is live state"]),
    ],
)
def test_what_cannot_be_kept_is_refused_with_its_path_type_and_a_fix(
    value: Any, fragments: list[str]
) -> None:
    with pytest.raises(SerializationError) as caught:
        dump(value)
    for fragment in fragments:
        assert fragment in str(caught.value)
    if "live state" in str(caught.value):  # no serializer could keep it: none is advised
        assert "serializer" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"k": ("a", "\ud800")}, "value['k'][1]"),
        ([{"\udfff": 1}, {2}], "value[0][<key '\\udfff'>]"),
        (Box(content={"s": "\ud800"}), "value.content['s']"),
    ],
)
def test_a_str_without_utf8_is_refused_while_the_value_is_encoded(value: Any, where: str) -> None:
    with pytest.raises(SerializationError) as caught:
        encode_value(value)
    assert f"Cannot save {where} (a str): it holds an unpaired surrogate" in str(caught.value)


def test_too_deep_or_circular_values_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"it contains itself at value\[0\];"):
        dump(loop)


def test_a_class_defined_in_a_function_is_refused_on_save() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match=r"value\[0\].*Local.*top level of a module"):
        dump([Local(1)])


def test_unknown_tags_and_wrong_kinds_are_refused_on_load() -> None:
    with pytest.raises(SerializationError, match="Unknown tag '!pickle'"):
        load(b'{"!pickle":"x"}')
    with pytest.raises(SerializationError, match="not a dataclass"):
        load(b'{"!dataclass":["labox_prefect.core.testing.samples:Shade",{}]}')


def test_loading_never_imports_the_module_a_value_names() -> None:
    assert "antigravity" not in sys.modules
    with pytest.raises(NotRegisteredError, match="`import antigravity`"):
        decode_value({"!model": ["antigravity:Fly", {"fields": {}, "set": []}]})
    assert "antigravity" not in sys.modules


def test_a_script_class_is_named_by_the_module_python_ran_it_as(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = sys.modules["__main__"]
    cls = dataclasses.make_dataclass("ScriptPoint", [("x", int)])
    cls.__module__ = "__main__"
    monkeypatch.setattr(main, "ScriptPoint", cls, raising=False)
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    assert encode_value(cls(1))["!dataclass"][0] == "__main__:ScriptPoint"

    class Spec:
        name = "flows.etl"

    monkeypatch.setattr(main, "__spec__", Spec())
    from labox_prefect.core import classes

    monkeypatch.setattr(classes, "_identities", {})
    tree = encode_value(cls(1))
    assert tree["!dataclass"][0] == "flows.etl:ScriptPoint"  # `python -m flows.etl`
    assert same(cls(1), decode_value(tree))


def test_objects_that_contain_themselves_are_refused_not_a_recursion_error() -> None:
    box = Box(None)
    box.content = [box]
    with pytest.raises(SerializationError) as caught:
        dump(box)
    assert str(caught.value).startswith(
        "Cannot save value: it contains itself at value.content[0];"
    )


def test_a_list_that_holds_itself_names_the_place_once() -> None:
    inner: list[Any] = [2]
    inner.append(inner)
    with pytest.raises(SerializationError) as caught:
        dump((1, inner))
    message = str(caught.value)
    assert message.startswith("Cannot save value[1]: it contains itself at value[1][1];")
    assert message.count("[1]") == 3


def test_a_value_too_deep_shows_the_start_of_its_path() -> None:
    deep: list[Any] = [0]
    for _ in range(60):
        deep = [deep]
    with pytest.raises(SerializationError) as caught:
        dump(deep)
    message = str(caught.value)
    assert "value[0][0][0][0][0][0]… (a list, 50 levels down)" in message
    assert "nested more than 50 levels deep" in message
    assert message.count("[0]") == 6
