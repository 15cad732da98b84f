"""``GET /runs``: one page of runs, newest first, fast with millions of runs stored.

Pages follow one another by keyset: a page's ``next_cursor`` (null on the last page) is
handed back as ``?cursor=`` and the next page starts after the run it names, at the cost of
a first page however deep. ``offset`` still works, up to ``MAX_OFFSET`` (every run skipped
is read). ``total`` counts the matching runs up to ``COUNT_CAP`` (``total_exact`` false
beyond: show "10,000+"); ``?exact_total=true`` counts them all (a scan of every match).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException

from sematic.core import cursor, wire
from sematic.core.ports import MetadataStore
from sematic.server.params import boolean, integer, run_id, run_state, text

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 10_000
COUNT_CAP = 10_000


def _filters(params: Mapping[str, str]) -> dict[str, Any]:
    root = params.get("root_id") or None
    return {
        "status": run_state(params),
        "name": text(params, "name"),
        "tag": text(params, "tag"),
        "root_only": boolean(params, "root_only"),
        "submitted_by": text(params, "submitted_by"),
        "root_id": None if root is None else run_id(root, "root_id"),
        "in_pods": boolean(params, "in_pods"),
    }


def _position(params: Mapping[str, str]) -> tuple[float, str] | None:
    raw = params.get("cursor") or None
    if raw is None:
        return None
    try:
        return cursor.decode(raw)
    except ValueError:
        raise HTTPException(
            400, f"cursor: {raw[:80]!r} is not a cursor; pass a next_cursor this server gave."
        ) from None


def run_page(metadata: MetadataStore, params: Mapping[str, str]) -> dict[str, Any]:
    """The JSON of one page of runs for the query ``params`` (a bad one: a 400 naming it)."""
    limit = integer(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = integer(params, "offset", 0, 0, MAX_OFFSET)
    after = _position(params)
    exact = boolean(params, "exact_total")
    filters = _filters(params)
    # One run more than asked for tells whether another page follows.
    found = metadata.list_runs(**filters, after=after, limit=limit + 1, offset=offset)
    runs, more = found[:limit], len(found) > limit
    if after is None and offset == 0 and not more:
        total = len(runs)  # everything that matches is on this page
    elif exact:
        total = metadata.count_runs(**filters)
    else:
        total = metadata.count_runs(**filters, cap=COUNT_CAP + 1)
    total_exact = exact or total <= COUNT_CAP
    last = runs[-1] if more else None
    return {
        "runs": [wire.run_json(run) for run in runs],
        "limit": limit,
        "offset": offset,
        "total": total if total_exact else COUNT_CAP,
        "total_exact": total_exact,
        "next_cursor": None if last is None else cursor.encode((last.created_at, last.id)),
    }
