"""Retries, written the way Sematic 0.41's docs write them: ``@sematic.func(retry=...)``.

``fetch_prices`` asks a rate-limited price service, which turns away the first two requests
of every pipeline run for a day: ``RetrySettings`` lists ``RateLimitedError``, so each
fetch fails twice and succeeds on its third attempt. ``average`` runs in its own worker (a
pod on the cloud) on a machine that may be preempted at any time; it is retried on
``PreemptedError`` until it gets to finish.

    python examples/sematic041/retries.py [silent|local|cloud] [--detach]
"""

# Standard Library
import random
import sys
from collections import Counter
from dataclasses import dataclass

# Sematic
import sematic
from sematic import KubernetesResourceRequirements, ResourceRequirements, RetrySettings


class RateLimitedError(Exception):
    pass


class PreemptedError(Exception):
    pass


class PriceService:
    """A stand-in for a remote API that refuses the first ``refusals`` requests it gets
    for each day in each pipeline run."""

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.requests = Counter()

    def prices(self, day: str):
        key = (sematic.context().root_id, day)
        self.requests[key] += 1
        if self.requests[key] <= self.refusals:
            raise RateLimitedError(f"{day}: too many requests (request {self.requests[key]})")
        rng = random.Random(day)
        return [round(rng.uniform(90, 110), 2) for _ in range(5)], self.requests[key]


SERVICE = PriceService(refusals=2)


@dataclass
class Prices:
    day: str
    values: list[float]
    requests: int


@dataclass
class Quote:
    day: str
    average: float
    requests: int


@sematic.func(retry=RetrySettings(exceptions=(RateLimitedError,), retries=3))
def fetch_prices(day: str) -> Prices:
    """Inline: every attempt runs in the same process, which keeps the service's count."""
    values, requests = SERVICE.prices(day)
    return Prices(day=day, values=values, requests=requests)


@sematic.func(
    standalone=True,
    resource_requirements=ResourceRequirements(
        kubernetes=KubernetesResourceRequirements(requests={"cpu": "200m", "memory": "256Mi"})
    ),
    retry=RetrySettings(exceptions=(PreemptedError,), retries=20),
)
def average(prices: Prices) -> Quote:
    """On a preemptible machine: half of the attempts are cut short."""
    if random.random() < 0.5:
        raise PreemptedError("the machine was reclaimed before the average was computed")
    mean = round(sum(prices.values) / len(prices.values), 2)
    return Quote(day=prices.day, average=mean, requests=prices.requests)


@sematic.func
def pipeline(days: list[str]) -> list[Quote]:
    """Averages each day's prices, however often the service or the machines fail."""
    return [average(fetch_prices(day)) for day in days]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "local"
    future = pipeline(["2024-03-01", "2024-03-02"]).set(
        name="Retries (0.41 style)", tags=["sematic041", "retries"]
    )
    if mode == "silent":
        runner = sematic.SilentRunner()
    elif mode == "cloud":
        runner = sematic.CloudRunner(detach="--detach" in sys.argv)
    else:
        runner = sematic.LocalRunner()
    print(runner.run(future))


if __name__ == "__main__":
    main()
