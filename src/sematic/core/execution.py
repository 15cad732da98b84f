"""What a worker does with one run, wherever it runs: check inputs, execute, check output.

The in-process executor, local worker processes and Kubernetes pods all call
:func:`execute`, so a local run exercises the cloud's code path.
"""

from __future__ import annotations

from typing import Any

from sematic.core.context import RunContext, _created_futures, _current_run
from sematic.core.engine import Event, Execute, Failed, ReturnedFuture, Succeeded
from sematic.core.errors import FutureUsageError, TypeCheckError
from sematic.core.function import Function, check_deferred
from sematic.core.future import Future, collect_futures
from sematic.core.props import FunctionProps
from sematic.core.steps import collect_step, is_access_step
from sematic.core.timeouts import call_with_timeout
from sematic.core.types import describe, is_convertible


def execute(
    function: Function,
    props: FunctionProps,
    kwargs: dict[str, Any],
    deferred: tuple[str, ...],
    context: RunContext,
) -> Event:
    """Run one function call and report what came of it as an engine event."""
    run_id = context.run_id
    try:
        function.check_inputs(kwargs, deferred)
        created: list[Future] = []
        run_token = _current_run.set(context)
        created_token = _created_futures.set(created)
        try:
            if props.timeout_mins is None:
                result = function.call(kwargs)
            else:
                result = call_with_timeout(
                    lambda: function.call(kwargs), props.timeout_mins * 60, function.qualname
                )
            if not isinstance(result, Future) and collect_futures(result):
                # A container of futures becomes one step (named like the run's children).
                check_deferred(result, function.output_type, f"{function.qualname}() return value")
                result = collect_step(
                    type(function), result, function.output_type, f"{function.name} (return value)"
                )
        finally:
            _created_futures.reset(created_token)
            _current_run.reset(run_token)
        return _outcome(run_id, function, result, created)
    except Exception as error:  # noqa: BLE001 - the user's failure, reported to the engine
        return Failed(run_id, error)


def execute_command(command: Execute) -> Event:
    """Run the call an engine ``Execute`` command asks for, in this process."""
    run = command.run
    future = run.future
    return execute(
        future.function,
        future.props,
        command.kwargs,
        future.deferred,
        RunContext(run_id=run.id, root_id=command.root_id),
    )


def _outcome(run_id: str, function: Function, result: Any, created: list[Future]) -> Event:
    nested = result if isinstance(result, Future) else None
    if nested is None:
        _refuse_unused(function, created, reachable=set())
        return Succeeded(run_id, function.check_output(result))
    produced = nested.function.output_type
    if not is_convertible(produced, function.output_type):
        raise TypeCheckError(
            f"{function.qualname}() is declared to return {describe(function.output_type)} "
            f"but returns the output of {nested.function.qualname}(), declared as "
            f"{describe(produced)}"
        )
    _refuse_unused(function, created, reachable=_reachable(nested, created))
    return ReturnedFuture(run_id, nested)


def _reachable(nested: Future, created: list[Future]) -> set[int]:
    mine = {id(future) for future in created}
    seen: set[int] = set()
    stack = [nested]
    while stack:
        future = stack.pop()
        if id(future) in seen:
            continue
        seen.add(id(future))
        stack.extend(d for d in future.dependencies if id(d) in mine and id(d) not in seen)
    return seen


def _refuse_unused(function: Function, created: list[Future], reachable: set[int]) -> None:
    """Refuse calls whose result the function never used.

    An unused part of a used call (``_, b = pair()``) is fine; an unused call is reported
    once, whichever of its parts were taken.
    """
    unused = [
        future for future in created if id(future) not in reachable and not is_access_step(future)
    ]
    if unused:
        names = ", ".join(f"{future.props.name}()" for future in unused[:5])
        raise FutureUsageError(
            f"{function.qualname}() called {names} but never used the result"
            f"{'s' if len(unused) > 1 else ''}: a future only runs if it feeds the value the "
            "function returns. Pass it to the returned computation, or remove the call."
        )
