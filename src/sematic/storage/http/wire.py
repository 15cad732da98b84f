"""Records as JSON, the same shape on both sides of the HTTP API.

A record is a JSON object with exactly the fields of its dataclass (``tags`` as a list).
The server validates what it receives strictly (``sematic.server.writes``); the client
trusts what the server sends back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord

RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
ARTIFACT_FIELDS = tuple(f.name for f in fields(ArtifactRecord))
TRANSITION_FIELDS = tuple(f.name for f in fields(TransitionRecord))
EDGE_FIELDS = tuple(f.name for f in fields(EdgeRecord))

# The header of a payload upload that carries the type key its artifact id was computed
# from (percent-encoded UTF-8): the server checks the payload against the id with it.
TYPE_KEY_HEADER = "X-Sematic-Type-Key"


def run_json(run: RunRecord) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in RUN_FIELDS}
    data["tags"] = list(run.tags)
    return data


def run_record(data: Mapping[str, Any]) -> RunRecord:
    values = {name: data[name] for name in RUN_FIELDS}
    values["tags"] = tuple(values["tags"])
    return RunRecord(**values)


def artifact_json(artifact: ArtifactRecord) -> dict[str, Any]:
    return {name: getattr(artifact, name) for name in ARTIFACT_FIELDS}


def artifact_record(data: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(**{name: data[name] for name in ARTIFACT_FIELDS})


def transition_json(transition: TransitionRecord) -> dict[str, Any]:
    return {"run_id": transition.run_id, "state": transition.state, "at": transition.at}


def edge_json(edge: EdgeRecord) -> dict[str, Any]:
    return {name: getattr(edge, name) for name in EDGE_FIELDS}


def edge_record(data: Mapping[str, Any]) -> EdgeRecord:
    return EdgeRecord(**{name: data[name] for name in EDGE_FIELDS})


def batch(
    runs: Sequence[RunRecord],
    transitions: Sequence[TransitionRecord],
    artifacts: Sequence[ArtifactRecord],
    edges: Sequence[EdgeRecord],
) -> bytes:
    """The body of ``POST /api/v1/write``: everything one ``MetadataStore.write`` holds."""
    return json.dumps(
        {
            "runs": [run_json(run) for run in runs],
            "transitions": [transition_json(t) for t in transitions],
            "artifacts": [artifact_json(a) for a in artifacts],
            "edges": [edge_json(e) for e in edges],
        },
        separators=(",", ":"),
    ).encode()
