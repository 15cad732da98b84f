"""The main example: a small pipeline, resolved in this process."""

from __future__ import annotations

from dataclasses import dataclass

import sematic
from sematic import SilentResolver


@dataclass(frozen=True)
class Stats:
    mean: float
    spread: float


@sematic.func
def load(n: int) -> list[float]:
    """Pretend to load n measurements."""
    return [float(i % 7) for i in range(n)]


@sematic.func
def summarize(values: list[float]) -> Stats:
    mean = sum(values) / len(values)
    return Stats(mean=mean, spread=max(values) - min(values))


@sematic.func
def report(mean: float, spread: float) -> str:
    return f"mean={mean:.3f} spread={spread:.1f}"


@sematic.func
def pipeline(n: int) -> str:
    stats = summarize(load(n))
    return report(stats.mean, stats.spread)


if __name__ == "__main__":
    print(pipeline(100).resolve(SilentResolver()))
