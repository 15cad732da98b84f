"""Type checking: concrete inputs at call time, futures statically, outputs after running."""

from __future__ import annotations

import datetime
import re
import typing
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Dict, List, Literal, Optional, Tuple, TypeVar, Union  # noqa: UP035

import pytest

import sematic
from sematic import PipelineFailedError, TypeCheckError
from sematic.core.types import check_value, describe, field_types, is_compatible
from tests.pipelines import typed_funcs as tf
from tests.pipelines.typed_funcs import (
    CALLS,
    POST_INITS,
    Animal,
    Box,
    Color,
    Counted,
    Dog,
    FrozenTag,
    Grid,
    Mode,
    Node,
    Point,
    Priced,
    Scaled,
    Segment,
    Shelf,
)

T = TypeVar("T")


def resolve(future: sematic.Future) -> Any:
    return future.resolve(sematic.SilentResolver())


def failure_of(future: sematic.Future) -> PipelineFailedError:
    """The PipelineFailedError resolving ``future`` raises."""
    with pytest.raises(PipelineFailedError) as caught:
        resolve(future)
    return caught.value


@pytest.fixture(autouse=True)
def _clear_records() -> None:
    CALLS.clear()
    POST_INITS.clear()


# Concrete inputs, checked when the function is called ----------------------------------


def test_a_wrong_input_fails_at_call_time_naming_function_parameter_and_types() -> None:
    with pytest.raises(TypeCheckError) as caught:
        tf.add("x", 1)
    message = str(caught.value)
    assert message.startswith("add() parameter 'a' expects float, got str ('x')"), message
    assert CALLS == []  # nothing ran
    assert isinstance(caught.value, TypeError)  # ordinary `except TypeError` still works


def test_the_second_parameter_is_named_too() -> None:
    with pytest.raises(TypeCheckError, match=r"^add\(\) parameter 'b' expects float, got bytes"):
        tf.add(1.0, b"1")


def test_keyword_arguments_are_checked() -> None:
    with pytest.raises(TypeCheckError, match=r"add\(\) parameter 'b' expects float, got str"):
        tf.add(a=1.0, b="2")


def test_an_int_is_cast_to_float_for_a_float_parameter() -> None:
    future = tf.type_name(3)
    assert future.kwargs["x"] == 3.0 and type(future.kwargs["x"]) is float
    assert resolve(future) == "float"
    assert resolve(tf.type_name_optional(3)) == "float"
    assert resolve(tf.type_name_optional(None)) == "NoneType"
    assert resolve(tf.add(1, 2)) == 3.0


@pytest.mark.parametrize(
    ("function", "value", "expected", "actual"),
    [
        (tf.takes_bool, 1, "bool", "int"),
        (tf.takes_bool, 0, "bool", "int"),
        (tf.takes_int, 1.5, "int", "float"),  # a bool or a whole float converts: see compat
        (tf.takes_int, "1", "int", "str"),
        (tf.type_name, "1.0", "float", "str"),
        (tf.takes_str, 1, "str", "int"),
    ],
)
def test_no_conversions_that_lose_or_invent_a_value(
    function: sematic.Function, value: Any, expected: str, actual: str
) -> None:
    with pytest.raises(TypeCheckError, match=rf"expects {expected}, got {actual} \("):
        function(value)
    assert CALLS == []


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(TypeCheckError) as caught:
        tf.takes_int("z" * 500)
    message = str(caught.value)
    assert "z" * 50 in message and "z" * 100 not in message
    assert "..." in message


# Every supported annotation: accepted and rejected values ------------------------------

