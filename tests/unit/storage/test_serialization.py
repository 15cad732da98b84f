"""Serialization: every codec round trips, ids are stable, summaries stay small."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import typing
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import pytest

from sematic.core.errors import ArtifactCorruptedError, ConfigurationError, TypeCheckError
from sematic.core.records import ArtifactRecord
from sematic.storage.serialization import (
    Serialized,
    deserialize,
    hint_key,
    register_serializer,
    serialize,
    unregister_serializer,
    verify,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color
    tags: frozenset[str] = frozenset()
    origin: tuple[int, int] = (0, 0)
    area: float = dataclasses.field(init=False, default=0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted:
    name: str
    values: tuple[int, ...]


class Opaque:
    """Neither JSON nor array: stored with cloudpickle."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return type(other) is Opaque and other.payload == self.payload

    def __hash__(self) -> int:
        return hash(repr(self.payload))


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.cents == self.cents  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return self.cents


class Euros(Money):
    pass


@pytest.fixture
def money_serializer() -> Iterator[None]:
    register_serializer(
        Money,
        serialize=lambda money: str(money.cents).encode(),
        deserialize=lambda payload: Money(int(payload)),
        summary=lambda money: f"{money.cents / 100:.2f}",
    )
    yield
    unregister_serializer(Money)


