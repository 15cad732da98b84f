"""Pipelines for LocalResolver tests: inline and worker-process steps, files as witnesses."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import sematic


def _mark(folder: str, name: str) -> None:
    """Leave a file behind each time a step really executes."""
    path = Path(folder) / f"{name}.{os.getpid()}.{time.monotonic_ns()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Whole or absent (a reader may read it at once): written aside, then renamed.
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(str(os.getpid()))
    aside.replace(path)


def executions(folder: str, name: str) -> int:
    return len(list(Path(folder).glob(f"{name}.*")))


@dataclass(frozen=True)
class Report:
    total: int
    pids: list[int]


@sematic.func
def square(x: int, witness: str) -> int:
    """Squares x in this process."""
    _mark(witness, f"square{x}")
    return x * x


@sematic.func(inline=False)
def remote_square(x: int, witness: str) -> int:
    """Squares x in a worker process."""
    _mark(witness, f"remote_square{x}")
    print(f"squaring {x} in pid {os.getpid()}")
    return x * x


@sematic.func(inline=False)
def worker_pid(x: int) -> int:
    return os.getpid()


@sematic.func
def summarize(values: list[int], pids: list[int]) -> Report:
    return Report(total=sum(values), pids=pids)


@sematic.func
def mixed(n: int, witness: str) -> Report:
    """Inline and worker steps, nested."""
    values = [square(i, witness) for i in range(n)] + [remote_square(i, witness) for i in range(n)]
    return summarize(values, [worker_pid(i) for i in range(2)])


@sematic.func(inline=False)
def interval(i: int, seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


@sematic.func
def intervals(n: int, seconds: float) -> list[tuple[float, float]]:
    return [interval(i, seconds) for i in range(n)]  # type: ignore[return-value]


@sematic.func(cache=True)
def expensive(x: int, witness: str) -> int:
    _mark(witness, f"expensive{x}")
    return x + 1000


@sematic.func
def cached_pipeline(x: int, witness: str) -> int:
    return expensive(x, witness)


@sematic.func(inline=False)
def remote_boom(x: int) -> int:
    raise ValueError(f"remote boom {x}")


@sematic.func(inline=False)
def dies(x: int) -> int:
    os._exit(3)


@sematic.func
def fails_inside(x: int) -> int:
    return square(remote_boom(x), "/nonexistent-witness")


@sematic.func
def slow_step(x: int, witness: str, seconds: float) -> int:
    """Waits (at most ``seconds``) until a test drops a "release" file in ``witness``."""
    _mark(witness, f"slow{x}")
    deadline = time.monotonic() + seconds
    while not (Path(witness) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return x


@sematic.func
def resumable(witness: str, seconds: float) -> int:
    """Two quick steps, then a slow one a test kills the process in."""
    first = square(2, witness)
    second = square(first, witness)
    return slow_step(second, witness, seconds)


@sematic.func(inline=False)
def remote_nested(x: int, witness: str) -> int:
    """Returns a future from a worker process: the graph grows from there."""
    return square(x + 1, witness)


@sematic.func
def step_a(witness: str) -> int:
    _mark(witness, "step_a")
    return 1


@sematic.func
def step_b(x: int, witness: str) -> int:
    _mark(witness, "step_b")
    return x + 10


@sematic.func
def step_c(x: int, witness: str) -> int:
    _mark(witness, "step_c")
    return x + 100


@sematic.func
def three_steps(witness: str) -> int:
    return step_c(step_b(step_a(witness), witness), witness)


@sematic.func(inline=False)
def remote_wait(witness: str, seconds: float) -> int:
    """Leaves its pid in ``witness``, then waits for a "release" file (at most ``seconds``)."""
    _mark(witness, "remote_wait")
    deadline = time.monotonic() + seconds
    while not (Path(witness) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


@sematic.func
def waits_remotely(witness: str, seconds: float) -> int:
    return square(remote_wait(witness, seconds), witness)


@sematic.func
def chatty(x: int) -> int:
    print(f"inline says {x}")
    print(f"inline warns {x}", file=sys.stderr)
    return x
