"""Interrupting a call from another thread: at most once, only while it runs, never late."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sematic.core.errors import FunctionTimeoutError
from sematic.core.timeouts import Interruptible, call_with_timeout


class StopError(Exception):
    pass


def _spin(started: threading.Event) -> Callable[[], None]:
    def spin() -> None:
        started.set()
        count = 0
        while True:
            count += 1

    return spin


def _interrupt_when(started: threading.Event, scope: Interruptible, error: BaseException) -> None:
    def interrupt() -> None:
        started.wait(10)
        scope.interrupt(error)

    threading.Thread(target=interrupt, daemon=True).start()


def _calls_run_clean() -> None:
    """No exception is left waiting for this thread: many calls and a loop run through."""
    total = 0
    for i in range(20_000):
        total += abs(-i)
    time.sleep(0.1)
    assert total == sum(range(20_000))


def test_an_interrupt_stops_a_python_loop_from_another_thread() -> None:
    scope, started = Interruptible(), threading.Event()
    _interrupt_when(started, scope, StopError("enough"))
    with pytest.raises(StopError, match="enough"):
        scope.run(_spin(started))
    _calls_run_clean()


def test_an_interrupt_before_the_call_starts_makes_run_raise_without_calling() -> None:
    scope = Interruptible()
    assert scope.interrupt(StopError("early"))
    calls: list[int] = []
    with pytest.raises(StopError, match="early"):
        scope.run(lambda: calls.append(1))
    assert calls == []
    with pytest.raises(RuntimeError, match="one call only"):
        scope.run(lambda: None)


def test_an_interrupt_after_the_call_returned_does_nothing() -> None:
    scope = Interruptible()
    assert scope.run(lambda: 42) == 42
    assert not scope.interrupt(StopError("late"))
    _calls_run_clean()


def test_a_call_that_swallows_the_interrupt_still_raises_and_leaves_nothing_waiting() -> None:
    scope, started = Interruptible(), threading.Event()

    def stubborn() -> str:
        started.set()
        count = 0
        try:
            while True:
                count += 1
        except BaseException:  # noqa: BLE001 - what a careless user function does
            return "swallowed"

    _interrupt_when(started, scope, StopError("anyway"))
    with pytest.raises(StopError, match="anyway"):
        scope.run(stubborn)
    assert not scope.interrupt(StopError("twice"))
    _calls_run_clean()


def test_an_outer_interrupt_passes_through_an_inner_interruptible() -> None:
    outer, inner, started = Interruptible(), Interruptible(), threading.Event()
    _interrupt_when(started, outer, StopError("outer"))
    with pytest.raises(StopError, match="outer"):
        outer.run(lambda: inner.run(_spin(started)))
    assert not inner.interrupt(StopError("inner"))  # it finished, by the outer's exception
    _calls_run_clean()


def test_a_timed_call_blocked_in_c_fails_at_once_and_is_stopped_when_the_call_returns() -> None:
    returned = threading.Event()

    def blocked() -> None:
        time.sleep(1.0)
        returned.set()

    start = time.monotonic()
    with pytest.raises(FunctionTimeoutError, match="timeout_mins"):
        call_with_timeout(blocked, 0.1, "blocked")
    assert time.monotonic() - start < 0.8
    time.sleep(1.5)
    assert not returned.is_set()
    assert not any(t.name == "sematic-blocked" for t in threading.enumerate())
    _calls_run_clean()


def test_a_caller_stopped_while_it_waits_stops_its_timed_call_too() -> None:
    scope, started = Interruptible(), threading.Event()
    _interrupt_when(started, scope, StopError("cancel"))
    start = time.monotonic()
    with pytest.raises(StopError, match="cancel"):
        scope.run(lambda: call_with_timeout(_spin(started), 60, "spinner"))
    assert time.monotonic() - start < 5
    deadline = time.monotonic() + 5
    while any(t.name == "sematic-spinner" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the timed call was not stopped"
        time.sleep(0.02)
    _calls_run_clean()


def test_a_timed_call_that_finishes_in_time_returns_its_value_or_raises_its_error() -> None:
    assert call_with_timeout(lambda: 7, 5, "quick") == 7

    def fails() -> None:
        raise StopError("own")

    with pytest.raises(StopError, match="own"):
        call_with_timeout(fails, 5, "fails")
