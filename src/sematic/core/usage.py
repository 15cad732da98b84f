"""What a run used: the pods it ran in (``execution``, recorded with the run) and what they
cost.

A run that ran in Kubernetes records ``{"attempts": [attempt, ...], "usage": usage}`` where
each attempt is a JSON object: ``job``, ``pod``, ``node``, ``node_type``, ``image``,
``image_digest``, ``requests``, ``limits`` (the pod's as admitted), ``started_at`` and
``finished_at`` (its container's own times, seconds since the epoch), ``ended`` (how it
ended: ``Succeeded`` or a cause such as ``OOMKilled``), ``exit_code``, ``message`` and
``events`` (what the scheduler and the kubelet said: ``at``, ``reason``, ``message``).

Usage is what was *reserved* for as long as the container ran: cpu-seconds (cpu request x
seconds), memory GiB-seconds and GPU-seconds, summed over attempts, retries included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.core.resources import quantity

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
NODE_TYPE_LABEL = "node.kubernetes.io/instance-type"
PRICE_KEYS = ("cpu_hour", "memory_gib_hour", "gpu_hour")


@dataclass(frozen=True, slots=True)
class Usage:
    """Resources reserved x seconds the container ran (``seconds``: the containers' time)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    memory_gib_seconds: float = 0.0
    gpu_seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.seconds + other.seconds,
            self.cpu_seconds + other.cpu_seconds,
            self.memory_gib_seconds + other.memory_gib_seconds,
            self.gpu_seconds + other.gpu_seconds,
        )

    def to_json(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "memory_gib_seconds": round(self.memory_gib_seconds, 3),
            "gpu_seconds": round(self.gpu_seconds, 3),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Usage:
        data = data or {}
        return cls(
            *(
                _number(data.get(k))
                for k in ("seconds", "cpu_seconds", "memory_gib_seconds", "gpu_seconds")
            )  # fmt: skip
        )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _requested(attempt: Mapping[str, Any], name: str) -> float:
    """The attempt's request of ``name`` (its limit when only that was given, as the API
    server then sets the request to it)."""
    for key in ("requests", "limits"):
        value = (attempt.get(key) or {}).get(name)
        if value is not None:
            try:
                return float(quantity(value))
            except ValueError:  # not a quantity: the API server would not have admitted it
                return 0.0
    return 0.0


def attempt_usage(attempt: Mapping[str, Any]) -> Usage:
    """One attempt's usage: nothing when its container never started."""
    started, finished = attempt.get("started_at"), attempt.get("finished_at")
    if not isinstance(started, int | float) or not isinstance(finished, int | float):
        return Usage()
    seconds = max(0.0, float(finished) - float(started))
    gpus = sum(_requested(attempt, name) for name in GPU_RESOURCES)
    return Usage(
        seconds,
        _requested(attempt, "cpu") * seconds,
        _requested(attempt, "memory") / 2.0**30 * seconds,
        gpus * seconds,
    )


def execution_json(attempts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What a run records of the pods it ran in."""
    listed = [dict(a) for a in attempts]
    total = sum((attempt_usage(a) for a in listed), Usage())
    return {"attempts": listed, "usage": total.to_json()}


def run_usage(execution: Mapping[str, Any] | None) -> Usage | None:
    """The usage a run recorded (None: it ran in no pod)."""
    if not execution:
        return None
    return Usage.from_json(execution.get("usage"))


@dataclass(frozen=True, slots=True)
class Prices:
    """Per hour: of a cpu, of a GiB of memory, of a GPU; ``by_node_type`` overrides them
    for nodes labelled ``node.kubernetes.io/instance-type`` with that value."""

    cpu_hour: float = 0.0
    memory_gib_hour: float = 0.0
    gpu_hour: float = 0.0
    by_node_type: Mapping[str, Prices] | None = None

    @classmethod
    def from_json(cls, data: Any, where: str = "prices") -> Prices:
        """``{"cpu_hour": 0.04, "memory_gib_hour": 0.005, "gpu_hour": 2.5,
        "node_types": {"g4dn.xlarge": {"gpu_hour": 0.53}}}``, or a clear error."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where}: expected a JSON object, got {data!r}")
        unknown = sorted(set(data) - {*PRICE_KEYS, "node_types"})
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                f"{', '.join(PRICE_KEYS)}, node_types"
            )
        values: dict[str, float] = {}
        for key in PRICE_KEYS:
            value = data.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"{where}.{key}: expected a number >= 0, got {value!r}")
            values[key] = float(value)
        types = data.get("node_types") or {}
        if not isinstance(types, Mapping):
            raise ConfigurationError(f"{where}.node_types: expected a JSON object")
        base = cls(values["cpu_hour"], values["memory_gib_hour"], values["gpu_hour"])
        by_type = {
            str(name): base.merged(cls.from_json(over, f"{where}.node_types.{name}"), over)
            for name, over in types.items()
        }
        return replace(base, by_node_type=by_type or None)

    def merged(self, other: Prices, given: Mapping[str, Any]) -> Prices:
        """``other``'s prices where ``given`` names them, this one's elsewhere."""
        return Prices(*(getattr(other if key in given else self, key) for key in PRICE_KEYS))

    def for_node_type(self, node_type: str | None) -> Prices:
        if node_type and self.by_node_type and node_type in self.by_node_type:
            return self.by_node_type[node_type]
        return self

    def cost(self, usage: Usage) -> float:
        return (
            usage.cpu_seconds * self.cpu_hour
            + usage.memory_gib_seconds * self.memory_gib_hour
            + usage.gpu_seconds * self.gpu_hour
        ) / 3600.0


def execution_cost(execution: Mapping[str, Any] | None, prices: Prices) -> float:
    """What a run's pods cost at ``prices`` (each attempt at its node type's prices)."""
    if not execution:
        return 0.0
    return sum(
        prices.for_node_type(a.get("node_type")).cost(attempt_usage(a))
        for a in execution.get("attempts") or []
        if isinstance(a, Mapping)
    )
