"""Pipelines the LocalResolver benchmark runs (a module, so worker processes import them)."""

from __future__ import annotations

import sematic


@sematic.func
def inc(x: int) -> int:
    return x + 1


@sematic.func
def total(xs: list[int]) -> int:
    return sum(xs)


@sematic.func
def chain(n: int) -> int:
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x  # type: ignore[return-value]


@sematic.func
def fan_out(n: int) -> int:
    return total([inc(i) for i in range(n)])  # type: ignore[return-value]


@sematic.func(inline=False)
def burn(i: int, seconds: float) -> int:
    """CPU-bound work for about ``seconds``."""
    import time

    deadline = time.process_time() + seconds
    count = 0
    while time.process_time() < deadline:
        count += 1
    return count


@sematic.func
def burn_all(n: int, seconds: float) -> int:
    return total([burn(i, seconds) for i in range(n)])  # type: ignore[return-value]
