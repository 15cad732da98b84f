"""What is recorded about runs and artifacts: plain values, independent of any database."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from sematic.core.engine import State

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1  # the widest integer a metadata store (BIGINT, SQLite) keeps

# Ids as every reader checks them (``fullmatch``): a run id is 32 lowercase hex digits, an
# artifact id 64 (a sha256 hex digest, as is a cache key).
RUN_ID_PATTERN = "[0-9a-f]{32}"
ARTIFACT_ID_PATTERN = "[0-9a-f]{64}"
RUN_ID = re.compile(RUN_ID_PATTERN)
ARTIFACT_ID = re.compile(ARTIFACT_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run: a call of a function within a pipeline (the root run is the pipeline).

    Times are seconds since the epoch (UTC). ``inputs`` maps parameter names to artifact
    ids; ``output`` is the output artifact id once RESOLVED.
    """

    id: str
    root_id: str
    parent_id: str | None
    name: str
    function_path: str  # module.qualname, how a worker imports it
    state: State
    created_at: float
    updated_at: float
    inline: bool = True
    source_code: str | None = None
    docstring: str | None = None
    cache_key: str | None = None
    cache_hit: bool = False
    resource_requirements: dict[str, Any] | None = None
    base_image_tag: str | None = None
    container_image: str | None = None
    tags: tuple[str, ...] = ()
    inputs: dict[str, str] = field(default_factory=dict)
    output: str | None = None
    nested_run_id: str | None = None  # the run whose output became this run's output
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    # Who submitted the pipeline: on a team server, the user of the API key that wrote the
    # run (set by the server, whatever the client sent); locally, the OS user.
    submitted_by: str | None = None
    # Where it ran, when in pods: each attempt's Job, pod, node, image, resources, how it
    # ended, and what the pods reserved for how long (``sematic.core.usage``).
    execution: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """A run entered ``state`` at time ``at``."""

    run_id: str
    state: State
    at: float


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A value, stored once: ``id`` is the sha256 of its type key and serialized bytes.

    ``type_description`` says how to read it back; ``summary`` is JSON for display (large
    values truncated). The payload itself lives in the artifact store, never here.
    """

    id: str
    type_description: dict[str, Any]
    summary: Any
    size: int
    created_at: float


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    """An artifact flowing from a run's output into another run's parameter.

    ``source_run_id`` is None for a value given by the caller; ``destination_run_id`` is
    None for the pipeline's final output.
    """

    source_run_id: str | None
    destination_run_id: str | None
    parameter: str | None
    artifact_id: str


@dataclass(frozen=True, slots=True)
class CancelRecord:
    """Someone asked at ``requested_at`` to cancel the pipeline whose root run is ``root_id``."""

    root_id: str
    reason: str
    requested_at: float


RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
ARTIFACT_FIELDS = tuple(f.name for f in fields(ArtifactRecord))
TRANSITION_FIELDS = tuple(f.name for f in fields(TransitionRecord))
EDGE_FIELDS = tuple(f.name for f in fields(EdgeRecord))


def first_unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """The first place in ``value`` holding what no metadata store keeps, and why.

    ``value`` is a record or JSON-like data (dicts, lists, tuples, scalars); ``where``
    names it. Refused: a float that is not finite (JSON cannot write it, and a reader of
    the row would fail) and an integer outside signed 64 bits. Returns ``(path, problem)``
    such as ``("runs[0].started_at", "must be a finite number, not inf")``, or None.
    """
    found = _unstorable(value)
    if found is None:
        return None
    steps, problem = found
    path = where
    for step in reversed(steps):
        path += f"[{step}]" if isinstance(step, int) else f".{step}"
    return path, problem


_PLAIN = frozenset({str, bool})


def _unstorable(item: Any) -> tuple[list[str | int], str] | None:
    """(the path to the problem, innermost step first; the problem) or None."""
    kind = type(item)
    if kind is str or kind is bool or item is None:
        return None
    if kind is float or isinstance(item, float):
        return None if math.isfinite(item) else ([], f"must be a finite number, not {item}")
    if isinstance(item, int):
        if INT64_MIN <= item <= INT64_MAX:
            return None
        return [], f"must be an integer between {INT64_MIN} and {INT64_MAX}"
    if isinstance(item, dict):
        pairs: Any = item.items()
    elif isinstance(item, list | tuple):
        pairs = enumerate(item)
    elif is_dataclass(item) and not isinstance(item, type):
        pairs = ((spec.name, getattr(item, spec.name)) for spec in fields(item))
    else:
        return None
    for step, inner in pairs:
        if type(inner) in _PLAIN or inner is None:
            continue
        found = _unstorable(inner)
        if found is not None:
            found[0].append(step)
            return found
    return None
