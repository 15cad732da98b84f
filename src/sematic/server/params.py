"""Query and path values, checked the one way every endpoint uses: a bad one is a 400
naming it, and nothing reaches the metadata store that it cannot take (integers beyond
signed 64 bits, non-finite floats, NUL characters).

``RunId`` and ``ArtifactId`` are the same id checks as field types of the pydantic models
of request bodies; their JSON schemas describe ids in the OpenAPI document."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import Field
from starlette.exceptions import HTTPException

from sematic.core.engine import State
from sematic.core.errors import RunNotFoundError
from sematic.core.ports import MetadataStore
from sematic.core.records import (
    ARTIFACT_ID,
    ARTIFACT_ID_PATTERN,
    INT64_MAX,
    RUN_ID,
    RUN_ID_PATTERN,
    RunRecord,
)
from sematic.server.bodies import explained

RunId = Annotated[
    str,
    Field(pattern=f"^{RUN_ID_PATTERN}$"),
    explained(string_pattern_mismatch="{value} is not a run id"),
]
ArtifactId = Annotated[
    str,
    Field(pattern=f"^{ARTIFACT_ID_PATTERN}$"),
    explained(string_pattern_mismatch="{value} is not an artifact id"),
]

_STATES = frozenset(state.value for state in State)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits only: int() takes '٣' and '1_0'
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def integer(
    params: Mapping[str, str], name: str, default: int, low: int, high: int = INT64_MAX
) -> int:
    """The integer query parameter ``name`` (``default`` when absent or empty), within
    ``low``..``high``."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise HTTPException(400, f"{name} must be an integer, not {raw[:40]!r}.")
    value = int(raw)
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}, not {value}.")
    return value


def number(raw: str | None, name: str, default: float | None = None) -> float:
    """A finite number given as text (a query parameter or a header); ``default`` when
    absent or empty, where None makes it required."""
    if raw is None or raw == "":
        if default is None:
            raise HTTPException(400, f"{name} is required.")
        return default
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    if not math.isfinite(value):
        raise HTTPException(400, f"{name} must be a finite number, not {raw[:40]!r}.")
    return value


def text(params: Mapping[str, str], name: str) -> str | None:
    """A text query parameter, None when absent or empty; no NUL (no database keeps it)."""
    raw = params.get(name) or None
    if raw is not None and "\0" in raw:
        raise HTTPException(400, f"{name} must not contain NUL characters.")
    return raw


def boolean(params: Mapping[str, str], name: str) -> bool:
    """A true/false query parameter (also 1/0, any case); false when absent or empty."""
    raw = (params.get(name) or "false").lower()
    if raw not in _BOOLEANS:
        raise HTTPException(400, f"{name} must be true or false, not {raw[:40]!r}.")
    return _BOOLEANS[raw]


def run_state(params: Mapping[str, str], name: str = "status") -> str | None:
    """A run state query parameter, any case, as stored (upper case); None when absent."""
    raw = params.get(name) or None
    if raw is None:
        return None
    if raw.upper() not in _STATES:
        raise HTTPException(
            400,
            f"{name}: unknown state {raw[:40]!r}; expected one of {', '.join(sorted(_STATES))}.",
        )
    return raw.upper()


def stored_run(metadata: MetadataStore, value: str, name: str = "run_id") -> RunRecord:
    """The run a path or query value names: a 400 when it is not a run id, a 404 when no
    such run is recorded."""
    run_id(value, name)
    try:
        return metadata.get_run(value)
    except RunNotFoundError:
        raise HTTPException(404, f"No run with id {value!r}.") from None


def run_id(value: str, name: str = "run_id") -> str:
    if not RUN_ID.fullmatch(value):
        raise HTTPException(
            400, f"{name}: {value[:80]!r} is not a run id (32 lowercase hex digits)."
        )
    return value


def artifact_id(value: str, name: str = "artifact_id") -> str:
    if not ARTIFACT_ID.fullmatch(value):
        raise HTTPException(
            400, f"{name}: {value[:80]!r} is not an artifact id (64 lowercase hex digits)."
        )
    return value
