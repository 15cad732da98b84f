"""Pipelines for running LocalResolver under debuggers and profilers.

``python -m tests.pipelines.tracing OUT [settrace|setprofile]`` resolves, with LocalResolver and
SEMATIC_HOME from the environment: three inline steps, a step that spins in Python past its
timeout, one that sleeps past it, a step canceled while it runs, and three inline steps again.
It writes what came of each to the JSON file OUT (tests/unit/resolvers/test_under_tracers.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sematic
from sematic import LocalResolver
from sematic.resolvers.cancel import request_cancel
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore

TIMEOUT_MINS = 0.01  # 0.6 s


@sematic.func
def add(a: int, b: int) -> int:
    return a + b


@sematic.func
def three_inline(x: int) -> int:
    return add(add(add(x, 1), 2), 3)


@sematic.func(timeout_mins=TIMEOUT_MINS)
def spins(seconds: float, witness: str) -> float:
    """Runs Python code past its timeout; says so if it was not stopped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    Path(witness, "spins-returned").touch()
    return seconds


@sematic.func(timeout_mins=TIMEOUT_MINS)
def sleeps(seconds: float, witness: str) -> float:
    """Waits in one blocking call past its timeout; says so if it was not stopped after."""
    time.sleep(seconds)
    Path(witness, "sleeps-returned").touch()
    return seconds


@sematic.func
def waits(witness: str, seconds: float) -> int:
    """Says it started, then polls for ``seconds`` (a cancel stops it first)."""
    Path(witness, "started").touch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
    return 0


@sematic.func
def canceled(witness: str, seconds: float) -> int:
    return add(waits(witness, seconds), 1)


def _outcome(resolve: Callable[[], Any]) -> dict[str, Any]:
    start = time.monotonic()
    try:
        value: Any = resolve()
        error = cause = None
    except Exception as raised:  # noqa: BLE001 - reported to the test
        value = None
        error = type(raised).__name__
        cause = type(raised.__cause__).__name__ if raised.__cause__ else None
    return {"value": value, "error": error, "cause": cause, "seconds": time.monotonic() - start}


def _cancel_when_started(witness: Path, future: sematic.Future) -> None:
    deadline = time.monotonic() + 30
    database_url = LocalSettings.from_environment().database_url
    while time.monotonic() < deadline:
        if (witness / "started").exists():
            with SqlMetadataStore(database_url) as store:
                if any(run.id == future.id for run in store.list_runs(root_only=True)):
                    request_cancel(store, future.id, "stopped under a tracer")
                    return
        time.sleep(0.02)


def _helpers_stopped(names: tuple[str, ...], seconds: float) -> bool:
    """Whether the threads that ran the timed-out steps ended within ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(thread.name in names for thread in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _never_called() -> None:
    """A debugger's breakpoint goes here: it stays armed, so the debugger traces every call."""
    print("unreachable")  # breakpoint


def main(out: str, hook: str | None) -> None:
    if hook == "settrace":
        sys.settrace(lambda *_: None)
    elif hook == "setprofile":
        sys.setprofile(lambda *_: None)
    witness = Path(out).with_suffix(".witness")
    witness.mkdir()
    report: dict[str, Any] = {
        "three_inline": _outcome(lambda: three_inline(0).resolve(LocalResolver(progress=False))),
        "spins": _outcome(lambda: spins(20.0, str(witness)).resolve(LocalResolver(progress=False))),
        "sleeps": _outcome(
            lambda: sleeps(4.0, str(witness)).resolve(LocalResolver(progress=False))
        ),
    }
    future = canceled(str(witness), 30.0)
    canceler = threading.Thread(target=_cancel_when_started, args=(witness, future))
    canceler.start()
    report["canceled"] = _outcome(lambda: future.resolve(LocalResolver(progress=False)))
    canceler.join()
    report["again"] = _outcome(lambda: three_inline(10).resolve(LocalResolver(progress=False)))
    report["helpers_stopped"] = _helpers_stopped(("sematic-spins", "sematic-sleeps"), 10.0)
    report["returned"] = sorted(p.name for p in witness.glob("*-returned"))
    sys.settrace(None)
    sys.setprofile(None)
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