ANNOTATION_CASES: list[tuple[str, Any, Any, str]] = [
    # (name of the echo_/emit_ functions, accepted value, rejected value, text in the error)
    ("none", None, 0, "expects None, got int"),
    ("bool", True, 1, "expects bool, got int"),
    ("int", 3, 3.5, "expects int, got float"),
    ("float", 2.5, "2.5", "expects float, got str"),
    ("str", "s", b"s", "expects str, got bytes"),
    ("bytes", b"b", "b", "expects bytes, got str"),
    (
        "datetime",
        datetime.datetime(2024, 1, 2, 3, 4),
        datetime.date(2024, 1, 2),
        "expects datetime, got date",
    ),
    (
        "date",
        datetime.date(2024, 1, 2),
        datetime.datetime(2024, 1, 2, 3, 4),  # a datetime is NOT a date here
        "expects date, got datetime",
    ),
    ("enum", Color.RED, "red", "expects Color, got str"),
    ("dataclass", Point(1.0, 2.0), Point("1", 2.0), "expects Point, got Point"),
    (
        "nested_dataclass",
        Segment(Point(0.0, 0.0), Point(1.0, 1.0), "diagonal"),
        Segment(Point(0.0, 0.0), Point(1.0, "one"), "diagonal"),
        "at end.y",
    ),
    ("frozen_dataclass", FrozenTag("tag", 3), FrozenTag("tag", "heavy"), "at weight"),
    ("generic_dataclass", Box(1), Box("one"), "expects Box[int], got Box"),
    ("list", [1, 2], [1, "two"], "at [1]"),
    ("typing_list", [1, 2], (1, 2), "expects list[int], got tuple"),
    ("tuple", (1, "a"), (1, 2), "expects tuple[int, str], got tuple"),
    ("typing_tuple", (1, "a"), (1,), "expects tuple[int, str], got tuple"),
    ("variadic_tuple", (1, 2, 3), (1, "2"), "expects tuple[int, ...], got tuple"),
    ("dict", {"a": 1}, {"a": "1"}, "expects dict[str, int], got dict"),
    ("typing_dict", {"a": 1}, {1: 1}, "expects dict[str, int], got dict"),
    ("set", {1, 2}, {"1"}, "expects set[int], got set"),
    ("optional", None, "1", "expects int | None, got str"),
    ("pipe_none", 5, 5.5, "expects int | None, got float"),
    ("union", "a", 1.5, "expects int | str, got float"),
    ("literal", "train", "valid", "expects Literal['train', 'test'], got str"),
    ("user_class", Dog(), "dog", "expects Animal, got str"),
    ("custom_class", Grid([1.0, 2.0]), [1.0, 2.0], "expects Grid, got list"),
]
ANNOTATION_IDS = [case[0] for case in ANNOTATION_CASES]


@pytest.mark.parametrize(("name", "good", "bad", "text"), ANNOTATION_CASES, ids=ANNOTATION_IDS)
def test_accepted_input_runs_and_round_trips(name: str, good: Any, bad: Any, text: str) -> None:
    echo: sematic.Function = getattr(tf, f"echo_{name}")
    result = resolve(echo(good))
    assert result is good


@pytest.mark.parametrize(("name", "good", "bad", "text"), ANNOTATION_CASES, ids=ANNOTATION_IDS)
def test_rejected_input_fails_at_call_time(name: str, good: Any, bad: Any, text: str) -> None:
    echo: sematic.Function = getattr(tf, f"echo_{name}")
    with pytest.raises(TypeCheckError) as caught:
        echo(bad)
    message = str(caught.value)
    assert message.startswith(f"echo_{name}() parameter 'value' expects "), message
    assert text in message


@pytest.mark.parametrize(("name", "good", "bad", "text"), ANNOTATION_CASES, ids=ANNOTATION_IDS)
def test_accepted_output_passes(name: str, good: Any, bad: Any, text: str) -> None:
    emit: sematic.Function = getattr(tf, f"emit_{name}")
    assert resolve(emit(good)) is good


@pytest.mark.parametrize(("name", "good", "bad", "text"), ANNOTATION_CASES, ids=ANNOTATION_IDS)
def test_rejected_output_fails_the_pipeline(name: str, good: Any, bad: Any, text: str) -> None:
    emit: sematic.Function = getattr(tf, f"emit_{name}")
    future = emit(bad)  # the parameter takes Any: only the output check can refuse it
    error = failure_of(future)
    assert error.function_name == f"emit_{name}"
    cause = error.__cause__
    assert isinstance(cause, TypeCheckError)
    assert str(cause).startswith(f"emit_{name}() return value expects "), str(cause)
    assert text in str(cause)


