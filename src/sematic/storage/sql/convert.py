"""Records to row parameters and back. Plain field copies, fast enough for every write.

Runs, transitions and artifacts are rows of exactly their fields, as on the wire (tags as
a list): those mappings are the wire's (``sematic.core.wire``). Edges differ (below).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sematic.core import wire
from sematic.core.records import (
    ARTIFACT_FIELDS,
    EDGE_FIELDS,  # also the unique key of the edges table
    RUN_FIELDS,
    TRANSITION_FIELDS,
    EdgeRecord,
)

__all__ = [
    "ARTIFACT_FIELDS",
    "EDGE_FIELDS",
    "RUN_FIELDS",
    "TRANSITION_FIELDS",
    "artifact_params",
    "artifact_record",
    "edge_params",
    "edge_record",
    "run_params",
    "run_record",
    "transition_params",
    "transition_record",
]

run_params = wire.run_json
run_record = wire.run_record
transition_params = wire.transition_json
transition_record = wire.transition_record
artifact_params = wire.artifact_json
artifact_record = wire.artifact_record


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
