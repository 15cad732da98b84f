"""A live terminal display of a resolution: steps done, running, failed, elapsed time.

rich is imported when a display is made: a resolver showing none (a driver pod, a
resolver whose stderr is not a terminal) does without it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from sematic.core.engine import Run, State

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text


class ProgressDisplay:
    """Prints the root run id at start, a live line while running, and a summary at the end."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 8) -> None:
        from rich.console import Console

        # Bound to the stream of now: inline functions' output is teed to their logs later.
        self._console = console or Console(file=sys.stderr)
        self._live: Live | None = None
        self._counts = {"done": 0, "running": 0, "failed": 0, "canceled": 0, "cached": 0}
        self._seen: set[str] = set()
        self._started = time.monotonic()
        self._last = 0.0
        self._interval = 1 / refresh_per_second
        self._root_name = ""

    def start(self, root_id: str, name: str) -> None:
        self._root_name = name
        self._started = time.monotonic()
        self._console.print(f"[bold]sematic[/] resolving {name} — root run {root_id}")
        if self._console.is_terminal:
            from rich.live import Live

            self._live = Live(self._line(), console=self._console, transient=True)
            self._live.start()

    def state_changed(self, *, run: Run, old: State, new: State, **_: Any) -> None:
        self._seen.add(run.id)
        counts = self._counts
        if new is State.SCHEDULED and old is not State.RETRYING:
            counts["running"] += 1
        elif new is State.RESOLVED or new is State.RAN:
            if old is State.SCHEDULED:
                counts["running"] -= 1
            if new is State.RESOLVED:
                counts["done"] += 1
        elif new is State.FAILED:
            counts["running"] -= old is State.SCHEDULED
            counts["failed"] += 1
        elif new is State.CANCELED:
            counts["running"] -= old is State.SCHEDULED
            counts["canceled"] += 1

    def flush(self) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._last >= self._interval:
            self._last = now
            self._live.update(self._line())

    def stop(self, outcome: str) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._console.print(self._line(outcome))

    def _line(self, outcome: str = "running") -> Text:
        from rich.text import Text

        c = self._counts
        elapsed = time.monotonic() - self._started
        text = (
            f"{self._root_name}: {outcome} — {c['done']} done, {c['running']} running, "
            f"{c['failed']} failed, {c['canceled']} canceled, {len(self._seen)} runs, "
            f"{elapsed:.1f}s"
        )
        return Text(text)


def wants_progress() -> bool:
    return sys.stderr.isatty()
