"""The HTTP API's wire format, one for both sides: the server (``sematic.server``) and its
client (``sematic.storage.http``). Pure functions over records; no I/O.

A record is a JSON object with exactly the fields of its dataclass (``tags`` as a list).
The server validates what it receives strictly (``sematic.server.writes``); the client
trusts what the server sends back. The SQL store maps runs, transitions and artifacts to
rows the same way (``sematic.storage.sql.convert``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sematic.core.engine import State
from sematic.core.records import (
    ARTIFACT_FIELDS,
    EDGE_FIELDS,
    RUN_FIELDS,
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)

# The header of a payload upload that carries the type key its artifact id was computed
# from (percent-encoded UTF-8): the server checks the payload against the id with it.
TYPE_KEY_HEADER = "X-Sematic-Type-Key"
# The content type of several payloads in one body (``payload_batch``).
PAYLOADS_TYPE = "application/x-sematic-payloads"
# What the server keeps of one run's log (``PUT /runs/ID/logs``); a client sends the end
# of a longer one.
MAX_LOG_BYTES = 16 * 1024 * 1024
# Run fields a server older than them does not send (the record's default is taken).
_NEWER_RUN_FIELDS = frozenset({"execution"})
_FRAME_HEADER_MAX = 16 * 1024


def run_json(run: RunRecord) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in RUN_FIELDS}
    data["tags"] = list(run.tags)
    data["state"] = State(run.state).value  # a plain string for JSON and database drivers
    return data


def run_record(data: Mapping[str, Any]) -> RunRecord:
    # A server older than a field does not send it: the record's default.
    values = {
        name: data[name] for name in RUN_FIELDS if name in data or name not in _NEWER_RUN_FIELDS
    }
    values["tags"] = tuple(values["tags"])
    values["state"] = State(values["state"])
    return RunRecord(**values)


def run_detail_json(run: RunRecord, transitions: Sequence[TransitionRecord]) -> dict[str, Any]:
    """``GET /runs/ID``: the run with the states it went through (``detail_transitions``)."""
    data = run_json(run)
    data["transitions"] = [{"state": State(t.state).value, "at": t.at} for t in transitions]
    return data


def detail_transitions(run_id: str, detail: Mapping[str, Any]) -> list[TransitionRecord]:
    """The transitions of a ``run_detail_json``."""
    return [TransitionRecord(run_id, State(t["state"]), t["at"]) for t in detail["transitions"]]


def transition_json(transition: TransitionRecord) -> dict[str, Any]:
    return {
        "run_id": transition.run_id,
        "state": State(transition.state).value,
        "at": transition.at,
    }


def transition_record(data: Mapping[str, Any]) -> TransitionRecord:
    return TransitionRecord(run_id=data["run_id"], state=State(data["state"]), at=data["at"])


def artifact_json(artifact: ArtifactRecord) -> dict[str, Any]:
    return {name: getattr(artifact, name) for name in ARTIFACT_FIELDS}


def artifact_record(data: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(**{name: data[name] for name in ARTIFACT_FIELDS})


def edge_json(edge: EdgeRecord) -> dict[str, Any]:
    return {name: getattr(edge, name) for name in EDGE_FIELDS}


def edge_record(data: Mapping[str, Any]) -> EdgeRecord:
    return EdgeRecord(**{name: data[name] for name in EDGE_FIELDS})


def cancel_json(cancel: CancelRecord) -> dict[str, Any]:
    return {"root_id": cancel.root_id, "reason": cancel.reason, "requested_at": cancel.requested_at}


def cancel_record(data: Mapping[str, Any]) -> CancelRecord:
    return CancelRecord(data["root_id"], data["reason"], data["requested_at"])


def batch(
    runs: Sequence[RunRecord],
    transitions: Sequence[TransitionRecord],
    artifacts: Sequence[ArtifactRecord],
    edges: Sequence[EdgeRecord],
    reopened: Sequence[str] = (),
) -> bytes:
    """The body of ``POST /api/v1/write``: everything one ``MetadataStore.write`` holds."""
    return json.dumps(
        {
            "runs": [run_json(run) for run in runs],
            "transitions": [transition_json(t) for t in transitions],
            "artifacts": [artifact_json(a) for a in artifacts],
            "edges": [edge_json(e) for e in edges],
            **({"reopened": list(reopened)} if reopened else {}),
        },
        separators=(",", ":"),
    ).encode()


def payload_batch(items: Sequence[tuple[str, str, bytes]]) -> bytes:
    """The body of ``POST /api/v1/payloads``: (artifact id, type key, payload) each.

    Each item is a 4-byte big-endian length, a JSON header ``{"id", "type_key", "size"}``
    of that length, then ``size`` bytes of payload.
    """
    parts: list[bytes] = []
    for artifact_id, type_key, payload in items:
        header = json.dumps(
            {"id": artifact_id, "type_key": type_key, "size": len(payload)},
            separators=(",", ":"),
        ).encode()
        parts += [len(header).to_bytes(4, "big"), header, payload]
    return b"".join(parts)


def read_payload_batch(body: bytes) -> Iterator[tuple[str, str, bytes]]:
    """The items of a ``payload_batch`` body; ValueError saying what is wrong with it."""
    view = memoryview(body)
    offset = index = 0
    while offset < len(view):
        where = f"payloads[{index}]"
        if offset + 4 > len(view):
            raise ValueError(f"{where}: the body ends inside a header length")
        length = int.from_bytes(view[offset : offset + 4], "big")
        offset += 4
        if not 0 < length <= _FRAME_HEADER_MAX or offset + length > len(view):
            raise ValueError(f"{where}: bad header length {length}")
        try:
            header = json.loads(bytes(view[offset : offset + length]))
        except ValueError:
            raise ValueError(f"{where}: the header is not JSON") from None
        offset += length
        if not isinstance(header, dict) or set(header) != {"id", "type_key", "size"}:
            raise ValueError(f"{where}: the header must have exactly id, type_key and size")
        artifact_id, type_key, size = header["id"], header["type_key"], header["size"]
        if not isinstance(artifact_id, str) or not isinstance(type_key, str):
            raise ValueError(f"{where}: id and type_key must be strings")
        if type(size) is not int or size < 0 or offset + size > len(view):
            raise ValueError(f"{where}: bad size {size!r}")
        yield artifact_id, type_key, bytes(view[offset : offset + size])
        offset += size
        index += 1
