"""Driving the engine: the loop every resolver runs, with its executor and observers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sematic.core.engine import (
    Abort,
    CancelRequested,
    Command,
    Engine,
    Execute,
    State,
    StateChanged,
)
from sematic.core.errors import ConfigurationError, PipelineCanceledError, PipelineFailedError
from sematic.core.future import Future
from sematic.core.ports import Executor, RunObserver


def run_pipeline(
    future: Future,
    executor: Executor,
    observers: Sequence[RunObserver] = (),
    *,
    infrastructure_retries: int = 2,
) -> Any:
    """Resolve ``future`` with ``executor``; return its value or raise a pipeline error."""
    if not isinstance(future, Future):
        raise ConfigurationError(
            f"resolve() takes the Future returned by calling a @sematic.func, got {future!r}"
        )
    engine = Engine(future, infrastructure_retries=infrastructure_retries)
    root_id = future.id

    def dispatch(commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Execute):
                executor.submit(command)
            elif isinstance(command, StateChanged):
                value = engine.values.get(command.run.id) if command.new is State.RESOLVED else None
                for observer in observers:
                    observer.state_changed(
                        run=command.run,
                        old=command.old,
                        new=command.new,
                        root_id=root_id,
                        value=value,
                    )
            elif isinstance(command, Abort):
                executor.abort(command.run)
        for observer in observers:
            observer.flush()

    try:
        dispatch(engine.start())
        while not engine.finished:
            dispatch(engine.handle(executor.next_event()))
    except KeyboardInterrupt:
        dispatch(engine.handle(CancelRequested("interrupted (Ctrl-C)")))
        raise
    finally:
        executor.close()
    return _result(engine, future)


def _result(engine: Engine, future: Future) -> Any:
    failure = engine.failure
    if failure is not None:
        error = failure.error
        name = failure.future.props.name
        failed = PipelineFailedError(
            f"pipeline {future.props.name} failed: {name}() raised "
            f"{type(error).__name__}: {error} (run {failure.id})",
            run_id=failure.id,
            function_name=name,
        )
        # Sematic 0.41 programs find the original error by walking __context__.
        failed.__context__ = error
        raise failed from error
    if engine.root is None or engine.root_id not in engine.values:
        why = f" ({engine.cancel_reason})" if engine.cancel_reason else ""
        raise PipelineCanceledError(
            f"pipeline {future.props.name} was canceled{why} (root run {engine.root_id})",
            root_id=engine.root_id,
        )
    return engine.values[engine.root_id]
