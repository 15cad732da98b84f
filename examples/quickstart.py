"""The main example: a small pipeline, run by LocalResolver (the default) and tracked."""

from __future__ import annotations

from dataclasses import dataclass

import sematic


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


@sematic.func(inline=False)
def heavy_square(x: int) -> int:
    """Runs in a worker process of its own, as it would run in a Kubernetes job."""
    return x * x


@sematic.func
def main(n: int) -> list[str]:
    return [pipeline(n), report(heavy_square(n), 0.0)]  # type: ignore[list-item]


if __name__ == "__main__":
    future = main(100)
    print(future.resolve())  # LocalResolver: runs and artifacts in ~/.sematic (SEMATIC_HOME)
    print(f"root run {future.id}")
