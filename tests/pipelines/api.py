"""Pipelines recorded through the HTTP API in tests: deterministic outputs (no pids, no times)."""

from __future__ import annotations

import sematic
from tests.pipelines.local import remote_nested, remote_square, square


@sematic.func
def add_all(values: list[int]) -> int:
    return sum(values)


@sematic.func
def inline_and_workers(n: int, witness: str) -> int:
    """Inline steps, worker steps, and a worker that returns a future (the graph grows)."""
    values = [square(i, witness) for i in range(n)] + [remote_square(i, witness) for i in range(n)]
    return add_all([*values, remote_nested(n, witness)])  # type: ignore[list-item]


@sematic.func
def inc(x: int) -> int:
    return x + 1


@sematic.func
def chain(n: int) -> int:
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x  # type: ignore[return-value]


@sematic.func
def fan_out(n: int) -> int:
    return add_all([inc(i) for i in range(n)])  # type: ignore[return-value]
