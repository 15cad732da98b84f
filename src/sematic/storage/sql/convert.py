"""Records to row parameters and back. Plain field copies, fast enough for every write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord

RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
ARTIFACT_FIELDS = tuple(f.name for f in fields(ArtifactRecord))
TRANSITION_FIELDS = tuple(f.name for f in fields(TransitionRecord))
# Also the unique key of the edges table.
EDGE_FIELDS = tuple(f.name for f in fields(EdgeRecord))


def run_params(run: RunRecord) -> dict[str, Any]:
    params = {name: getattr(run, name) for name in RUN_FIELDS}
    params["tags"] = list(run.tags)
    return params


def run_record(row: Mapping[str, Any]) -> RunRecord:
    values = {name: row[name] for name in RUN_FIELDS}
    values["tags"] = tuple(values["tags"])
    return RunRecord(**values)


def transition_params(transition: TransitionRecord) -> dict[str, Any]:
    return {"run_id": transition.run_id, "state": transition.state, "at": transition.at}


def transition_record(row: Mapping[str, Any]) -> TransitionRecord:
    return TransitionRecord(run_id=row["run_id"], state=row["state"], at=row["at"])


def artifact_params(artifact: ArtifactRecord) -> dict[str, Any]:
    return {name: getattr(artifact, name) for name in ARTIFACT_FIELDS}


def artifact_record(row: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(**{name: row[name] for name in ARTIFACT_FIELDS})


def edge_params(edge: EdgeRecord) -> dict[str, Any]:
    # '' stands for None: NULLs never compare equal, so they would defeat the unique key.
    return {
        "source_run_id": _blank(edge.source_run_id),
        "destination_run_id": _blank(edge.destination_run_id),
        "parameter": _blank(edge.parameter),
        "artifact_id": edge.artifact_id,
    }


def edge_record(row: Mapping[str, Any]) -> EdgeRecord:
    return EdgeRecord(
        source_run_id=row["source_run_id"] or None,
        destination_run_id=row["destination_run_id"] or None,
        parameter=row["parameter"] or None,
        artifact_id=row["artifact_id"],
    )


def _blank(value: str | None) -> str:
    return "" if value is None else value
