"""What is recorded about runs and artifacts: plain values, independent of any database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    state: str
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


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """A run entered ``state`` at time ``at``."""

    run_id: str
    state: str
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
