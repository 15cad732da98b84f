"""The resolution engine: a pure state machine over the graph of futures.

Events come in (a run succeeded, returned a future, failed; cancel was asked), commands
go out (execute a run, abort a run, a state changed). The engine does no I/O, runs no
user code and knows no executor or store; every resolver drives this same engine.

States and the only transitions allowed between them::

    CREATED ──> SCHEDULED ──> RESOLVED
       │            │ ├─────> RAN ──────> RESOLVED | NESTED_FAILED | FAILED
       │            │ ├─────> FAILED
       │            │ └─────> RETRYING ──> SCHEDULED
       └────────────┴── any non-terminal state ──> CANCELED

RESOLVED, FAILED, NESTED_FAILED and CANCELED are terminal: nothing leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sematic.core.errors import IllegalTransitionError
from sematic.core.future import Future, substitute


class State(str, Enum):
    """Where a run is in its life."""

    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    RAN = "RAN"
    RETRYING = "RETRYING"
    RESOLVED = "RESOLVED"
    FAILED = "FAILED"
    NESTED_FAILED = "NESTED_FAILED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    def __str__(self) -> str:  # "RESOLVED" in messages and f-strings, on every Python
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


TERMINAL = frozenset({State.RESOLVED, State.FAILED, State.NESTED_FAILED, State.CANCELED})
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.SCHEDULED, State.CANCELED}),
    State.SCHEDULED: frozenset(
        {State.RAN, State.RESOLVED, State.FAILED, State.RETRYING, State.CANCELED}
    ),
    State.RETRYING: frozenset({State.SCHEDULED, State.CANCELED}),
    State.RAN: frozenset({State.RESOLVED, State.FAILED, State.NESTED_FAILED, State.CANCELED}),
    State.RESOLVED: frozenset(),
    State.FAILED: frozenset(),
    State.NESTED_FAILED: frozenset(),
    State.CANCELED: frozenset(),
}

_NO_RUNS: list[Run] = []


class Run:
    """The engine's record of one future: its state and its place in the graph."""

    __slots__ = (
        "attempts",
        "awaited_by",
        "dependents",
        "error",
        "future",
        "id",
        "infrastructure_failures",
        "parent_id",
        "pending",
        "state",
    )

    def __init__(self, future: Future, parent_id: str | None) -> None:
        self.future = future
        self.id = future.id
        self.parent_id = parent_id
        self.state = State.CREATED
        self.pending = 0  # inputs not yet resolved
        self.dependents: list[Run] = []  # runs waiting for this one as an input
        self.awaited_by: list[Run] = _NO_RUNS  # runs whose output is this run's output
        self.attempts = 0
        self.infrastructure_failures = 0
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        return f"Run({self.future.props.name}, {self.state.value}, id={self.id[:12]})"


# Events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The run's function returned a concrete value (already type-checked)."""

    run_id: str
    value: Any


@dataclass(frozen=True, slots=True)
class ReturnedFuture:
    """The run's function returned a future: its graph is nested under the run."""

    run_id: str
    future: Future


@dataclass(frozen=True, slots=True)
class Failed:
    """The run failed. ``infrastructure`` faults are retried by default, user errors not."""

    run_id: str
    error: BaseException
    infrastructure: bool = False


@dataclass(frozen=True, slots=True)
class CancelRequested:
    reason: str = "canceled"


Event = Succeeded | ReturnedFuture | Failed | CancelRequested


# Commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Execute:
    """Run ``run``'s function with ``kwargs`` (futures replaced by their values)."""

    run: Run
    kwargs: dict[str, Any]
    root_id: str


@dataclass(frozen=True, slots=True)
class Abort:
    """Stop ``run`` if it is executing; its result, if any comes, will be ignored."""

    run: Run


@dataclass(frozen=True, slots=True)
class StateChanged:
    run: Run
    old: State
    new: State


Command = Execute | Abort | StateChanged


