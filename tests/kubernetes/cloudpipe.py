"""Pipelines of the CloudResolver tests. The tests copy this file into a project folder,
package it into the cluster's registry and import it as ``cloudpipe``."""

from __future__ import annotations

import os
import time

import sematic
from sematic import KubernetesRequirements, ResourceRequirements, RetrySettings


def _requirements(**kwargs: object) -> ResourceRequirements:
    return ResourceRequirements(kubernetes=KubernetesRequirements(**kwargs))


@sematic.func(inline=False)
def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@sematic.func(inline=False, base_image_tag="cuda")
def total(values: list[int]) -> int:
    return sum(values)


@sematic.func
def squares(n: int) -> list[int]:
    return [square(i) for i in range(n)]


@sematic.func
def parity_pipeline(n: int) -> int:
    """The same value and artifacts whichever resolver runs it."""
    return total(squares(n))


@sematic.func(inline=False, resource_requirements=_requirements(node_selector={"pool": "none"}))
def nowhere(x: int) -> int:
    return x


@sematic.func
def unschedulable_pipeline(x: int) -> int:
    return nowhere(x)


@sematic.func(inline=False, resource_requirements=_requirements(limits={"nvidia.com/gpu": "1"}))
def on_a_gpu(x: int) -> int:
    return x


# Reached through a table, not by name: the pre-flight before submitting cannot see it.
_BY_KIND = {"gpu": on_a_gpu}


@sematic.func
def late_gpu_pipeline(x: int) -> int:
    return _BY_KIND["gpu"](x)


@sematic.func(inline=False, resource_requirements=_requirements(limits={"memory": "40Mi"}))
def hog(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


@sematic.func
def oom_pipeline(megabytes: int) -> int:
    return hog(megabytes)


@sematic.func(inline=False, retry=RetrySettings(exceptions=(ConnectionError,), retries=2))
def flaky(x: int) -> int:
    raise ConnectionError(f"service down for {x} (in pod {os.environ.get('SEMATIC_POD_NAME')})")


@sematic.func
def retry_pipeline(x: int) -> int:
    return flaky(x)


@sematic.func(inline=False)
def slow(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x + 1


@sematic.func
def slow_pipeline(x: int, seconds: float) -> int:
    """square in a Job, then a slow step in a Job: for cancel and a killed driver."""
    print(f"slow_pipeline({x}) in {os.environ.get('SEMATIC_POD_NAME', 'this process')}")
    return slow(square(x), seconds)


@sematic.func(inline=False)
def inc(x: int) -> int:
    return x + 1


@sematic.func
def chain_pipeline(x: int, n: int) -> int:
    """``n`` Jobs one after the other."""
    result = x
    for _ in range(n):
        result = inc(result)
    return result


@sematic.func(inline=False)
def one(i: int) -> int:
    return 1 + 0 * i


@sematic.func
def count(values: list[int]) -> int:
    return sum(values)


@sematic.func
def fan_pipeline(n: int) -> int:
    """``n`` independent Jobs, then their sum."""
    return count([one(i) for i in range(n)])


@sematic.func
def die(x: int, seconds: float) -> int:
    """Ends the process it runs in (a driver pod's) after ``seconds``, as a crash would."""
    time.sleep(seconds)
    print(f"die({x}): exiting the driver", flush=True)
    os._exit(3)


@sematic.func
def doomed_pipeline(x: int, seconds: float) -> int:
    """A long step in a Job while an inline step kills the driver: run it detached only."""
    return count([slow(x, 600.0), die(x, seconds)])


@sematic.func
def own_pod_pipeline(x: int) -> list[int]:
    """Two squares: one in a pod of its own (``own_pod``), one wherever it may go."""
    return [square(x).set(own_pod=True), square(x + 1)]