@pytest.mark.parametrize(
    "value",
    [None, 0, "text", [1, "mixed"], object(), Grid([1.0]), Dog()],
    ids=["none", "int", "str", "mixed-list", "object", "grid", "dog"],
)
def test_any_accepts_everything(value: Any) -> None:
    assert resolve(tf.echo_any(value)) is value


def test_the_custom_class_is_checked_without_truth_value_equality_or_hash() -> None:
    grid = Grid([1.0, 2.0])
    with pytest.raises(ValueError, match="ambiguous"):
        bool(grid)
    assert resolve(tf.echo_custom_class(grid)) is grid
    assert check_value(grid, Optional[Grid], "where") is grid  # noqa: UP007
    grids = [grid, grid]
    assert check_value(grids, list[Grid], "where") is grids
    with pytest.raises(TypeCheckError, match=r"at \[1\]"):
        check_value([grid, 1], list[Grid], "where")


def test_user_class_takes_subclass_instances_but_not_base_instances() -> None:
    assert resolve(tf.takes_animal(Dog())) == "Dog"
    assert resolve(tf.takes_animal(Animal())) == "Animal"
    with pytest.raises(
        TypeCheckError, match=r"takes_dog\(\) parameter 'dog' expects Dog, got Animal"
    ):
        tf.takes_dog(Animal())


# Deep checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "value", "where"),
    [
        (list[int], [1, 2, "three"], "at [2]"),
        (List[int], ["one"], "at [0]"),  # noqa: UP006
        (list[list[int]], [[1], [2, "x"]], "at [1][1]"),
        (dict[str, list[int]], {"k": [1, "x"]}, "at k[1]"),
        (tuple[int, str], (1, 2), "at [1]"),
        (tuple[int, ...], (1, 2, "3"), "at [2]"),
        (list[Point], [Point(1.0, 2.0), Point(1.0, "2")], "at [1].y"),
        (Segment, Segment(Point(0.0, 0.0), Point("a", 0.0), "s"), "at end.x"),
        (Segment, Segment(Point(0.0, 0.0), Point(1.0, 0.0), 3), "at label"),
        (Optional[Point], Point(1.0, None), "at y"),  # noqa: UP007
        (Box[list[int]], Box([1, "2"]), "at item[1]"),
        (Shelf[int], Shelf([1, "2"]), "at items[1]"),
        (Shelf[int], Shelf([1, 2], "label"), "at label"),
        (Mode, Mode(True), "at level"),  # type: ignore[arg-type]
        (Mode, Mode(3), "at level"),  # type: ignore[arg-type]
    ],
)
def test_deep_checks_say_where(hint: Any, value: Any, where: str) -> None:
    with pytest.raises(TypeCheckError) as caught:
        check_value(value, hint, "f() parameter 'p'")
    message = str(caught.value)
    assert message.startswith(f"f() parameter 'p' expects {describe(hint)}, got "), message
    assert where in message


def test_deep_check_at_call_time_names_the_index() -> None:
    with pytest.raises(TypeCheckError, match=r"total\(\) parameter 'xs' .* at \[1\]"):
        tf.total([1, "two", 3])


def test_a_dataclass_field_holding_the_wrong_type_is_rejected() -> None:
    point = Point(1.0, 2.0)
    point.y = "two"  # type: ignore[assignment]
    with pytest.raises(TypeCheckError, match=r"echo_dataclass\(\) parameter 'value' .* at y"):
        tf.echo_dataclass(point)
    with pytest.raises(TypeCheckError, match=r"expects Point, got dict"):
        tf.echo_dataclass({"x": 1.0, "y": 2.0})
    with pytest.raises(TypeCheckError, match=r"expects Point, got Segment"):
        tf.echo_dataclass(Segment(point, point, "s"))