def assert_same(actual: Any, expected: Any) -> None:
    """Equal values of exactly the same types, all the way down (nan equals nan)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key, item in expected.items():
            assert_same(actual[key], item)
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_same(getattr(actual, field.name), getattr(expected, field.name))
    else:
        assert actual == expected


NAN = float("nan")
JSON_VALUES: dict[str, Any] = {
    "none": None,
    "bool": True,
    "int": -12,
    "big int": 2**100,
    "float": 0.1,
    "negative zero": -0.0,
    "nan": NAN,
    "inf": float("inf"),
    "minus inf": float("-inf"),
    "floats in a list": [1.5, NAN, float("inf")],
    "str": "héllo\u2603",
    "lone surrogate": "\ud800",
    "bytes": b"\x00\xffbinary",
    "empty bytes": b"",
    "list": [1, "a", None],
    "tuple": (1, (2, 3), ()),
    "dict": {"b": 1, "a": [1, 2]},
    "dict with int keys": {2: "b", 1: "a"},
    "dict with tuple keys": {(1, 2): "x", (0, 1): "y"},
    "dict with the tag key": {"__sematic__": "bytes", "base64": "AA=="},
    "set": {3, 1, 2},
    "set of str": {"b", "c", "a"},
    "mixed set": {1, "a", None, (1, 2)},
    "frozenset": frozenset({1.5, 2.5}),
    "datetime": datetime.datetime(2024, 3, 1, 12, 30, 15, 123456),
    "aware datetime": datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC),
    "offset datetime": datetime.datetime(
        2024, 3, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    ),
    "zoneinfo datetime": datetime.datetime(
        2024, 11, 3, 1, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"), fold=1
    ),
    "date": datetime.date(2024, 3, 1),
    "time": datetime.time(12, 0, 1),
    "timedelta": datetime.timedelta(days=-1, seconds=5, microseconds=7),
    "enum": Color.BLUE,
    "int enum": Level.HIGH,
    "dataclass": Point(1.0, 2.5),
    "nested dataclass": Shape(
        "tri", [Point(0, 0), Point(1, NAN)], Color.RED, frozenset({"a"}), (1, 2)
    ),
    "slots dataclass": Slotted("s", (1, 2)),
    "dataclasses in a dict": {"p": [Point(1, 2)], "c": {Color.RED: (Point(3, 4),)}},
}


@pytest.mark.parametrize("value", JSON_VALUES.values(), ids=JSON_VALUES.keys())
def test_json_values_round_trip_with_their_types(value: Any) -> None:
    stored = serialize(value, Any)
    assert stored.type_description["kind"] == "json"
    json.loads(stored.payload)  # plain JSON
    assert_same(deserialize(stored.payload, stored.type_description), value)
    verify(stored.artifact_id, stored.type_description, stored.payload)
    json.dumps(stored.summary, allow_nan=False)


def test_dataclass_fields_set_after_init_are_restored() -> None:
    shape = Shape("square", [], Color.BLUE)
    shape.area = 4.0
    stored = serialize(shape, Shape)
    back = deserialize(stored.payload, stored.type_description)
    assert type(back) is Shape
    assert back.area == 4.0
    assert back == shape


def test_the_same_value_gives_the_same_id() -> None:
    first = serialize({"b": 1, "a": {3, 2, 1}}, dict[str, Any])
    second = serialize({"a": {1, 2, 3}, "b": 1}, dict[str, Any])
    assert first.artifact_id == second.artifact_id
    assert first.payload == second.payload


def test_a_different_declared_type_gives_a_different_id() -> None:
    ids = {serialize([1, 2], hint).artifact_id for hint in (list[int], list[Any], Any, object)}
    assert len(ids) == 4


def test_equal_annotations_give_equal_ids() -> None:
    assert hint_key(Union[int, str]) == hint_key(str | int)  # noqa: UP007
    assert hint_key(Optional[int]) == hint_key(int | None)  # noqa: UP007
    assert hint_key(list[Point]) == f"list[{__name__}.Point]"
    assert hint_key(dict[str, tuple[int, ...]]) == "dict[str, tuple[int, ...]]"
    assert hint_key(typing.List) == hint_key(list) == "list"  # noqa: UP006
    assert hint_key(typing.Annotated[int, "meta"]) == "int"
    assert hint_key(Callable[[int], str]) == "collections.abc.Callable[[int], str]"


def test_classes_of_the_same_name_in_other_modules_give_other_ids() -> None:
    other = type("Point", (), {"__module__": "elsewhere"})
    assert hint_key(other) != hint_key(Point)
    assert serialize(1, other).artifact_id != serialize(1, Point).artifact_id


def test_artifact_ids_are_the_same_in_other_processes(tmp_path: Path) -> None:
    (tmp_path / "sematic_id_values.py").write_text(
        textwrap.dedent(
            """
            import dataclasses, datetime, enum
            from typing import Any

            import numpy as np
            import pandas as pd

            class Mode(enum.Enum):
                FAST = "fast"

            @dataclasses.dataclass(frozen=True)
            class Item:
                name: str
                mode: Mode
                weights: tuple[float, ...]

            VALUES = [
                (1, int),
                ("x" * 50, str),
                ({"z": 1, "a": [1.5, float("nan")]}, dict[str, Any]),
                ({"beta", "alpha", "gamma", "delta"}, set[str]),
                (frozenset({("a", 1), ("b", 2)}), frozenset[tuple[str, int]]),
                ({3: Item("a", Mode.FAST, (1.0,))}, dict[int, Item]),
                (Item("b", Mode.FAST, ()), Item),
                (datetime.datetime(2020, 1, 1), datetime.datetime),
                (b"bytes", bytes),
                (np.arange(12, dtype=np.float32).reshape(3, 4), Any),
                (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), pd.DataFrame),
            ]
            """
        )
    )
    script = (
        "import json, sematic_id_values as v\n"
        "from sematic.storage.serialization import serialize\n"
        "print(json.dumps([serialize(x, h).artifact_id for x, h in v.VALUES]))\n"
    )

    def ids_in_a_new_process(hash_seed: str) -> list[str]:
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        environment["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        ids: list[str] = json.loads(result.stdout)
        return ids

    first, second = ids_in_a_new_process("1"), ids_in_a_new_process("2")
    assert first == second
    assert len(set(first)) == len(first)


def test_numpy_arrays_round_trip() -> None:
    arrays = [
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.array([1.5, np.nan, np.inf]),
        np.asfortranarray(np.ones((3, 2))),
        np.array(3.0),
        np.zeros((0, 4), dtype=np.uint8),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.array(["a", "bc"]),
    ]
    for array in arrays:
        stored = serialize(array, np.ndarray)
        assert stored.type_description["kind"] == "numpy"
        back = deserialize(stored.payload, stored.type_description)
        assert type(back) is np.ndarray
        assert back.dtype == array.dtype
        assert back.flags.f_contiguous == array.flags.f_contiguous
        np.testing.assert_array_equal(back, array)


def test_numpy_arrays_of_python_objects_are_pickled() -> None:
    array = np.array([Opaque(1), None], dtype=object)
    stored = serialize(array, Any)
    assert stored.type_description["kind"] == "pickle"
    back = deserialize(stored.payload, stored.type_description)
    assert back[0] == Opaque(1)
    assert back[1] is None


def test_pandas_frames_and_series_round_trip() -> None:
    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "float": [0.5, np.nan, 2.0],
            "text": ["a", None, "c"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "category": pd.Categorical(["x", "y", "x"]),
        },
        index=pd.Index([10, 20, 30], name="row"),
    )
    int_labels = pd.DataFrame({0: [1.0], 1: [2.0]})
    for value in (frame, int_labels):
        stored = serialize(value, pd.DataFrame)
        assert stored.type_description["kind"] == "pandas.dataframe"
        pd.testing.assert_frame_equal(deserialize(stored.payload, stored.type_description), value)

    for series in (pd.Series([1.0, 2.0]), pd.Series(["a", "b"], name="letters")):
        stored = serialize(series, pd.Series)
        assert stored.type_description["kind"] == "pandas.series"
        back = deserialize(stored.payload, stored.type_description)
        pd.testing.assert_series_equal(back, series)


def test_frames_parquet_would_change_are_pickled() -> None:
    frame = pd.DataFrame({"mixed": pd.Series([1, "a", Opaque(2)], dtype=object)})
    frame_of_ints_and_none = pd.DataFrame({"n": pd.Series([1, None], dtype=object)})
    mixed_labels = pd.DataFrame({"a": [1], 7: [2]})
    for value in (frame, frame_of_ints_and_none, mixed_labels):
        stored = serialize(value, Any)
        assert stored.type_description["kind"] == "pickle"
        pd.testing.assert_frame_equal(deserialize(stored.payload, stored.type_description), value)


def test_other_values_are_pickled() -> None:
    @dataclasses.dataclass
    class Local:  # not importable by name: JSON cannot name it
        value: int

    values = [
        Opaque([1, 2]),
        Local(3),
        [Opaque(1)],
        {"a": Opaque(2)},
        pd.Timestamp("2024-01-01"),
        10**5000,  # too long for JSON
    ]
    for value in values:
        stored = serialize(value, Any)
        assert stored.type_description["kind"] == "pickle"
        assert deserialize(stored.payload, stored.type_description) == value
    function = serialize(lambda x: x + 1, Any)
    assert deserialize(function.payload, function.type_description)(1) == 2


def test_dataclasses_with_extra_attributes_are_pickled() -> None:
    point = Shape("p", [], Color.RED)
    point.extra = 1  # type: ignore[attr-defined]
    stored = serialize(point, Shape)
    assert stored.type_description["kind"] == "pickle"
    assert deserialize(stored.payload, stored.type_description).extra == 1


def test_a_value_that_cannot_be_stored_is_a_type_error() -> None:
    with pytest.raises(TypeCheckError, match="register_serializer"):
        serialize(threading.Lock(), Any)


@pytest.mark.usefixtures("money_serializer")
def test_registered_serializers_are_used_first() -> None:
    stored = serialize(Money(1234), Money)
    assert stored.payload == b"1234"
    assert stored.type_description["kind"] == "user"
    assert stored.summary == "12.34"
    assert deserialize(stored.payload, stored.type_description) == Money(1234)

    subclass = serialize(Euros(5), Money)  # found through the class's bases
    assert subclass.type_description["serializer"] == f"{__name__}:Money"

    nested = serialize({"price": Money(99), "all": [Money(1)]}, dict[str, Any])
    assert nested.type_description["kind"] == "json"
    back = deserialize(nested.payload, nested.type_description)
    assert back == {"price": Money(99), "all": [Money(1)]}


def test_serializers_register_with_a_decorator() -> None:
    @register_serializer(Opaque)
    class OpaqueSerializer:
        def serialize(self, value: Opaque) -> bytes:
            return json.dumps(value.payload).encode()

        def deserialize(self, payload: bytes) -> Opaque:
            return Opaque(json.loads(payload))

        def summary(self, value: Opaque) -> Any:
            return {"opaque": value.payload}

    try:
        assert isinstance(OpaqueSerializer(), OpaqueSerializer)
        stored = serialize(Opaque([1, 2]), Opaque)
        assert stored.payload == b"[1, 2]"
        assert stored.summary == {"opaque": [1, 2]}
        assert deserialize(stored.payload, stored.type_description) == Opaque([1, 2])
    finally:
        unregister_serializer(Opaque)
    assert serialize(Opaque(1), Opaque).type_description["kind"] == "pickle"


def test_registered_serializers_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        register_serializer("Money")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError):
        register_serializer(Money, serialize=lambda m: b"")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="serialize"):

        @register_serializer(Money)  # type: ignore[type-var]
        class Incomplete:
            def serialize(self, value: Money) -> bytes:
                return b""

    register_serializer(Money, serialize=lambda m: "text", deserialize=Money)  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(TypeCheckError, match="expected bytes"):
            serialize(Money(1), Money)
    finally:
        unregister_serializer(Money)


def test_reading_without_the_registered_serializer_is_a_clear_error(
    money_serializer: None,
) -> None:
    stored = serialize(Money(3), Money)
    unregister_serializer(Money)
    with pytest.raises(ConfigurationError, match="register_serializer"):
        deserialize(stored.payload, stored.type_description)


def test_unknown_kinds_and_tags_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="'parquet2'"):
        deserialize(b"", {"kind": "parquet2"}, list[int])
    with pytest.raises(ArtifactCorruptedError, match="'mystery'"):
        deserialize(b'{"__sematic__": "mystery"}', {"kind": "json"})
    with pytest.raises(ArtifactCorruptedError, match="not valid JSON"):
        deserialize(b"{", {"kind": "json"})
    with pytest.raises(ConfigurationError, match="cannot import"):
        deserialize(
            b'{"__sematic__": "enum", "class": "no_such_module:Color", "value": 1}',
            {"kind": "json"},
        )


def test_pickles_of_classes_that_cannot_be_imported_are_a_clear_error() -> None:
    stored = serialize(Opaque(1), Opaque)
    payload = stored.payload.replace(b"Opaque", b"Opaqux")  # same length
    with pytest.raises(ConfigurationError, match="Opaqux"):
        deserialize(payload, stored.type_description)


def test_verify_detects_a_corrupted_payload() -> None:
    stored = serialize({"a": 1}, dict[str, int])
    verify(stored.artifact_id, stored.type_description, stored.payload)
    with pytest.raises(ArtifactCorruptedError, match=stored.artifact_id):
        verify(stored.artifact_id, stored.type_description, b'{"a":2}')
    with pytest.raises(ArtifactCorruptedError):
        verify(stored.artifact_id, {"kind": "json"}, stored.payload)


def test_type_descriptions_are_json_and_readable() -> None:
    stored = serialize([Point(1, 2)], list[Point])
    description = stored.type_description
    assert description["kind"] == "json"
    assert description["type"] == "list[Point]"
    assert f"{__name__}.Point" in description["type_key"]
    assert json.loads(json.dumps(description)) == description
    assert serialize(Point(1, 2), Any).type_description["type"] == "Point"


def test_to_record() -> None:
    stored = serialize("hello", str)
    record = stored.to_record(created_at=12.5)
    assert record == ArtifactRecord(
        id=stored.artifact_id,
        type_description=stored.type_description,
        summary="hello",
        size=len(stored.payload),
        created_at=12.5,
    )
    assert isinstance(stored, Serialized)


def test_summaries_of_large_values_are_truncated() -> None:
    listed = serialize(list(range(100)), list[int]).summary
    assert listed == {"items": list(range(20)), "length": 100, "truncated": True}
    text = serialize("x" * 5000, str).summary
    assert text == {"text": "x" * 1000, "length": 5000, "truncated": True}
    mapping = serialize({f"k{i:02}": i for i in range(30)}, dict[str, int]).summary
    assert mapping["length"] == 30
    assert len(mapping["items"]) == 20
    assert serialize(b"\x01" * 100, bytes).summary == {"bytes": 100, "hex": "01" * 32}
    nested: Any = 1
    for _ in range(20):
        nested = [nested]
    json.dumps(serialize(nested, Any).summary)


def test_summaries_of_arrays_and_frames() -> None:
    array = serialize(np.arange(1000.0).reshape(10, 100), np.ndarray).summary
    assert array == {
        "shape": [10, 100],
        "dtype": "float64",
        "size": 1000,
        "values": [float(i) for i in range(10)],
    }
    frame = pd.DataFrame({"a": range(100), "b": [f"s{i}" for i in range(100)]})
    summary = serialize(frame, pd.DataFrame).summary
    assert summary["shape"] == [100, 2]
    assert summary["columns"] == ["a", "b"]
    assert summary["dtypes"]["a"] == "int64"
    assert summary["head"][:2] == [[0, "s0"], [1, "s1"]]
    assert len(summary["head"]) == 10
    json.dumps(summary, allow_nan=False)
    series = serialize(pd.Series([1.5, np.nan], name="s"), pd.Series).summary
    assert series["head"] == [1.5, "nan"]
    assert series["name"] == "s"


def test_summaries_are_always_json() -> None:
    class BrokenRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    for value in [*JSON_VALUES.values(), Opaque(1), {1: BrokenRepr()}, Level.LOW]:
        json.dumps(serialize(value, Any).summary, allow_nan=False)


def test_importing_serialization_imports_no_heavy_library() -> None:
    script = (
        "import sys, sematic.storage.serialization, sematic.storage.artifacts\n"
        "heavy = {'numpy', 'pandas', 'pyarrow', 'cloudpickle', 'fsspec', 'torch'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
