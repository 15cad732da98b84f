"""The contract between a resolver and a worker (a local process or a Kubernetes pod).

A job names the function, the run, where its inputs are and where to report. The worker
answers with a result: the output artifact, a nested future, or the failure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# In a Kubernetes pod the result goes to the container's termination message, which the
# cluster keeps in the pod's status (at most 4096 bytes).
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class InputRef:
    artifact_id: str
    type_description: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkerJob:
    run_id: str
    root_id: str
    function_path: str  # module.qualname
    inputs: dict[str, InputRef]
    artifact_url: str
    result_path: str  # where the worker writes its WorkerResult (JSON); TERMINATION_LOG in a pod
    timeout_mins: float | None = None
    main_path: str | None = None  # the user's script, when the function lives in __main__
    sys_path: list[str] = field(default_factory=list)
    # When set, payloads go through this Sematic server's API instead of ``artifact_url``.
    # Its API key, if any, is in the worker's environment (SEMATIC_API_KEY), never here.
    server_url: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        data = json.loads(text)
        data["inputs"] = {k: InputRef(**v) for k, v in data["inputs"].items()}
        return cls(**data)


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """``kind`` is "resolved", "nested" or "failed"; or, from a pod whose result is too long
    for its termination message (a value's summary with a picture...), "elsewhere": the
    full result's JSON is then the ``bytes`` artifact ``result_artifact``."""

    kind: str
    artifact: dict[str, Any] | None = None  # id, type_description, summary, size
    pickle_path: str | None = None  # the nested future or the exception, cloudpickled
    # In a pod: the same pickle, kept in the artifact store as a ``bytes`` artifact
    # ({"id", "type_description"}), since the pod's files vanish with it.
    pickle_artifact: dict[str, Any] | None = None
    exception_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    result_artifact: dict[str, Any] | None = None  # {"id", "type_description"}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerResult:
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class WarmPod:
    """What a warm pod is told at its start (JSON in ``SEMATIC_WARM_POOL``;
    ``sematic.worker.warm``)."""

    server_url: str
    channel: str  # where its steps come
    results: str  # where it reports them
    orphan_seconds: float = 600.0
    sys_path: list[str] = field(default_factory=list)
    main_path: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WarmPod:
        return cls(**json.loads(text))