def test_a_frozen_dataclass_holding_the_wrong_type_is_rejected() -> None:
    tag = FrozenTag("a", 1)
    object.__setattr__(tag, "weight", 1.5)
    with pytest.raises(TypeCheckError, match="at weight"):
        tf.echo_frozen_dataclass(tag)


def test_generic_dataclasses_check_their_type_argument() -> None:
    assert check_value(Box("any"), Box, "w").item == "any"  # unparametrized: T is anything
    assert check_value(Box([1]), Box[list[int]], "w").item == [1]
    assert check_value(Shelf([1, 2], None), Shelf[int], "w").items == [1, 2]
    with pytest.raises(TypeCheckError, match=r"expects Box\[int\], got Point"):
        check_value(Point(1.0, 1.0), Box[int], "w")


def test_checking_a_dataclass_runs_no_user_code() -> None:
    counted = Counted(1)
    assert POST_INITS == [1]
    assert check_value(counted, Counted, "w") is counted
    assert check_value(counted, Optional[Counted], "w") is counted  # noqa: UP007
    assert check_value([counted], list[Counted], "w") == [counted]
    assert POST_INITS == [1]


def test_a_dataclass_with_an_init_var_is_accepted() -> None:
    scaled = Scaled(2, factor=3)
    assert scaled.value == 6
    assert check_value(scaled, Scaled, "w") is scaled
    broken = Scaled(2, factor=1)
    broken.value = "two"  # type: ignore[assignment]
    with pytest.raises(TypeCheckError, match="at value"):
        check_value(broken, Scaled, "w")


def test_a_field_annotation_unresolvable_at_run_time_falls_back_to_isinstance() -> None:
    priced = Priced(Decimal("1.5"))
    assert check_value(priced, Priced, "w") is priced
    with pytest.raises(TypeCheckError, match="expects Priced, got Point"):
        check_value(Point(1.0, 2.0), Priced, "w")


def test_recursive_dataclasses_are_checked_at_any_depth() -> None:
    tree = Node(1, [Node(2, [Node(3, [])]), Node(4, [])])
    assert check_value(tree, Node, "w") is tree
    tree.children[0].children[0].value = "deep"  # type: ignore[assignment]
    with pytest.raises(TypeCheckError, match=r"at children\[0\]\.children\[0\]\.value"):
        check_value(tree, Node, "w")
    tree.children[0].children[0] = 3  # type: ignore[call-overload]
    with pytest.raises(TypeCheckError, match=r"instance of Node at children\[0\]\.children\[0\]"):
        check_value(tree, Node, "w")


@pytest.mark.parametrize(
    ("hint", "value", "accepted"),
    [
        (Literal[1, 2], 1, True),
        (Literal[1, 2], True, False),  # 1 == True, but a bool is not an int
        (Literal[0], False, False),
        (Literal[True], True, True),
        (Literal[True], 1, False),
        (Literal[1, True], True, True),
        (Literal[1, True], 1, True),
        (list[Literal[True]], [True, 1], False),
        (Literal[Color.RED], Color.RED, True),
        (Literal[Color.RED], Color.BLUE, False),
        (Literal[Color.RED], "red", False),
        (Literal["a"], "a", True),
        (Literal["a"], "b", False),
        (Optional[Literal["a"]], None, True),  # noqa: UP007
    ],
)
def test_literals(hint: Any, value: Any, accepted: bool) -> None:
    if accepted:
        assert check_value(value, hint, "w") is value
    else:
        with pytest.raises(TypeCheckError, match=r"Input should be"):
            check_value(value, hint, "w")


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (list[float], [1, 2.5]),
        (dict[str, float], {"a": 1}),
        (Optional[float], 1),  # noqa: UP007
        (Union[float, str], 1),  # noqa: UP007
    ],
)
def test_ints_are_accepted_where_floats_are_expected(hint: Any, value: Any) -> None:
    assert check_value(value, hint, "w") == value


