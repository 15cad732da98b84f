"""What ``sematic runs`` shows of the pods runs ran in: what they reserved, what it cost,
and each attempt (Job, pod, node, image, resources, how it ended, the scheduler's events)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sematic.core import variables
from sematic.core.errors import ConfigurationError
from sematic.core.records import RunRecord
from sematic.core.usage import Prices, Usage, execution_cost, run_usage


@dataclass(frozen=True, slots=True)
class PipelineUsage:
    """The sum over runs that ran in pods (None: none did), and its cost at the prices."""

    usage: Usage | None
    cost: float


def prices_from_settings() -> Prices | None:
    """The price table of ``$SEMATIC_PRICES`` (a JSON object, see ``Prices.from_json``),
    else of the file ``$SEMATIC_HOME/prices.json``; None without one."""
    from sematic.resolvers.settings import home_from_environment

    text, where = os.environ.get(variables.PRICES), f"${variables.PRICES}"
    if not text:
        path = home_from_environment() / "prices.json"
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigurationError(f"cannot read the price table {path}: {error}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigurationError(f"{where}: the price table is not JSON: {error}") from error
    return Prices.from_json(data, where)


def pipeline_usage(runs: Iterable[RunRecord], prices: Prices | None) -> PipelineUsage:
    total: Usage | None = None
    cost = 0.0
    for run in runs:
        used = run_usage(run.execution)
        if used is None:
            continue
        total = used if total is None else total + used
        if prices is not None:
            cost += execution_cost(run.execution, prices)
    return PipelineUsage(total, cost)


def usage_text(usage: Usage | None) -> str:
    """``12.0 cpu·s, 3.2 GiB·s, 0 GPU·s``; ``-`` when nothing ran in a pod."""
    if usage is None:
        return "-"
    return (
        f"{usage.cpu_seconds:.1f} cpu·s, {usage.memory_gib_seconds:.1f} GiB·s, "
        f"{usage.gpu_seconds:.0f} GPU·s"
    )


def _clock(at: object) -> str:
    if not isinstance(at, int | float):
        return "?"
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def _resources(values: object) -> str:
    if not isinstance(values, dict) or not values:
        return "none"
    return " ".join(f"{k}={v}" for k, v in sorted(values.items()))


def pod_details(run: RunRecord, prices: Prices | None) -> Iterator[str]:
    """Lines describing each pod ``run`` ran in (nothing for a run that ran in none)."""
    execution = run.execution
    if not execution:
        return
    yield f"Kubernetes job {run.name} (run {run.id}):"
    for number, attempt in enumerate(execution.get("attempts") or [], start=1):
        node = attempt.get("node") or "no node"
        if attempt.get("node_type"):
            node += f" ({attempt['node_type']})"
        image = attempt.get("image") or "?"
        if attempt.get("image_digest"):
            image += f" ({attempt['image_digest']})"
        warm = " (warm pod)" if attempt.get("warm") else ""
        yield (f"  attempt {number}: Job {attempt.get('job')}{warm}, pod {attempt.get('pod')}, "
               f"on {node}")  # fmt: skip
        yield f"    image {image}"
        yield (
            f"    requests {_resources(attempt.get('requests'))}; "
            f"limits {_resources(attempt.get('limits'))}"
        )
        ended = str(attempt.get("ended") or "?")
        if attempt.get("exit_code") is not None:
            ended += f" (exit code {attempt['exit_code']})"
        started, finished = attempt.get("started_at"), attempt.get("finished_at")
        ran = ""
        if isinstance(started, int | float) and isinstance(finished, int | float):
            ran = f", ran {_clock(started)}-{_clock(finished)} ({finished - started:.1f}s)"
        message = str(attempt.get("message") or "").strip().splitlines()
        yield f"    ended {ended}{ran}" + (f": {message[0]}" if message else "")
        for event in attempt.get("events") or []:
            count = event.get("count") or 1
            times = f" (x{count})" if count > 1 else ""
            said = f"{event.get('reason')}{times}: {event.get('message')}"
            yield f"    {_clock(event.get('at'))} {said}"
    used = run_usage(execution)
    line = f"  reserved {usage_text(used)}"
    if prices is not None:
        line += f"; cost {execution_cost(execution, prices):.4f}"
    yield line
