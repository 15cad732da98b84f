"""The engine on its own: transition table, and property tests of its invariants.

The engine is driven directly, completing scheduled runs in an order hypothesis chooses
(as a parallel executor would), with failures, nested runs, retries and cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sematic
from sematic.core.engine import (
    TERMINAL,
    TRANSITIONS,
    Abort,
    CancelRequested,
    Engine,
    Execute,
    Failed,
    State,
    StateChanged,
)
from sematic.core.errors import IllegalTransitionError
from sematic.core.execution import execute_command
from sematic.core.future import Future


@sematic.func
def node(k: int, xs: list[int]) -> int:
    return k + sum(xs)


@sematic.func
def nested_node(k: int, xs: list[int]) -> int:
    return node(k, [node(1, xs), node(2, [])])  # type: ignore[return-value]


@sematic.func
def failing_node(k: int, xs: list[int]) -> int:
    raise ValueError(f"node {k} fails")


@sematic.func
def nested_failing_node(k: int, xs: list[int]) -> int:
    return node(k, [failing_node(k, xs)])  # type: ignore[return-value]


KINDS = {
    "value": (node, lambda k, xs: k + sum(xs)),
    "nested": (nested_node, lambda k, xs: k + 1 + sum(xs) + 2),
    "fail": (failing_node, None),
    "nested_fail": (nested_failing_node, None),
}


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    for state in State:
        assert state.is_terminal == (state in TERMINAL)
    assert set(TRANSITIONS) == set(State)


@dataclass
class Trace:
    """What the harness saw, in order.

    ``log`` interleaves ("scheduled" | "aborted" | "executed", run id) entries. Aborted
    commands are kept (in ``aborted_commands``) rather than dropped, so that the test can
    check them; like a real executor, the harness never executes a command once its run
    was aborted, and an ``Execute`` the engine sends after an ``Abort`` is executed (and so
    caught by the test), not silently ignored.
    """

    changes: list[StateChanged] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    aborted: list[Abort] = field(default_factory=list)
    aborted_commands: list[Execute] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    left_pending: list[Execute] = field(default_factory=list)


def drive(engine: Engine, data: st.DataObject, cancel_at: int | None) -> Trace:
    trace = Trace()
    pending: list[Execute] = []

    def take(commands: list[object]) -> None:
        for command in commands:
            if isinstance(command, Execute):
                trace.log.append(("scheduled", command.run.id))
                pending.append(command)
            elif isinstance(command, Abort):
                trace.log.append(("aborted", command.run.id))
                trace.aborted.append(command)
                trace.aborted_commands.extend(p for p in pending if p.run is command.run)
                pending[:] = [p for p in pending if p.run is not command.run]
            elif isinstance(command, StateChanged):
                trace.changes.append(command)

    take(engine.start())
    steps = 0
    while not engine.finished:
        assert pending, "the engine is waiting but nothing is scheduled"
        if cancel_at is not None and steps == cancel_at:
            take(engine.handle(CancelRequested()))
            break
        index = data.draw(st.integers(0, len(pending) - 1), label="next completion")
        command = pending.pop(index)
        run = command.run
        trace.log.append(("executed", run.id))
        trace.executed.append(run.id)
        event = execute_command(command)
        take(engine.handle(event))
        steps += 1
    trace.left_pending = pending
    return trace


@st.composite
def graphs(draw: st.DrawFn) -> tuple[Future, int | None]:
    """A random DAG of calls; returns its root future and its value (None if it fails)."""
    size = draw(st.integers(1, 12))
    futures: list[Future] = []
    values: list[int | None] = []
    used: set[int] = set()
    for k in range(size):
        inputs = draw(st.lists(st.integers(0, k - 1), max_size=3)) if k else []
        kind = draw(st.sampled_from(sorted(KINDS)), label="kind")
        function, evaluate = KINDS[kind]
        futures.append(function(k, [futures[i] for i in inputs]))
        used.update(inputs)
        input_values = [values[i] for i in inputs]
        if evaluate is None or any(v is None for v in input_values):
            values.append(None)
        else:
            values.append(evaluate(k, input_values))
    sinks = [i for i in range(size) if i not in used]
    root = node(0, [futures[i] for i in sinks])
    sink_values = [values[i] for i in sinks]
    expected = None if any(v is None for v in sink_values) else sum(v or 0 for v in sink_values)
    return root, expected


@settings(max_examples=150, deadline=None)
@given(graph=graphs(), data=st.data(), cancel=st.none() | st.integers(0, 6))
def test_invariants_hold_for_any_graph_and_completion_order(
    graph: tuple[Future, int | None], data: st.DataObject, cancel: int | None
) -> None:
    root, expected = graph
    engine = Engine(root)
    trace = drive(engine, data, cancel)

    # Every future ends in a terminal state.
    assert engine.finished
    assert all(run.state in TERMINAL for run in engine.runs.values())

    # Each run's history follows the table; nothing leaves a terminal state.
    history: dict[str, list[State]] = {}
    for change in trace.changes:
        states = history.setdefault(change.run.id, [State.CREATED])
        assert states[-1] is change.old
        assert change.new in TRANSITIONS[change.old]
        states.append(change.new)
    for run_id, states in history.items():
        assert states[-1] is engine.runs[run_id].state
        assert all(s not in TERMINAL for s in states[:-1])

    # A parent never resolves before its children.
    resolved_at = {c.run.id: i for i, c in enumerate(trace.changes) if c.new is State.RESOLVED}
    for run in engine.runs.values():
        if run.parent_id in resolved_at:
            assert run.id in resolved_at
            assert resolved_at[run.id] < resolved_at[run.parent_id]

    # Outcome: the value of plain evaluation, or a failure, or a cancellation.
    assert engine.root is not None
    if engine.root.state is State.RESOLVED:
        assert expected is not None
        assert engine.values[root.id] == expected
    elif engine.failure is not None:
        assert expected is None
        assert engine.failure.state is State.FAILED
        assert isinstance(engine.failure.error, ValueError)
        ancestor = engine.runs.get(engine.failure.parent_id or "")
        while ancestor is not None:
            assert ancestor.state is State.NESTED_FAILED
            ancestor = engine.runs.get(ancestor.parent_id or "")
    else:
        assert cancel is not None
        assert engine.root.state is State.CANCELED

    # Every command the engine sent was executed or aborted: nothing is left waiting.
    aborted_ids = [abort.run.id for abort in trace.aborted]
    scheduled = [run_id for kind, run_id in trace.log if kind == "scheduled"]
    assert trace.left_pending == []
    assert sorted(scheduled) == sorted(trace.executed + aborted_ids)
    assert len(trace.executed) == len(set(trace.executed))  # no retries here: once each
    assert all(engine.runs[run_id].state in TERMINAL for run_id in trace.executed)
    if cancel != 0:
        assert trace.executed, "a step ran before the pipeline ended"

    # Aborted runs were canceled, and no run executed (or was scheduled) after its abort.
    assert len(aborted_ids) == len(set(aborted_ids))  # each run aborted once
    for run_id in aborted_ids:
        assert engine.runs[run_id].state is State.CANCELED
        entries = [(i, kind) for i, (kind, rid) in enumerate(trace.log) if rid == run_id]
        abort_at = next(i for i, kind in entries if kind == "aborted")
        assert [kind for i, kind in entries if i > abort_at] == []
        # Only a run that was scheduled, and had not run yet, is aborted.
        assert [kind for i, kind in entries if i < abort_at] == ["scheduled"]
    # Each kept aborted command is one the harness held back; its late result is ignored.
    assert sorted(c.run.id for c in trace.aborted_commands) == sorted(aborted_ids)
    assert not set(aborted_ids) & set(trace.executed)
    failure = engine.failure
    for command in trace.aborted_commands:
        late = Failed(command.run.id, RuntimeError("late result of an aborted run"))
        assert engine.handle(late) == []
        assert command.run.state is State.CANCELED
    assert engine.failure is failure


def test_illegal_transitions_are_refused() -> None:
    engine = Engine(node(1, []))
    commands = engine.start()
    run = next(c.run for c in commands if isinstance(c, Execute))
    engine.handle(Failed(run.id, ValueError("x")))
    assert run.state is State.FAILED
    with pytest.raises(IllegalTransitionError, match="FAILED -> SCHEDULED"):
        engine._move(run, State.SCHEDULED)
    with pytest.raises(IllegalTransitionError, match="started twice"):
        engine.start()


def test_late_results_of_canceled_runs_are_ignored() -> None:
    engine = Engine(node(1, []))
    run = next(c.run for c in engine.start() if isinstance(c, Execute))
    commands = engine.handle(CancelRequested())
    assert any(isinstance(c, Abort) and c.run is run for c in commands)
    assert engine.handle(Failed(run.id, ValueError("late"))) == []
    assert run.state is State.CANCELED and engine.failure is None


def test_infrastructure_faults_are_retried_by_default_user_errors_not() -> None:
    engine = Engine(node(1, []), infrastructure_retries=2)
    run = next(c.run for c in engine.start() if isinstance(c, Execute))
    for _ in range(2):
        commands = engine.handle(Failed(run.id, OSError("pod evicted"), infrastructure=True))
        assert any(isinstance(c, Execute) for c in commands)
        assert run.state is State.SCHEDULED
    engine.handle(Failed(run.id, OSError("pod evicted"), infrastructure=True))
    assert run.state is State.FAILED

    user = Engine(node(1, []))
    user_run = next(c.run for c in user.start() if isinstance(c, Execute))
    user.handle(Failed(user_run.id, ValueError("bug")))
    assert user_run.state is State.FAILED and user_run.attempts == 1