def test_top_level_ints_are_cast_to_float() -> None:
    for hint in (float, Optional[float], float | None, Union[float, str]):  # noqa: UP007
        result = check_value(2, hint, "w")
        assert type(result) is float and result == 2.0
    assert type(check_value(2, Union[float, int], "w")) is int  # noqa: UP007 - int is a member


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (list[float], [1.0, True]),
        (list[int], [1, True]),
        (Optional[bool], 1),  # noqa: UP007
        (dict[str, bool], {"a": 1}),
        (set[int], frozenset({1})),
        (list[int], (1, 2)),
        (tuple[int, ...], [1, 2]),
        (bytes, bytearray(b"x")),
        (dict[str, int], [("a", 1)]),
        (tuple[int, str], (1, "a", "extra")),
    ],
)
def test_strictness(hint: Any, value: Any) -> None:
    with pytest.raises(TypeCheckError):
        check_value(value, hint, "w")


# Futures, checked against their producer's declared type when the graph is built -------


def test_a_str_future_into_an_int_parameter_fails_at_call_time() -> None:
    with pytest.raises(TypeCheckError) as caught:
        tf.takes_int(tf.make_str())
    assert str(caught.value) == (
        "takes_int() parameter 'x' expects int, but receives the output of make_str(), "
        "declared to return str"
    )
    assert CALLS == []  # nothing ran


@pytest.mark.parametrize(
    ("consumer", "producer", "expected"),
    [
        (tf.takes_int, tf.make_str, "int"),
        (tf.takes_bool, tf.make_int, "bool"),
        (tf.takes_str, tf.make_float, "str"),
        (tf.takes_int, tf.make_optional_int, "int"),
        (tf.takes_dog, tf.make_animal, "Dog"),
        (tf.takes_str, tf.make_int_list, "str"),
        (tf.total, tf.make_str, "list[int]"),
        (tf.takes_date, tf.make_datetime, "date"),
    ],
)
def test_incompatible_futures_are_refused(
    consumer: sematic.Function, producer: sematic.Function, expected: str
) -> None:
    produced = describe(producer.output_type)
    with pytest.raises(TypeCheckError) as caught:
        consumer(producer())
    message = str(caught.value)
    assert message.startswith(f"{consumer.qualname}() parameter "), message
    assert f"expects {expected}, but receives the output of {producer.qualname}()" in message
    assert message.endswith(f"declared to return {produced}")


@pytest.mark.parametrize(
    ("consumer", "producer", "result"),
    [
        (tf.type_name, tf.make_int, "float"),  # int future into float: cast when it runs
        (tf.takes_int, tf.make_bool, 1),  # bool future into int: converted when it runs
        (tf.total_floats, tf.make_int_list, 3.0),  # list[int] into list[float]
        (tf.takes_animal, tf.make_dog, "Dog"),  # subclass into base class
        (tf.takes_optional_int, tf.make_int, "7"),  # X into X | None
        (tf.takes_typing_optional_int, tf.make_optional_int, "3"),
        (tf.takes_any, tf.make_str, "'text'"),  # Any parameter
        (tf.takes_any, tf.make_optional_int, "3"),
    ],
)
def test_compatible_futures_pass_and_run(
    consumer: sematic.Function, producer: sematic.Function, result: Any
) -> None:
    assert resolve(consumer(producer())) == result


def test_an_any_future_is_accepted_then_its_value_is_checked_when_it_exists() -> None:
    assert resolve(tf.takes_int(tf.make_any(4))) == 4
    CALLS.clear()
    future = tf.takes_int(tf.make_any("four"))  # accepted when the graph is built
    error = failure_of(future)
    assert error.function_name == "takes_int"
    assert isinstance(error.__cause__, TypeCheckError)
    assert "takes_int() parameter 'x' expects int, got str ('four')" in str(error.__cause__)
    assert CALLS == []  # takes_int never ran


