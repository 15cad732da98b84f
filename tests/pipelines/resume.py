"""A pipeline a test kills with SIGKILL and resumes: inline, worker and nested steps.

Every step appends a line to ``witness/NAME`` each time it really executes, so a test can
count executions across processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import sematic


def _mark(witness: str, name: str) -> None:
    with open(Path(witness) / name, "a") as file:
        file.write("ran\n")


def executions(witness: str, name: str) -> int:
    path = Path(witness) / name
    return len(path.read_text().splitlines()) if path.exists() else 0


@sematic.func
def add(x: int, y: int, witness: str) -> int:
    _mark(witness, f"add{x}+{y}")
    return x + y


@sematic.func(inline=False)
def remote_add(x: int, y: int, witness: str) -> int:
    _mark(witness, f"remote_add{x}+{y}")
    return x + y


@sematic.func
def hold(x: int, witness: str, seconds: float) -> int:
    """Waits (at most ``seconds``) until a test drops a "release" file in ``witness``."""
    _mark(witness, f"hold{x}")
    deadline = time.monotonic() + seconds
    while not (Path(witness) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return x


@sematic.func
def inner(x: int, witness: str, seconds: float) -> int:
    """Nested: two steps of its own, then one that holds until released."""
    first = add(x, 1, witness)
    second = remote_add(first, 2, witness)
    return hold(second, witness, seconds)


@sematic.func
def outer(witness: str, seconds: float) -> int:
    """Steps before a nested pipeline that holds, and one after it."""
    a = add(1, 1, witness)
    b = remote_add(a, 1, witness)
    c = add(b, 10, witness)
    return add(inner(c, witness, seconds), 100, witness)