class Engine:
    """Resolves the graph that ends in ``root``; see the module docstring."""

    def __init__(self, root: Future, *, infrastructure_retries: int = 2) -> None:
        self.runs: dict[str, Run] = {}
        self.values: dict[str, Any] = {}
        self.failure: Run | None = None
        self.cancel_reason: str | None = None
        self.infrastructure_retries = infrastructure_retries
        self._root_future = root
        self._out: list[Command] = []
        self.root: Run | None = None

    @property
    def finished(self) -> bool:
        return self.root is not None and self.root.state in TERMINAL

    @property
    def root_id(self) -> str:
        return self._root_future.id

    def start(self) -> list[Command]:
        """Register the graph and schedule every run whose inputs are ready."""
        if self.root is not None:
            raise IllegalTransitionError("the engine was started twice")
        new = self._register(self._root_future, None)
        self.root = self.runs[self._root_future.id]
        self._schedule_ready(new)
        return self._flush()

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands it leads to."""
        if isinstance(event, CancelRequested):
            self.cancel_reason = self.cancel_reason or event.reason
            self._cancel_all()
            return self._flush()
        run = self.runs[event.run_id]
        if run.state is not State.SCHEDULED:
            return []  # a late result of an aborted or canceled run
        if isinstance(event, Succeeded):
            self._resolve(run, event.value)
        elif isinstance(event, ReturnedFuture):
            self._nest(run, event.future)
        else:
            self._failed(run, event.error, infrastructure=event.infrastructure)
        return self._flush()

    # Internals ---------------------------------------------------------------------------

    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def _move(self, run: Run, new: State) -> None:
        old = run.state
        if new not in TRANSITIONS[old]:
            raise IllegalTransitionError(f"{run!r}: {old.value} -> {new.value} is not allowed")
        run.state = new
        self._out.append(StateChanged(run, old, new))

    def _register(self, future: Future, parent_id: str | None) -> list[Run]:
        first = Run(future, parent_id)
        self.runs[first.id] = first
        new, stack = [first], [first]
        while stack:
            run = stack.pop()
            for dependency in run.future.dependencies:
                known = self.runs.get(dependency.id)
                if known is None:
                    known = Run(dependency, parent_id)
                    self.runs[known.id] = known
                    new.append(known)
                    stack.append(known)
                if known.state is not State.RESOLVED:
                    run.pending += 1
                    known.dependents.append(run)
        return new

    def _schedule_ready(self, runs: list[Run]) -> None:
        for run in runs:
            if run.pending == 0 and run.state is State.CREATED:
                self._schedule(run)

    def _schedule(self, run: Run) -> None:
        future = run.future
        kwargs = future.kwargs
        if future.deferred:
            kwargs = dict(kwargs)
            for name in future.deferred:
                kwargs[name] = substitute(kwargs[name], self.values)
        run.attempts += 1
        self._move(run, State.SCHEDULED)
        self._out.append(Execute(run, kwargs, self.root_id))

    def _resolve(self, run: Run, value: Any) -> None:
        work = [(run, value)]
        while work:
            run, value = work.pop()
            if run.state is State.RAN:
                try:
                    value = run.future.function.check_output(value)
                except Exception as error:  # noqa: BLE001 - reported as the run's failure
                    self._fail(run, error)
                    return
            self._move(run, State.RESOLVED)
            self.values[run.id] = value
            for dependent in run.dependents:
                dependent.pending -= 1
                if dependent.pending == 0 and dependent.state is State.CREATED:
                    self._schedule(dependent)
            run.dependents = _NO_RUNS
            for waiting in run.awaited_by:
                work.append((waiting, value))
            run.awaited_by = _NO_RUNS

    def _nest(self, run: Run, future: Future) -> None:
        self._move(run, State.RAN)
        known = self.runs.get(future.id)
        if known is not None:
            if known.state is State.RESOLVED:
                self._resolve(run, self.values[known.id])
            else:
                known.awaited_by = [*known.awaited_by, run]
            return
        new = self._register(future, run.id)
        new[0].awaited_by = [run]
        self._schedule_ready(new)

    def _failed(self, run: Run, error: BaseException, *, infrastructure: bool) -> None:
        if infrastructure:
            run.infrastructure_failures += 1
            retry = run.infrastructure_failures <= self.infrastructure_retries
        else:
            settings = run.future.props.retry
            retry = settings is not None and settings.should_retry(
                error, run.attempts - run.infrastructure_failures
            )
        if retry:
            self._move(run, State.RETRYING)
            self._schedule(run)
        else:
            self._fail(run, error)

    def _fail(self, run: Run, error: BaseException) -> None:
        run.error = error
        self.failure = run
        self._move(run, State.FAILED)
        parent = self.runs.get(run.parent_id) if run.parent_id else None
        while parent is not None:
            if parent.state is State.RAN:
                self._move(parent, State.NESTED_FAILED)
            parent = self.runs.get(parent.parent_id) if parent.parent_id else None
        self._cancel_all()

    def _cancel_all(self) -> None:
        for run in self.runs.values():
            if run.state in TERMINAL:
                continue
            if run.state is State.SCHEDULED or run.state is State.RETRYING:
                self._out.append(Abort(run))
            self._move(run, State.CANCELED)
