"""Pipelines for the packed-storage tests: small values, one large one, a worker step."""

from __future__ import annotations

import sematic
from tests.pipelines.healing import _mark

LARGE = 10_000  # characters of the large value: well above the packing threshold


@sematic.func(cache=True)
def small_inline(x: int, witness: str) -> int:
    _mark(witness, "small_inline")
    return x + 1


@sematic.func(cache=True, inline=False)
def small_remote(x: int, witness: str) -> int:
    """Runs in a worker process: reads a packed input, writes a packed output."""
    _mark(witness, "small_remote")
    return x * 10


@sematic.func(cache=True)
def large_text(x: int, witness: str) -> str:
    _mark(witness, "large_text")
    return str(x % 10) * LARGE


@sematic.func(inline=False)
def measure(text: str, n: int) -> int:
    """Runs in a worker process: reads a large input from its file."""
    return len(text) + n


@sematic.func
def packed_pipeline(x: int, witness: str) -> int:
    """measure(large_text(x), small_remote(small_inline(x))) == LARGE + 10 * (x + 1)."""
    return measure(large_text(x, witness), small_remote(small_inline(x, witness), witness))
