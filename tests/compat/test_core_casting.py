"""Sematic 0.41 converted numbers it could convert: ours does when nothing is lost.

A real number of another type is accepted for an ``int`` (a bool, a whole float) or a
``float`` (any real number), converted to the annotated type; a number that would lose its
value (1.5 for an int) is refused when it runs; a value of another kind (a str for an int)
is still refused when the graph is built.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import pytest

import sematic
from sematic import TypeCheckError
from sematic.core.types import check_value
from tests.compat.silent import cause_of, resolve


@sematic.func
def int_seen(x: int) -> str:
    """What the body receives for an int parameter."""
    return f"{type(x).__name__} {x}"


@sematic.func
def float_seen(x: float) -> str:
    return f"{type(x).__name__} {x}"


@sematic.func
def optional_int_seen(x: int | None) -> str:
    return f"{type(x).__name__} {x}"


@sematic.func
def number(x: Any) -> float:
    return x  # type: ignore[no-any-return]


@sematic.func
def flag(x: bool) -> bool:
    return x


@sematic.func
def text(x: str) -> str:
    return x


@sematic.func
def half(x: int) -> int:
    return x / 2  # type: ignore[return-value]


@sematic.func
def half_of_number(x: int) -> int:
    return number(x / 2)  # type: ignore[return-value]


@sematic.func
def total(xs: list[int]) -> int:
    return sum(xs)


# Concrete arguments: converted when the function is called ------------------------------


@pytest.mark.parametrize(
    ("value", "seen"),
    [
        (True, "int 1"),
        (False, "int 0"),
        (2.0, "int 2"),
        (-3.0, "int -3"),
        (Fraction(8, 2), "int 4"),
    ],
)
def test_a_whole_number_is_converted_for_an_int_parameter(value: Any, seen: str) -> None:
    future = int_seen(value)
    assert type(future.kwargs["x"]) is int
    assert resolve(future) == seen


@pytest.mark.parametrize(
    ("value", "seen"),
    [(True, "float 1.0"), (Fraction(1, 4), "float 0.25"), (3, "float 3.0")],
)
def test_any_real_number_is_converted_for_a_float_parameter(value: Any, seen: str) -> None:
    assert resolve(float_seen(value)) == seen


def test_optional_numbers_are_converted_and_none_stays_none() -> None:
    assert resolve(optional_int_seen(True)) == "int 1"
    assert resolve(optional_int_seen(5.0)) == "int 5"
    assert resolve(optional_int_seen(None)) == "NoneType None"


@pytest.mark.parametrize("value", [1.5, -0.1, math.inf, math.nan, Fraction(1, 3)])
def test_a_number_that_would_lose_its_value_is_refused(value: Any) -> None:
    with pytest.raises(TypeCheckError) as caught:
        int_seen(value)
    message = str(caught.value)
    assert message.startswith("int_seen() parameter 'x' expects int, got "), message
    assert "cannot be converted without losing its value" in message


def test_a_float_too_large_for_a_float_is_refused() -> None:
    with pytest.raises(TypeCheckError, match="out of a float's range"):
        float_seen(Fraction(10**400, 3))


@pytest.mark.parametrize(
    ("function", "value"),
    [
        (int_seen, "1"),
        (int_seen, Decimal(1)),  # not a numbers.Real: 0.41 refused it too
        (float_seen, "1.5"),
        (flag, 1),  # nothing converts to bool
        (flag, 1.0),
        (text, 1),
    ],
)
def test_values_of_another_kind_are_refused_when_the_graph_is_built(
    function: sematic.Function, value: Any
) -> None:
    with pytest.raises(TypeCheckError, match="expects "):
        function(value)


def test_items_inside_containers_are_not_converted() -> None:
    with pytest.raises(TypeCheckError, match=r"at \[1\]"):
        total([1, True])
    with pytest.raises(TypeCheckError, match=r"at \[0\]"):
        check_value([2.0], list[int], "w")


# Futures: accepted when the graph is built, their values converted when they exist ------


def test_a_float_future_feeds_an_int_parameter_when_its_value_is_whole() -> None:
    assert resolve(int_seen(number(4))) == "int 4"
    assert resolve(int_seen(flag(True))) == "int 1"


def test_a_float_future_with_a_fractional_value_fails_when_it_runs() -> None:
    future = int_seen(number(2.5))  # accepted when the graph is built
    cause = cause_of(future)
    assert isinstance(cause, TypeCheckError)
    assert str(cause).startswith("int_seen() parameter 'x' expects int, got float (2.5)")


def test_a_future_of_another_kind_is_still_refused_when_the_graph_is_built() -> None:
    with pytest.raises(TypeCheckError, match="declared to return str"):
        int_seen(text("1"))
    with pytest.raises(TypeCheckError, match="declared to return float"):
        flag(number(1))
    with pytest.raises(TypeCheckError, match="declared to return float"):
        total([number(1)])  # inside a container, types must match as they are


# Outputs: converted after the function returns ------------------------------------------


def test_a_whole_float_is_converted_for_an_int_return() -> None:
    result = resolve(half(4))
    assert result == 2 and type(result) is int


def test_a_fractional_float_fails_an_int_return() -> None:
    cause = cause_of(half(3))
    assert isinstance(cause, TypeCheckError)
    assert str(cause).startswith("half() return value expects int, got float (1.5)")


def test_a_returned_float_future_is_converted_for_an_int_return() -> None:
    result = resolve(half_of_number(6))
    assert result == 3 and type(result) is int
    cause = cause_of(half_of_number(5))
    assert isinstance(cause, TypeCheckError)
    assert str(cause).startswith("half_of_number() return value expects int, got float (2.5)")


# The static rule, directly -------------------------------------------------------------


@pytest.mark.parametrize(
    ("produced", "expected", "accepted"),
    [
        (float, int, True),
        (bool, int, True),
        (Fraction, float, True),
        (float, int | None, True),
        (float | int, int, True),
        (Literal[1.0, True], int, True),
        (int, float, True),
        (str, int, False),
        (Decimal, float, False),  # not a numbers.Real
        (float | None, int, False),  # None never becomes an int
        (float, bool, False),
        (float, int | float, True),  # compatible as it is
        (float, int | bool, False),
        (list[float], list[int], False),  # items are not converted
    ],
)
def test_which_future_types_may_convert(produced: Any, expected: Any, accepted: bool) -> None:
    from sematic.core.types import is_compatible, is_convertible

    assert is_convertible(produced, expected) is accepted
    if not accepted:
        assert not is_compatible(produced, expected)