def test_futures_of_dataclass_fields_tuple_items_and_generic_fields_are_typed() -> None:
    segment = tf.make_segment()
    assert resolve(tf.takes_str(segment.label)) == "diagonal"
    with pytest.raises(
        TypeCheckError, match=r"expects int, but receives .* declared to return str"
    ):
        tf.takes_int(tf.make_segment().label)
    number, text = tf.make_pair()
    assert resolve(tf.takes_int(number)) == 4
    with pytest.raises(TypeCheckError, match="declared to return str"):
        tf.takes_int(tf.make_pair()[1])
    assert resolve(tf.takes_int(tf.make_int_box().item)) == 5
    with pytest.raises(TypeCheckError, match="declared to return int"):
        tf.takes_str(tf.make_int_box().item)
    assert resolve(tf.total(tf.make_int_shelf().items)) == 3
    with pytest.raises(TypeCheckError, match=r"declared to return list\[int\]"):
        tf.takes_str(tf.make_int_shelf().items)


def test_field_types_resolve_type_variables_inside_annotations() -> None:
    assert field_types(Box[int]) == {"item": int}
    assert field_types(Shelf[str]) == {"items": list[str], "label": Optional[str]}  # noqa: UP007
    assert field_types(Shelf) == {"items": list[tf.T], "label": Optional[tf.T]}  # noqa: UP007
    assert field_types(Point) == {"x": float, "y": float}
    assert field_types(int) is None
    assert field_types(list[int]) is None


# Futures inside lists, tuples and dicts -------------------------------------------------


def test_lists_mixing_futures_and_values_pass_and_run() -> None:
    assert resolve(tf.total([tf.make_int(), 2, tf.make_int()])) == 16
    assert resolve(tf.total_floats([tf.make_int(), 0.5])) == 7.5
    assert resolve(tf.total_nested([[tf.make_int(), 1], [2]])) == 10
    assert resolve(tf.join_pair((tf.make_int(), tf.make_str()))) == "7:text"
    assert resolve(tf.sum_values({"a": tf.make_int(), "b": 1})) == 8
    assert resolve(tf.sum_variadic((tf.make_int(), 1, tf.make_int()))) == 15


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: tf.total([1, tf.make_str()]),
            r"^total\(\) parameter 'xs' item \[1\] expects int, but receives the output of "
            r"make_str\(\), declared to return str$",
        ),
        (
            lambda: tf.total([tf.make_int(), "two"]),
            r"^total\(\) parameter 'xs' item \[1\] expects int, got str \('two'\)",
        ),
        (
            lambda: tf.total([tf.make_int(), True]),
            r"^total\(\) parameter 'xs' item \[1\] expects int, got bool",
        ),
        (
            lambda: tf.total_nested([[1], [tf.make_int(), tf.make_str()]]),
            r"^total_nested\(\) parameter 'xss' item \[1\] item \[1\] expects int, but "
            r"receives the output of make_str\(\)",
        ),
        (
            lambda: tf.join_pair((tf.make_str(), tf.make_str())),
            r"^join_pair\(\) parameter 'pair' item \[0\] expects int, but receives the output "
            r"of make_str\(\)",
        ),
        (
            lambda: tf.join_pair((tf.make_int(), 2)),
            r"^join_pair\(\) parameter 'pair' item \[1\] expects str, got int",
        ),
        (
            lambda: tf.sum_values({"a": 1, "b": tf.make_str()}),
            r"^sum_values\(\) parameter 'd' item \['b'\] expects int, but receives the output "
            r"of make_str\(\)",
        ),
        (
            lambda: tf.sum_variadic((tf.make_int(), tf.make_bool())),
            r"^sum_variadic\(\) parameter 't' item \[1\] expects int, but receives the output "
            r"of make_bool\(\), declared to return bool",
        ),
        (
            lambda: tf.total((tf.make_int(),)),
            r"^total\(\) parameter 'xs' expects list\[int\], got a tuple of futures$",
        ),
        (
            lambda: tf.join_pair([tf.make_int(), "a"]),
            r"^join_pair\(\) parameter 'pair' expects tuple\[int, str\], got a list of futures$",
        ),
        (
            lambda: tf.takes_int([tf.make_int()]),
            r"^takes_int\(\) parameter 'x' expects int, got a list of futures$",
        ),
    ],
)
def test_containers_of_futures_are_checked_item_by_item_at_call_time(
    call: Callable[[], sematic.Future], pattern: str
) -> None:
    with pytest.raises(TypeCheckError, match=pattern):
        call()
    assert CALLS == []


