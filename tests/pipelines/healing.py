"""Pipelines for the healing tests: cached inline and worker steps, files as witnesses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sematic


def _mark(folder: str, name: str) -> None:
    """Leave a file behind each time a step really executes (counted by ``executions``)."""
    path = Path(folder) / f"{name}.{os.getpid()}.{time.monotonic_ns()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))


def executions(folder: str, name: str) -> int:
    return len(list(Path(folder).glob(f"{name}.*")))


@sematic.func(cache=True)
def cached_inline(x: int, witness: str) -> int:
    _mark(witness, "cached_inline")
    return x + 1000


@sematic.func(cache=True, inline=False)
def cached_remote(x: int, witness: str) -> int:
    _mark(witness, "cached_remote")
    return x + 2000


@sematic.func(cache=True)
def cached_sum(a: int, b: int, witness: str) -> int:
    _mark(witness, "cached_sum")
    return a + b


@sematic.func
def healing_pipeline(x: int, witness: str) -> int:
    """3000 + 2x: two cached steps side by side, and a cached step downstream of both."""
    return cached_sum(cached_inline(x, witness), cached_remote(x, witness), witness)
