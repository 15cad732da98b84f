"""SilentResolver runs pipelines in this process: values, nesting, failures, retries."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import sematic
from sematic import (
    FunctionTimeoutError,
    FutureUsageError,
    NotInRunError,
    PipelineFailedError,
    SilentResolver,
    SilentRunner,
    TypeCheckError,
)
from tests.pipelines.basic import (
    ATTEMPTS,
    countdown,
    fan_out,
    flaky,
    inc,
    leaves_unused,
    leaves_unused_nested,
    make_list,
    outer_fails,
    pipeline,
    returns_wrong_future,
    returns_wrong_type,
    slow,
    whoami,
    whoami_pipeline,
    wrong_error,
)


def test_seed_snippet_verbatim() -> None:
    assert pipeline(1, 2).resolve(SilentResolver()) == 5.0


def test_resolver_spellings() -> None:
    assert SilentResolver().resolve(pipeline(1, 2)) == 5.0
    assert SilentRunner().run(pipeline(1, 2)) == 5.0


def test_nested_runs_grow_the_graph() -> None:
    assert countdown(25).resolve(SilentResolver()) == 25
    assert fan_out(50).resolve(SilentResolver()) == sum(range(1, 51))


def test_returning_a_list_of_futures_collects_them() -> None:
    assert make_list(4).resolve(SilentResolver()) == [1, 2, 3, 4]


def test_deep_chains_do_not_hit_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() * 3
    future = inc(0)
    for _ in range(depth - 1):
        future = inc(future)
    assert future.resolve(SilentResolver()) == depth
    assert countdown(depth).resolve(SilentResolver()) == depth


def test_a_nested_failure_names_the_function_and_chains_the_cause() -> None:
    with pytest.raises(PipelineFailedError) as caught:
        outer_fails(3).resolve(SilentResolver())
    error = caught.value
    assert error.function_name == "boom"
    assert "boom() raised ValueError: boom 3" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert error.__cause__.__traceback__ is not None


def test_retries_by_exception_type() -> None:
    ATTEMPTS.clear()
    assert flaky("twice", 2).resolve(SilentResolver()) == "ok after 3"
    with pytest.raises(PipelineFailedError) as caught:
        flaky("thrice", 3).resolve(SilentResolver())
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert ATTEMPTS["thrice"] == 3  # one attempt + two retries
    with pytest.raises(PipelineFailedError):
        wrong_error("other").resolve(SilentResolver())
    assert ATTEMPTS["other"] == 1  # KeyError is not in the retry list


def _threads_left(before: set[threading.Thread], timeout: float = 10.0) -> list[str]:
    """The threads started since ``before`` that still run after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return [t.name for t in left]
        time.sleep(0.02)


def _assert_timed_out(error: PipelineFailedError) -> None:
    assert isinstance(error.__cause__, FunctionTimeoutError), repr(error.__cause__)
    assert "slow() ran longer than its timeout_mins=0.01" in str(error.__cause__)


def test_timeouts_work_from_the_main_thread_and_from_others() -> None:
    # slow(60) would run for a minute: its helper thread must be stopped long before.
    before = set(threading.enumerate())
    with pytest.raises(PipelineFailedError) as caught:
        slow(60).resolve(SilentResolver())
    _assert_timed_out(caught.value)
    assert _threads_left(before) == []
    assert slow(0.05).resolve(SilentResolver()) == 0.05

    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(lambda: slow(0.01).resolve(SilentResolver())).result()
        assert outcome == 0.01
        before = set(threading.enumerate())  # the pool's thread included
        with pytest.raises(PipelineFailedError) as caught:
            pool.submit(lambda: slow(60).resolve(SilentResolver())).result(timeout=60)
        _assert_timed_out(caught.value)
        assert _threads_left(before) == []  # the timed call's thread stopped


def test_output_types_are_checked_after_running() -> None:
    with pytest.raises(PipelineFailedError) as caught:
        returns_wrong_type(1).resolve(SilentResolver())
    assert isinstance(caught.value.__cause__, TypeCheckError)
    assert "returns_wrong_type() return value expects int" in str(caught.value.__cause__)
    with pytest.raises(PipelineFailedError) as nested:
        returns_wrong_future(1).resolve(SilentResolver())
    assert "declared to return int but returns the output of concat()" in str(
        nested.value.__cause__
    )


def test_unused_futures_are_reported() -> None:
    for future in (leaves_unused(1), leaves_unused_nested(1)):
        with pytest.raises(PipelineFailedError) as caught:
            future.resolve(SilentResolver())
        assert isinstance(caught.value.__cause__, FutureUsageError)
        assert "called inc() but never used the result" in str(caught.value.__cause__)


def test_context_gives_run_and_root_ids_in_any_thread() -> None:
    with pytest.raises(NotInRunError):
        sematic.context()
    root = whoami_pipeline(1)
    first, second = root.resolve(SilentResolver())
    run_a, root_a, _ = first.split("/")
    run_b, root_b, _ = second.split("/")
    assert root_a == root_b == root.id
    assert run_a != run_b and root.id not in (run_a, run_b)

    def in_thread() -> str:
        future = whoami(2)
        run_id, root_id, thread = future.resolve(SilentResolver()).split("/")
        assert run_id == root_id == future.id
        return thread

    with ThreadPoolExecutor(1, thread_name_prefix="other") as pool:
        assert pool.submit(in_thread).result().startswith("other")
    assert threading.current_thread() is threading.main_thread()


def test_root_arguments_may_be_futures() -> None:
    assert inc(inc(inc(1))).resolve(SilentResolver()) == 4


def test_resolve_refuses_things_that_are_not_resolvers_or_futures() -> None:
    with pytest.raises(sematic.ConfigurationError, match="takes a resolver"):
        inc(1).resolve(42)  # type: ignore[arg-type]
    with pytest.raises(sematic.ConfigurationError, match="takes the Future"):
        SilentResolver().resolve(3)  # type: ignore[arg-type]


def test_a_resolved_future_can_be_resolved_again() -> None:
    future = inc(1)
    assert future.resolve(SilentResolver()) == 2
    assert future.resolve(SilentResolver()) == 2
