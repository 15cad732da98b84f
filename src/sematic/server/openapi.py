"""The OpenAPI 3.1 description of the API, written by hand (tests check it lists every route)."""

from __future__ import annotations

from typing import Any

import sematic
from sematic.core import wire
from sematic.core.engine import State
from sematic.core.records import ARTIFACT_ID_PATTERN, INT64_MAX, RUN_ID_PATTERN

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
# Ids as the server checks them; an integer as the metadata store keeps it (signed 64 bits).
_RUN_ID_PATTERN = f"^{RUN_ID_PATTERN}$"
_ARTIFACT_ID_PATTERN = f"^{ARTIFACT_ID_PATTERN}$"
_RUN_REF = {"type": "string", "pattern": _RUN_ID_PATTERN}
_NULLABLE_RUN_REF = {"type": ["string", "null"], "pattern": _RUN_ID_PATTERN}
_ARTIFACT_REF = {"type": "string", "pattern": _ARTIFACT_ID_PATTERN}
_NULLABLE_ARTIFACT_REF = {"type": ["string", "null"], "pattern": _ARTIFACT_ID_PATTERN}
_STATES = sorted(state.value for state in State)

_RUN = {
    "type": "object",
    "description": "A run; times are seconds since the epoch (UTC), finite numbers (a "
    "non-finite time recorded by an older version is shown as null).",
    "required": [
        "id",
        "root_id",
        "parent_id",
        "name",
        "function_path",
        "state",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "id": _RUN_REF,
        "root_id": _RUN_REF,
        "parent_id": _NULLABLE_RUN_REF,
        "name": {"type": "string"},
        "function_path": {"type": "string"},
        "state": {"type": "string", "enum": _STATES},
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
        "inline": {"type": "boolean"},
        "source_code": _NULLABLE_STR,
        "docstring": _NULLABLE_STR,
        "cache_key": _NULLABLE_ARTIFACT_REF,
        "cache_hit": {"type": "boolean"},
        "resource_requirements": {"type": ["object", "null"]},
        "base_image_tag": _NULLABLE_STR,
        "container_image": _NULLABLE_STR,
        "tags": {"type": "array", "items": {"type": "string"}},
        "inputs": {"type": "object", "additionalProperties": _ARTIFACT_REF},
        "output": _NULLABLE_ARTIFACT_REF,
        "nested_run_id": _NULLABLE_RUN_REF,
        "exception_type": _NULLABLE_STR,
        "exception_message": _NULLABLE_STR,
        "traceback": _NULLABLE_STR,
        "started_at": _NULLABLE_NUM,
        "ended_at": _NULLABLE_NUM,
    },
}
_ARTIFACT = {
    "type": "object",
    "required": ["id", "type_description", "summary", "size", "created_at"],
    "properties": {
        "id": _ARTIFACT_REF,
        "type_description": {
            "type": "object",
            "required": ["type_key"],
            "properties": {"type_key": {"type": "string"}},
        },
        "summary": {"description": "JSON for display; large values truncated."},
        "size": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
        "created_at": {"type": "number"},
    },
}
_EDGE = {
    "type": "object",
    "required": ["source_run_id", "destination_run_id", "parameter", "artifact_id"],
    "properties": {
        "source_run_id": _NULLABLE_RUN_REF,
        "destination_run_id": _NULLABLE_RUN_REF,
        "parameter": _NULLABLE_STR,
        "artifact_id": _ARTIFACT_REF,
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_SCHEMAS: dict[str, Any] = {
    "Run": _RUN,
    "RunDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Run"},
            {
                "type": "object",
                "properties": {
                    "transitions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"state": {"type": "string"}, "at": {"type": "number"}},
                        },
                    }
                },
            },
        ]
    },
    "RunPage": {
        "type": "object",
        "properties": {
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
    "Graph": {
        "type": "object",
        "properties": {
            "root_id": {"type": "string"},
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
            "artifacts": {"type": "array", "items": {"$ref": "#/components/schemas/Artifact"}},
            "edges": {"type": "array", "items": {"$ref": "#/components/schemas/Edge"}},
        },
    },
    "Artifact": _ARTIFACT,
    "Edge": _EDGE,
    "Error": _ERROR,
}


def _json(schema: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "Invalid parameter",
        401: "Missing or wrong API key",
        403: "Sent from a foreign web origin",
        404: "Not found",
        409: "Refused by the metadata store, or the pipeline's state",
        413: "The body is larger than this endpoint takes (decided while it streams)",
        415: "The body is not of the content type this endpoint takes",
        421: "Addressed to a host name this server does not answer to",
        503: "Metadata store unavailable",
    }
    return {str(code): _json("Error", meaning[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
        "description": description + " Any other value is a 400.",
    }


_RUN_ID = _path("run_id", "A run id (32 lowercase hex digits).", _RUN_ID_PATTERN)
_ARTIFACT_ID = _path(
    "artifact_id", "An artifact id (64 lowercase hex digits).", _ARTIFACT_ID_PATTERN
)
_KEYED: list[dict[str, list[str]]] = [{"bearer": []}]


def _operations() -> dict[str, dict[str, Any]]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "/health": {
            "summary": "Liveness: 200 once the server serves requests.",
            "responses": {
                "200": {
                    "description": "Healthy",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        },
        "/openapi.json": {
            "summary": "This document.",
            "responses": {"200": {"description": "The OpenAPI document"}},
        },
        "/runs": {
            "summary": "Runs, newest first, filtered and paginated.",
            "parameters": [
                _query(
                    "status",
                    {"type": "string", "enum": _STATES},
                    "Only runs in this state (any case).",
                ),
                _query("name", {"type": "string"}, "Only runs of functions with this name."),
                _query("tag", {"type": "string"}, "Only runs carrying this tag."),
                _query("root_only", {"type": "boolean", "default": False}, "Only pipelines."),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    "Page size.",
                ),
                _query(
                    "offset",
                    {"type": "integer", "minimum": 0, "maximum": INT64_MAX, "default": 0},
                    "Runs to skip.",
                ),
            ],
            "responses": {"200": _json("RunPage", "One page of runs"), **_errors(400, 503)},
        },
        "/runs/{run_id}": {
            "summary": "A run and the states it went through.",
            "parameters": [_RUN_ID],
            "responses": {"200": _json("RunDetail", "The run"), **_errors(404, 503)},
        },
        "/runs/{run_id}/graph": {
            "summary": "Runs, edges and artifact descriptions of the pipeline of this run.",
            "parameters": [_RUN_ID],
            "responses": {"200": _json("Graph", "The whole pipeline"), **_errors(404, 503)},
        },
        "/runs/{run_id}/logs": {
            "summary": "The worker log of a run.",
            "parameters": [_RUN_ID],
            "security": _KEYED,
            "responses": {
                "200": {"description": "The log text", "content": text},
                **_errors(400, 401, 404),
            },
        },
        "/artifacts/{artifact_id}": {
            "summary": "An artifact's type description and summary (no payload).",
            "parameters": [_ARTIFACT_ID],
            "responses": {"200": _json("Artifact", "The artifact"), **_errors(400, 404, 503)},
        },
        "/artifacts/{artifact_id}/payload": {
            "summary": "The stored bytes of an artifact, verified against its id.",
            "parameters": [_ARTIFACT_ID],
            "security": _KEYED,
            "responses": {
                "200": {"description": "The payload", "content": binary},
                **_errors(400, 401, 404, 503),
            },
        },
    }


def _steering_operations() -> dict[str, dict[str, Any]]:
    """Cancel, rerun and live updates (see ``sematic.server.steering``), keyed by method."""
    reason = {"type": "object", "properties": {"reason": {"type": "string"}}}
    start = {"type": "object", "properties": {"from_run_id": _NULLABLE_STR}}
    conflict = {"409": _json("Error", "The pipeline already finished, or cannot be rerun")}
    return {
        "/runs/{run_id}/cancel": {
            "post": {
                "summary": "Ask the resolver of this run's pipeline to cancel it.",
                "parameters": [_RUN_ID],
                "security": _KEYED,
                "requestBody": {"content": {"application/json": {"schema": reason}}},
                "responses": {
                    "202": {"description": "Requested; the resolver stops within a second"},
                    **_errors(400, 401, 404, 413),
                    **conflict,
                },
            }
        },
        "/runs/{run_id}/rerun": {
            "post": {
                "summary": "Run this run's pipeline again (from one run on) in the background.",
                "parameters": [_RUN_ID],
                "security": _KEYED,
                "requestBody": {"content": {"application/json": {"schema": start}}},
                "responses": {
                    "202": {"description": "Started; the body holds the new root_id"},
                    **_errors(400, 401, 404, 413),
                    **conflict,
                },
            }
        },
        "/events": {
            "get": {
                "summary": "Server-sent events: runs as they change (``event: runs``).",
                "parameters": [
                    _query("root_id", _RUN_REF, "One pipeline (default: roots)."),
                    _query("since", {"type": "number"}, "Changes after this time (default: now)."),
                ],
                "responses": {
                    "200": {
                        "description": "An endless event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400),
                },
            }
        },
    }


def _write_operations() -> dict[str, dict[str, Any]]:
    """The store API resolvers and workers write through (``sematic.server.writes``)."""
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    batch = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
            "transitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["run_id", "state", "at"],
                    "properties": {
                        "run_id": _RUN_REF,
                        "state": {"type": "string", "enum": _STATES},
                        "at": {"type": "number"},
                    },
                },
            },
            "artifacts": {"type": "array", "items": {"$ref": "#/components/schemas/Artifact"}},
            "edges": {"type": "array", "items": {"$ref": "#/components/schemas/Edge"}},
        },
    }
    ok = {"200": {"description": "Done", "content": {"application/json": {"schema": {}}}}}
    refused = {"409": _json("Error", "The metadata store refused the batch; nothing written")}
    too_large = {"413": _json("Error", "The request body is too large")}
    type_key = {
        "name": wire.TYPE_KEY_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The type key the artifact id was computed from (percent-encoded).",
    }
    cache_key = _path(
        "cache_key",
        "A cache key (sha256 hex of a function, source, inputs).",
        _ARTIFACT_ID_PATTERN,
    )
    return {
        "/write": {
            "post": {
                "summary": "Record runs, transitions, artifacts and edges in one transaction.",
                "description": "Fields are validated strictly: an unknown, missing or "
                "mistyped field is a 400 that names it. Runs are upserted by id; artifacts "
                "and edges already recorded are left as they are.",
                "security": _KEYED,
                "requestBody": {"content": {"application/json": {"schema": batch}}},
                "responses": {**ok, **_errors(400, 401, 503), **refused, **too_large},
            }
        },
        "/runs/{run_id}/logs": {
            "put": {
                "summary": "Store a run's log (text), replacing what was there.",
                "description": "Resolvers send the log of a run that ran in a pod or on "
                "another machine when it ends; at most 16 MiB (413 beyond).",
                "parameters": [_RUN_ID],
                "security": _KEYED,
                "requestBody": {"content": binary},
                "responses": {**ok, **too_large, **_errors(400, 401)},
            }
        },
        "/artifacts/{artifact_id}/payload": {
            "put": {
                "summary": "Store an artifact's payload, once checked against its id.",
                "description": "The id must be sha256(type key, a zero byte, body): otherwise "
                "400 and nothing is stored. Storing the same payload again is a no-op.",
                "parameters": [_ARTIFACT_ID, type_key],
                "security": _KEYED,
                "requestBody": {"content": binary},
                "responses": {**ok, **_errors(400, 401, 503), **too_large},
            }
        },
        "/payloads": {
            "post": {
                "summary": "Store many payloads in one request, each checked against its id.",
                "description": "The body is a sequence of items: a 4-byte big-endian length, "
                "a JSON header of that length ({id, type_key, size}), then size bytes. Every "
                "payload is checked before any is stored: one mismatch is a 400 and nothing "
                "is stored.",
                "security": _KEYED,
                "requestBody": {"content": {wire.PAYLOADS_TYPE: {"schema": {"type": "string"}}}},
                "responses": {**ok, **_errors(400, 401, 503), **too_large},
            }
        },
        "/payloads/{artifact_id}": {
            "get": {
                "summary": "An artifact store's bytes by id, recorded or not (HEAD: exists).",
                "description": "For resolvers and workers: a payload is stored before its "
                "artifact is recorded. The bytes are not checked here; readers verify.",
                "parameters": [_ARTIFACT_ID],
                "security": _KEYED,
                "responses": {
                    "200": {"description": "The payload", "content": binary},
                    **_errors(400, 401, 404),
                },
            }
        },
        "/artifacts/lookup": {
            "post": {
                "summary": "The recorded artifacts among up to 10,000 ids (unknown ids skipped).",
                "security": _KEYED,
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["ids"],
                                "properties": {
                                    "ids": {
                                        "type": "array",
                                        "maxItems": 10_000,
                                        "items": _ARTIFACT_REF,
                                    }
                                },
                            }
                        }
                    }
                },
                "responses": {**ok, **_errors(400, 401, 503)},
            }
        },
        "/cached-outputs/{cache_key}": {
            "get": {
                "summary": "The output artifact of the latest resolved run with this cache key.",
                "parameters": [cache_key],
                "security": _KEYED,
                "responses": {**ok, **_errors(400, 401, 503)},
            }
        },
        "/changed-runs": {
            "get": {
                "summary": "Runs updated after a time, oldest change first (a pipeline, or roots).",
                "parameters": [
                    {
                        **_query("since", {"type": "number"}, "Seconds since the epoch."),
                        "required": True,
                    },
                    _query("root_id", _RUN_REF, "One pipeline (default: roots)."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "At most this many.",
                    ),
                ],
                "security": _KEYED,
                "responses": {**ok, **_errors(400, 401, 503)},
            }
        },
        "/runs/{run_id}/cancel": {
            "get": {
                "summary": "The latest request to cancel this pipeline, or null.",
                "parameters": [_RUN_ID],
                "security": _KEYED,
                "responses": {**ok, **_errors(400, 401, 503)},
            }
        },
    }


def document(prefix: str) -> dict[str, Any]:
    """The OpenAPI document for routes mounted under ``prefix``."""
    paths = {prefix + path: {"get": op} for path, op in _operations().items()}
    for path, ops in (*_steering_operations().items(), *_write_operations().items()):
        paths.setdefault(prefix + path, {}).update(ops)
    for path, ops in paths.items():  # what ``guard`` answers before any handler
        for method, op in ops.items():
            if path not in (prefix + "/health", prefix + "/openapi.json"):
                op.setdefault("security", _KEYED)
            refused = [401] if "security" in op else []
            if method != "get":
                refused += [403, 415] if "requestBody" in op else [403]
            op["responses"] = {**_errors(*refused, 421), **op["responses"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sematic API", "version": sematic.__version__},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Needed by every endpoint but health and this document "
                    "when the server runs with an API key.",
                }
            },
        },
    }
