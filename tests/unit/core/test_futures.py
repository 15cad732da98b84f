"""Calling a func builds futures; operations that need a value are refused clearly."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest

import sematic
from sematic import FunctionCallError, FutureUsageError, RetrySettings
from tests.pipelines.basic import ATTEMPTS, add, concat, evaluate, flaky, inc, pair, total


def test_calling_returns_a_future_and_runs_nothing() -> None:
    ATTEMPTS.clear()
    future = inc(1)
    assert isinstance(future, sematic.Future)
    assert future.function is inc and future.kwargs == {"x": 1}
    assert future.props.name == "inc"
    assert len(future.id) == 32 and future.id != inc(1).id
    # flaky() counts its calls in ATTEMPTS, by key: calling it, alone or on the future of
    # another call, runs nothing.
    alone = flaky("alone", 0)
    chained = flaky(flaky("inner", 0), 0)
    assert isinstance(alone, sematic.Future) and isinstance(chained, sematic.Future)
    assert ATTEMPTS == {}
    # The count is real: resolving runs each call once (the outer one's key is the inner
    # one's value).
    assert chained.resolve(sematic.SilentResolver()) == "ok after 1"
    assert ATTEMPTS == {"inner": 1, "ok after 1": 1}


def test_arguments_bind_like_python() -> None:
    assert add(1, b=2).kwargs == {"a": 1.0, "b": 2.0}
    with pytest.raises(FunctionCallError, match=r"missing required argument\(s\): 'b'"):
        add(1)
    with pytest.raises(FunctionCallError, match="unexpected keyword argument 'c'"):
        add(1, 2, c=3)
    with pytest.raises(FunctionCallError, match="multiple values for argument 'a'"):
        add(1, a=2)
    with pytest.raises(FunctionCallError, match="takes 2 positional"):
        add(1, 2, 3)


def with_default(x: int, y: int = 10) -> int:
    return x + y


def test_defaults_are_used_and_checked() -> None:
    f = sematic.func(with_default)
    assert f(1).resolve(sematic.SilentResolver()) == 11


def test_futures_inside_lists_and_dicts_are_dependencies() -> None:
    a, b = inc(1), inc(2)
    future = total([a, 3, b])
    assert [d.id for d in future.dependencies] == [a.id, b.id]
    assert future.resolve(sematic.SilentResolver()) == 2 + 3 + 3


def test_set_overrides_one_call_only() -> None:
    retry = RetrySettings(exceptions=(ValueError,), retries=1)
    future = inc(1).set(name="first", inline=False, cache=True, retry=retry, tags=["a", "b"])
    assert future.props.name == "first" and future.props.inline is False
    assert future.props.cache is True and future.props.retry is retry
    assert future.props.tags == ("a", "b")
    assert inc(2).props == inc.props
    assert inc(3).set(standalone=True).props.inline is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": ""}, "name must be a non-empty str"),
        ({"tags": "a"}, "tags must be a list of non-empty str"),
        ({"timeout_mins": "soon"}, "timeout_mins"),
        ({"inline": True, "standalone": True}, "contradict"),
    ],
)
def test_set_refuses_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(sematic.ConfigurationError, match=message):
        inc(1).set(**settings)


def test_tuple_outputs_unpack_and_index() -> None:
    number, text = pair(4)
    assert concat(number, text).resolve(sematic.SilentResolver()) == "4:4"
    assert pair(5)[1].resolve(sematic.SilentResolver()) == "5"
    assert pair(6)[-2].resolve(sematic.SilentResolver()) == 6
    with pytest.raises(FutureUsageError, match="out of range"):
        pair(1)[2]


def test_dataclass_fields_are_deferred() -> None:
    metrics = evaluate(7)
    assert add(metrics.accuracy, 1).resolve(sematic.SilentResolver()) == pytest.approx(1.7)
    assert metrics.label.resolve(sematic.SilentResolver()) == "m7"
    with pytest.raises(AttributeError, match="has no field 'f1'"):
        _ = metrics.f1
    with pytest.raises(AttributeError, match="not a dataclass"):
        _ = inc(1).real


def test_field_type_is_checked_statically() -> None:
    with pytest.raises(sematic.TypeCheckError, match="expects int"):
        inc(evaluate(1).label)


REFUSED: list[tuple[str, Callable[[sematic.Future], object]]] = [
    ("bool", bool),
    ("if", lambda f: 1 if f else 0),
    ("len", len),
    ("iterate", lambda f: list(f)),
    ("+", lambda f: f + 1),
    ("radd", lambda f: 1 + f),
    ("*", lambda f: f * 2),
    ("-x", operator.neg),
    ("<", lambda f: f < 1),
    ("==", lambda f: f == 1),
    ("!=", lambda f: f != 1),
    ("in", lambda f: 1 in f),
    ("int", int),
    ("float", float),
    ("index", lambda f: [1, 2][f]),
]


@pytest.mark.parametrize(("label", "operation"), REFUSED, ids=[r[0] for r in REFUSED])
def test_operations_that_need_a_value_explain_why(
    label: str, operation: Callable[[sematic.Future], object]
) -> None:
    with pytest.raises(FutureUsageError) as caught:
        operation(inc(1))
    message = str(caught.value)
    assert "output of inc()" in message
    assert "Sematic function" in message


def test_indexing_with_a_future_is_refused() -> None:
    with pytest.raises(FutureUsageError, match="another future"):
        pair(1)[inc(0)]


def test_futures_are_hashable_by_identity() -> None:
    a = inc(1)
    assert {a: 1}[a] == 1
