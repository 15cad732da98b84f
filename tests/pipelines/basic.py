"""A small pipeline written the way users write them (module-level funcs)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sematic
from sematic import RetrySettings


@sematic.func
def add(a: float, b: float) -> float:
    return a + b


@sematic.func
def inc(x: int) -> int:
    return x + 1


@sematic.func
def pipeline(a: float, b: float) -> float:
    return add(add(a, b), b)


@sematic.func
def total(xs: list[int]) -> int:
    return sum(xs)


@sematic.func
def pair(x: int) -> tuple[int, str]:
    return x, str(x)


@sematic.func
def concat(a: int, b: str) -> str:
    return f"{a}:{b}"


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    label: str


@sematic.func
def evaluate(x: int) -> Metrics:
    return Metrics(accuracy=x / 10, label=f"m{x}")


@sematic.func
def double(x: float) -> float:
    return 2 * x


@sematic.func
def countdown(n: int) -> int:
    """Nested runs: the graph grows while it runs."""
    if n == 0:
        return 0
    return inc(countdown(n - 1))


@sematic.func
def fan_out(n: int) -> int:
    return total([inc(i) for i in range(n)])


@sematic.func
def make_list(n: int) -> list[int]:
    return [inc(i) for i in range(n)]  # type: ignore[misc]


@sematic.func
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@sematic.func
def fails_nested(x: int) -> int:
    return inc(boom(x))


@sematic.func
def outer_fails(x: int) -> int:
    return inc(fails_nested(x))


@sematic.func
def leaves_unused(x: int) -> int:
    inc(x)  # created and never used
    return x


@sematic.func
def leaves_unused_nested(x: int) -> int:
    inc(x)
    return inc(x)


ATTEMPTS: dict[str, int] = {}


@sematic.func(retry=RetrySettings(exceptions=(ConnectionError,), retries=2))
def flaky(key: str, failures: int) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= failures:
        raise ConnectionError(f"attempt {ATTEMPTS[key]}")
    return f"ok after {ATTEMPTS[key]}"


@sematic.func(retry=RetrySettings(exceptions=(ConnectionError,), retries=5))
def wrong_error(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    raise KeyError(key)


@sematic.func(timeout_mins=0.01)
def slow(seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return seconds


@sematic.func
def whoami(x: int) -> str:
    ctx = sematic.context()
    return f"{ctx.run_id}/{ctx.root_id}/{threading.current_thread().name}"


@sematic.func
def whoami_pipeline(x: int) -> list[str]:
    return [whoami(x), whoami(x + 1)]  # type: ignore[list-item]


@sematic.func
def returns_wrong_type(x: int) -> int:
    return str(x)  # type: ignore[return-value]


@sematic.func
def returns_wrong_future(x: int) -> int:
    return concat(x, "a")  # type: ignore[return-value]
