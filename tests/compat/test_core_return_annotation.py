"""Sematic 0.41 programs: a function without a return annotation returns None."""

from __future__ import annotations

import pytest

import sematic
from sematic import TypeCheckError
from tests.compat.silent import cause_of, resolve
from tests.pipelines.basic import concat

SIDE_EFFECTS: list[int] = []


@sematic.func
def log_value(x: int):  # type: ignore[no-untyped-def]  # 0.41 style on purpose
    SIDE_EFFECTS.append(x)


@sematic.func
def forgets_annotation(x: int):  # type: ignore[no-untyped-def]
    return x + 1


def test_a_function_without_return_annotation_returns_none() -> None:
    SIDE_EFFECTS.clear()
    assert log_value.output_type is type(None)
    assert resolve(log_value(3)) is None
    assert SIDE_EFFECTS == [3]


def test_returning_a_value_without_return_annotation_fails_its_output_check() -> None:
    cause = cause_of(forgets_annotation(1))
    assert isinstance(cause, TypeCheckError)
    assert str(cause).startswith("forgets_annotation() return value expects None, got int (2)")


def test_the_output_of_an_unannotated_function_feeds_none_parameters_only() -> None:
    with pytest.raises(TypeCheckError, match="declared to return None"):
        concat(log_value(1), "a")