def test_a_wrong_dict_key_beside_futures_is_refused_at_the_latest_when_it_runs() -> None:
    with pytest.raises((TypeCheckError, PipelineFailedError)) as caught:
        resolve(tf.sum_values({1: tf.make_int()}))
    error = caught.value
    cause = error.__cause__ if isinstance(error, PipelineFailedError) else error
    assert isinstance(cause, TypeCheckError)
    assert "sum_values() parameter 'd'" in str(cause)
    assert "takes_int" not in CALLS


def test_a_list_of_futures_into_an_optional_list_parameter() -> None:
    assert resolve(tf.total_or_none([tf.make_int(), 1])) == 8


def test_a_list_of_futures_into_an_any_parameter() -> None:
    assert resolve(tf.length_of_any([tf.make_int(), 1])) == 2


# Outputs, checked after the function runs -----------------------------------------------


def test_a_wrong_output_fails_the_pipeline_with_the_type_error_as_cause() -> None:
    error = failure_of(tf.int_returns_str(5))
    assert error.function_name == "int_returns_str"
    assert isinstance(error.__cause__, TypeCheckError)
    assert str(error.__cause__).startswith(
        "int_returns_str() return value expects int, got str ('5')"
    )
    assert "int_returns_str" in str(error)


@pytest.mark.parametrize(
    ("future_factory", "function_name", "pattern"),
    [
        (
            lambda: tf.list_returns_bad_item(3),
            "list_returns_bad_item",
            r"return value expects list\[int\], got list .* at \[1\]",
        ),
        (lambda: tf.none_returns_int(3), "none_returns_int", r"return value expects None"),
        (
            lambda: tf.int_returns_str_future(1),
            "int_returns_str_future",
            r"declared to return int but returns the output of make_str\(\), declared as str",
        ),
        (
            lambda: tf.str_list_returns_int_futures(1),
            "str_list_returns_int_futures",
            r"expects str, but receives the output of make_int\(\), declared to return int",
        ),
        (
            lambda: tf.int_returns_any_future("x"),
            "int_returns_any_future",
            r"int_returns_any_future\(\) return value expects int, got str \('x'\)",
        ),
    ],
)
def test_wrong_outputs(
    future_factory: Callable[[], sematic.Future], function_name: str, pattern: str
) -> None:
    error = failure_of(future_factory())
    assert error.function_name == function_name
    assert isinstance(error.__cause__, TypeCheckError)
    assert re.search(pattern, str(error.__cause__)), str(error.__cause__)


def test_right_outputs() -> None:
    result = resolve(tf.float_returns_int(2))
    assert result == 2.0 and type(result) is float  # an int output is cast for -> float
    assert resolve(tf.int_returns_any_future(6)) == 6


# check_value, is_compatible and describe directly ---------------------------------------


def test_check_value_returns_the_value_itself() -> None:
    values: list[tuple[Any, Any]] = [
        ([1, 2], list[int]),
        ({"a": [1]}, dict[str, list[int]]),
        (Point(1.0, 2.0), Point),
        ((1, "a"), tuple[int, str]),
    ]
    for value, hint in values:
        assert check_value(value, hint, "w") is value


def test_sequence_annotations_check_items() -> None:
    assert check_value((1, 2), Sequence[int], "w") == (1, 2)
    with pytest.raises(TypeCheckError, match=r"at \[1\]"):
        check_value([1, "2"], Sequence[int], "w")


class Base:
    pass


class Derived(Base):
    pass


