"""The small interfaces adapters implement; resolvers wire them to the engine."""

from __future__ import annotations

from typing import Protocol

from sematic.core.engine import Event, Execute, Run, State


class Executor(Protocol):
    """Runs the functions the engine schedules and reports what came of them.

    Lifecycle: ``submit`` any number of runs, ``next_event`` blocks until one of them
    reports, ``abort`` stops one, ``close`` releases everything (also after an error).
    """

    def submit(self, command: Execute) -> None: ...

    def next_event(self) -> Event: ...

    def abort(self, run: Run) -> None: ...

    def close(self) -> None: ...


class RunObserver(Protocol):
    """Told of every state change, in order (metadata stores, progress displays)."""

    def state_changed(self, *, run: Run, old: State, new: State, root_id: str) -> None: ...
