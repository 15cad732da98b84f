"""Sematic 0.41 programs: unpacking a tuple output and discarding some of its parts."""

from __future__ import annotations

import sematic
from sematic import FutureUsageError
from tests.compat.silent import cause_of, resolve
from tests.pipelines.basic import Metrics, evaluate, pair


@sematic.func
def second_only(x: int) -> str:
    _, text = pair(x)
    return text


@sematic.func
def first_only(x: int) -> int:
    number, _ = pair(x)
    return number


@sematic.func
def one_field(x: int) -> str:
    metrics = evaluate(x)
    _ = metrics.accuracy
    return metrics.label


@sematic.func
def unpacks_and_uses_nothing(x: int) -> int:
    _number, _text = pair(x)
    return x


@sematic.func
def returns_the_dataclass_after_reading_a_field(x: int) -> Metrics:
    metrics = evaluate(x)
    _ = metrics.label
    return metrics


def test_discarded_parts_of_an_unpacked_output_are_not_unused_futures() -> None:
    assert resolve(second_only(4)) == "4"
    assert resolve(first_only(5)) == 5
    assert resolve(one_field(3)) == "m3"
    assert resolve(returns_the_dataclass_after_reading_a_field(2)) == Metrics(0.2, "m2")


def test_a_call_whose_result_is_never_used_is_still_refused_once() -> None:
    cause = cause_of(unpacks_and_uses_nothing(1))
    assert isinstance(cause, FutureUsageError)
    message = str(cause)
    assert message.startswith("unpacks_and_uses_nothing() called pair() but never used the result:")
    assert "pair[" not in message