@pytest.mark.parametrize(
    ("produced", "expected", "compatible"),
    [
        (int, int, True),
        (int, float, True),
        (float, int, False),
        (bool, int, False),
        (bool, float, False),
        (int, bool, False),
        (str, int, False),
        (type(None), None, True),
        (None, type(None), True),
        (None, int, False),
        (None, Optional[int], True),  # noqa: UP007
        (int, Optional[int], True),  # noqa: UP007
        (int, int | None, True),
        (Optional[int], int, False),  # noqa: UP007
        (int | None, Optional[int], True),  # noqa: UP007
        (int | str, int, False),
        (int | str, str | int | None, True),
        (Any, int, True),
        (int, Any, True),
        (Any, list[int], True),
        (T, int, True),
        (int, T, True),
        (Derived, Base, True),
        (Base, Derived, False),
        (Derived, object, True),
        (list[int], list[float], True),
        (list[int], list[str], False),
        (list[bool], list[int], False),
        (List[int], list[float], True),  # noqa: UP006
        (list, list[int], True),
        (list[int], list, True),
        (list[int], Sequence[int], True),
        (list[int], tuple[int, ...], False),
        (list[int | None], list[int], False),
        (set[int], set[float], True),
        (set[int], frozenset[int], False),
        (tuple[int, str], tuple[int, str], True),
        (Tuple[int, str], tuple[int, str], True),  # noqa: UP006
        (tuple[int, str], tuple[int, ...], False),
        (tuple[int, int], tuple[int, ...], True),
        (tuple[int, ...], tuple[int, int], True),  # cannot tell: checked when it runs
        (tuple[int], tuple[int, str], False),
        (tuple[int, str], tuple[str, int], False),
        (dict[str, int], dict[str, float], True),
        (dict[str, int], Dict[str, int], True),  # noqa: UP006
        (dict[str, int], dict[int, int], False),
        (dict, dict[str, int], True),
        (Box[int], Box[float], True),
        (Box[int], Box[str], False),
        (Box[int], Box, True),
        (Literal["a"], str, True),
        (Literal["a", "b"], str | None, True),
        (Literal[1, "a"], int | str, True),
        (Literal[1, "a"], int, False),
        (Literal[True], int, False),
        (str, Literal["a"], True),  # cannot tell: checked when it runs
        (int, Literal["a"], False),
        (datetime.datetime, datetime.datetime, True),
        (datetime.datetime, datetime.date, False),  # a datetime is not a date here
        (datetime.datetime, datetime.date | None, False),
        (datetime.date, datetime.datetime, False),
        (Color, Color, True),
        (Color, str, False),
        (Point, Point, True),
        (Segment, Point, False),
    ],
)
def test_is_compatible(produced: Any, expected: Any, compatible: bool) -> None:
    assert is_compatible(produced, expected) is compatible


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        (None, "None"),
        (type(None), "None"),
        (Any, "Any"),
        (int, "int"),
        (float, "float"),
        (bytes, "bytes"),
        (datetime.date, "date"),
        (datetime.datetime, "datetime"),
        (Color, "Color"),
        (Point, "Point"),
        (Box[int], "Box[int]"),
        (Box, "Box"),
        (list[int], "list[int]"),
        (List[int], "list[int]"),  # noqa: UP006
        (List, "list"),  # noqa: UP006
        (list, "list"),
        (dict[str, list[int]], "dict[str, list[int]]"),
        (Dict[str, int], "dict[str, int]"),  # noqa: UP006
        (tuple[int, str], "tuple[int, str]"),
        (Tuple[int, str], "tuple[int, str]"),  # noqa: UP006
        (tuple[int, ...], "tuple[int, ...]"),
        (tuple[()], "tuple[()]"),
        (Tuple, "tuple"),  # noqa: UP006
        (set[int], "set[int]"),
        (Optional[int], "int | None"),  # noqa: UP007
        (int | None, "int | None"),
        (Union[int, str], "int | str"),  # noqa: UP007
        (Optional[list[int]], "list[int] | None"),  # noqa: UP007
        (Literal["a", "b"], "Literal['a', 'b']"),
        (Literal[1], "Literal[1]"),
        (Sequence[int], "Sequence[int]"),
        (typing.Callable[[int, str], bool], "Callable[[int, str], bool]"),
        (Callable[..., int], "Callable[..., int]"),
        (Animal, "Animal"),
    ],
)
def test_describe(hint: Any, text: str) -> None:
    assert describe(hint) == text
