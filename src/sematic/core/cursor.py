"""The position of a run in the newest-first listing of runs, as an opaque string.

Runs are listed by ``created_at`` descending, then ``id`` descending; a page ends at a run,
and the next page starts after it. ``encode`` turns that run's ``(created_at, id)`` into a
URL-safe string (base64 of JSON) that clients hand back unread; ``decode`` checks one and
raises ``ValueError`` for anything it did not make.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from sematic.core.records import RUN_ID

Position = tuple[float, str]
_MAX_LENGTH = 200


def encode(position: Position) -> str:
    created_at, run_id = position
    data = json.dumps([created_at, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """The position ``cursor`` names; ``ValueError`` when it is not a cursor ``encode`` made."""
    if not cursor or len(cursor) > _MAX_LENGTH:
        raise ValueError("not a cursor of this server")
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(data)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a cursor of this server") from exc
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError("not a cursor of this server")
    created_at, run_id = value
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, int | float)
        or not math.isfinite(created_at)
        or not isinstance(run_id, str)
        or not RUN_ID.fullmatch(run_id)
    ):
        raise ValueError("not a cursor of this server")
    return float(created_at), run_id
