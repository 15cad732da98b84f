"""Runs every function in this process, one at a time, in submission order."""

from __future__ import annotations

from collections import deque

from sematic.core.engine import Event, Execute, Run
from sematic.core.execution import execute_command


class InProcessExecutor:
    """The simplest executor: no threads, no processes, no I/O."""

    def __init__(self) -> None:
        self._queue: deque[Execute] = deque()

    def submit(self, command: Execute) -> None:
        self._queue.append(command)

    def next_event(self) -> Event:
        return execute_command(self._queue.popleft())

    def abort(self, run: Run) -> None:
        for index, queued in enumerate(self._queue):
            if queued.run is run:
                del self._queue[index]
                return

    def close(self) -> None:
        self._queue.clear()
