"""A dynamic graph, written the way Sematic 0.41's docs write pipelines.

The shape of the graph is only known while it runs: ``pipeline`` fans out over the
numbers ``draw_numbers`` returns, each number takes the branch its value picks (halve an
even number, or three times plus one an odd one), and ``collatz`` calls itself until it
reaches 1, so the deeper a number's chain, the more runs it adds to the graph.

    python examples/sematic041/dynamic_graph.py [silent|local|cloud] [--detach]
"""

# ruff: noqa: UP006, UP035 - typing.List and typing.Dict, as 0.41 programs wrote them

# Standard Library
import random
import sys
from dataclasses import dataclass, replace
from typing import Dict, List

# Sematic
import sematic
from sematic import KubernetesResourceRequirements, ResourceRequirements

SMALL_POD = ResourceRequirements(
    kubernetes=KubernetesResourceRequirements(requests={"cpu": "200m", "memory": "256Mi"})
)


@dataclass
class Stopping:
    """How many steps each starting number takes to reach 1, and the longest chain."""

    steps: Dict[int, int]
    longest_start: int
    longest_steps: int
    verdict: str


@sematic.func(standalone=True, resource_requirements=SMALL_POD)
def draw_numbers(count: int, seed: int) -> List[int]:
    """Starting numbers, drawn in a pod of their own on the cloud."""
    rng = random.Random(seed)
    return [rng.randint(2, 30) for _ in range(count)]


@sematic.func
def halve(n: int) -> int:
    return n // 2


@sematic.func
def triple_plus_one(n: int) -> int:
    return 3 * n + 1


@sematic.func
def next_value(n: int) -> int:
    """Picks the branch from the value: a function returning another function's future."""
    if n % 2 == 0:
        return halve(n)
    return triple_plus_one(n)


@sematic.func
def collatz(n: int, steps: int) -> int:
    """Recursion: each call adds the next step (and another call of itself) to the graph."""
    if n == 1:
        return steps
    return collatz(next_value(n), steps + 1)


@sematic.func
def find_longest(starts: List[int], steps: List[int]) -> Stopping:
    by_start = dict(zip(starts, steps, strict=True))
    longest = max(by_start, key=lambda start: (by_start[start], start))
    return Stopping(
        steps=by_start,
        longest_start=longest,
        longest_steps=by_start[longest],
        verdict="",
    )


@sematic.func
def long_chain(result: Stopping) -> Stopping:
    verdict = f"LONG: {result.longest_start} takes {result.longest_steps} steps"
    return replace(result, verdict=verdict)


@sematic.func
def short_chain(result: Stopping) -> Stopping:
    return replace(result, verdict=f"short: at most {result.longest_steps} steps")


@sematic.func
def judge(result: Stopping) -> Stopping:
    if result.longest_steps > 15:
        return long_chain(result)
    return short_chain(result)


@sematic.func
def fan_out(starts: List[int]) -> Stopping:
    """One chain per number drawn: how many is only known once ``draw_numbers`` ran."""
    steps = [collatz(n, 0) for n in starts]
    return judge(find_longest(starts, steps))


@sematic.func
def pipeline(count: int, seed: int) -> Stopping:
    """
    ## Stopping times

    Draws `count` numbers and follows each one's Collatz chain down to 1.
    """
    return fan_out(draw_numbers(count, seed))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "local"
    future = pipeline(4, 41).set(name="Dynamic graph (0.41 style)", tags=["sematic041", "dynamic"])
    if mode == "silent":
        runner = sematic.SilentRunner()
    elif mode == "cloud":
        runner = sematic.CloudRunner(detach="--detach" in sys.argv)
    else:
        runner = sematic.LocalRunner()
    print(runner.run(future))


if __name__ == "__main__":
    main()
