"""Sematic 0.41 programs catch built-in exceptions: ours are also those exceptions."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest

import sematic
from sematic import (
    ConfigurationError,
    FunctionDefinitionError,
    FutureUsageError,
    PipelineFailedError,
)
from tests.pipelines.basic import boom, inc, leaves_unused, outer_fails


def annotated(x: int) -> int:
    return x


def missing_parameter_annotation(x) -> int:  # type: ignore[no-untyped-def]
    return 1


def variadic(*xs: int) -> int:
    return 1


def keywords(**xs: int) -> int:
    return 1


async def asynchronous(x: int) -> int:
    return x


def generator(x: int):  # type: ignore[no-untyped-def]
    yield x


class Model:
    def method(self, x: int) -> int:
        return x


def unresolvable(x: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
    return 1


# What 0.41 raised for each mistake (ValueError or TypeError); ours is both, and our own.
DEFINITION_MISTAKES: list[tuple[str, Any]] = [
    ("missing parameter annotation", missing_parameter_annotation),
    ("*args", variadic),
    ("**kwargs", keywords),
    ("async", asynchronous),
    ("generator", generator),
    ("method", Model.method),
    ("not a function", len),
    ("decorated twice", sematic.func(annotated)),
]


@pytest.mark.parametrize(
    "target", [t for _, t in DEFINITION_MISTAKES], ids=[i for i, _ in DEFINITION_MISTAKES]
)
@pytest.mark.parametrize("caught", [TypeError, ValueError, FunctionDefinitionError])
def test_decoration_mistakes_are_type_and_value_errors(target: Any, caught: type) -> None:
    with pytest.raises(caught):
        sematic.func(target)


def test_an_unresolvable_annotation_is_a_type_error_when_first_called() -> None:
    function = sematic.func(unresolvable)
    with pytest.raises(TypeError, match="cannot resolve the annotations") as caught:
        function(1)
    assert isinstance(caught.value, FunctionDefinitionError)


OPERATIONS: list[tuple[str, Callable[[sematic.Future], object]]] = [
    ("bool", bool),
    ("+", lambda f: f + 1),
    ("+=", lambda f: operator.iadd(f, 1)),
    ("*", lambda f: f * 2),
    ("/", lambda f: f / 2),
    ("==", lambda f: f == 1),
    ("<", lambda f: f < 1),
    (">=", lambda f: f >= 1),
    ("iterate", list),
]


@pytest.mark.parametrize(
    "operation", [o for _, o in OPERATIONS], ids=[label for label, _ in OPERATIONS]
)
def test_operations_on_futures_raise_not_implemented_error(
    operation: Callable[[sematic.Future], object],
) -> None:
    with pytest.raises(NotImplementedError) as caught:
        operation(inc(1))
    assert isinstance(caught.value, FutureUsageError)


def test_an_unused_future_is_a_not_implemented_error_too() -> None:
    with pytest.raises(PipelineFailedError) as caught:
        leaves_unused(1).resolve(sematic.SilentResolver())
    assert isinstance(caught.value.__cause__, NotImplementedError)


@pytest.mark.parametrize("caught", [ValueError, TypeError, ConfigurationError])
def test_setting_an_unknown_property_is_a_value_error(caught: type) -> None:
    with pytest.raises(caught, match=r"unknown setting\(s\) 'abc'.* name, inline"):
        inc(1).set(abc=1)


def test_setting_known_properties_still_works() -> None:
    future = inc(1).set(name="first", cache=True, tags=["a"])
    assert (future.props.name, future.props.cache, future.props.tags) == ("first", True, ("a",))


@pytest.mark.parametrize("future", [boom, outer_fails], ids=["direct", "nested"])
def test_a_failed_pipeline_chains_the_original_error_as_context_too(
    future: sematic.Function,
) -> None:
    with pytest.raises(PipelineFailedError) as caught:
        future(7).resolve(sematic.SilentResolver())
    error = caught.value
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "boom 7"
    assert error.__context__ is error.__cause__
