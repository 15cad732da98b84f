"""Steering and watching pipelines over HTTP: cancel, rerun, and live updates (SSE).

- ``POST /runs/{id}/cancel``: records a request the pipeline's resolver acts on (202);
  409 when the pipeline already finished.
- ``POST /runs/{id}/rerun`` (JSON ``{"from_run_id": null | id}``): starts the rerun in a
  background process on the server's machine and answers at once with the new root id
  (202). The new root run appears a moment later.
- ``GET /events?root_id=&since=``: server-sent events. Each ``runs`` event carries the runs
  changed since the last one (of one pipeline, or every pipeline's root run without
  ``root_id``) and a cursor; ``id:`` is the cursor, so a reconnecting EventSource resumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sematic.core.errors import ConfigurationError, PipelineFinishedError, RunNotFoundError
from sematic.core.records import RunRecord
from sematic.resolvers.cancel import request_cancel
from sematic.resolvers.rerun import RUN_ID, start_rerun
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql.store import SqlMetadataStore

POLL_S = 0.25  # how often the event stream looks for changes
HEARTBEAT_S = 15.0
# Runs written late with an earlier timestamp (another resolver's batch) are still caught:
# each poll looks this far behind the cursor and skips what it already sent.
OVERLAP_S = 5.0
BATCH = 500


def _run_json(run: RunRecord) -> dict[str, Any]:
    data = dataclasses.asdict(run)
    data["tags"] = list(run.tags)
    return data


class Steering:
    def __init__(
        self,
        metadata: SqlMetadataStore,
        authorize: Callable[[Request], None],
        settings: LocalSettings | None,
    ) -> None:
        self.metadata = metadata
        self.authorize = authorize
        self.settings = settings

    def routes(self, prefix: str) -> list[Route]:
        return [
            Route(f"{prefix}/runs/{{run_id}}/cancel", self.cancel, methods=["POST"]),
            Route(f"{prefix}/runs/{{run_id}}/rerun", self.rerun, methods=["POST"]),
            Route(f"{prefix}/events", self.events, methods=["GET"]),
        ]

    async def cancel(self, request: Request) -> Response:
        self.authorize(request)
        run_id = _run_id(request.path_params["run_id"])
        body = await _body(request)
        reason = body.get("reason") or "canceled from the web UI or API"
        if not isinstance(reason, str):
            raise HTTPException(400, "reason must be a string.")
        try:
            root = await asyncio.to_thread(request_cancel, self.metadata, run_id, reason)
        except RunNotFoundError:
            raise HTTPException(404, f"No run with id {run_id!r}.") from None
        except PipelineFinishedError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"root_id": root.id, "status": "cancel requested"}, 202)

    async def rerun(self, request: Request) -> Response:
        self.authorize(request)
        run_id = _run_id(request.path_params["run_id"])
        body = await _body(request)
        start = body.get("from_run_id")
        if start is not None:
            start = _run_id(start) if isinstance(start, str) else _run_id(repr(start))
        if self.settings is None:
            raise HTTPException(501, "This server does not start reruns.")
        try:
            new_root = await asyncio.to_thread(start_rerun, self.settings, run_id, start)
        except RunNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ConfigurationError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"root_id": new_root}, 202)

    async def events(self, request: Request) -> Response:
        params = request.query_params
        root_id = params.get("root_id") or None
        if root_id is not None:
            _run_id(root_id)
        since = _float(request.headers.get("last-event-id") or params.get("since"), time.time())
        return StreamingResponse(
            self._stream(request, root_id, since),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        self, request: Request, root_id: str | None, since: float
    ) -> AsyncIterator[str]:
        cursor = since
        sent: dict[str, float] = {}  # run id -> updated_at last sent
        beat = time.monotonic()
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            changed = await self._changed(max(since, cursor - OVERLAP_S), root_id)
            fresh = [run for run in changed if sent.get(run.id) != run.updated_at]
            if not fresh and len(changed) == BATCH:  # the window is full of what was sent
                changed = await self._changed(cursor, root_id)
                fresh = [run for run in changed if sent.get(run.id) != run.updated_at]
            if fresh:
                for run in fresh:
                    sent[run.id] = run.updated_at
                cursor = max(cursor, *(run.updated_at for run in fresh))
                data = json.dumps({"runs": [_run_json(run) for run in fresh], "cursor": cursor})
                yield f"event: runs\nid: {cursor!r}\ndata: {data}\n\n"
                beat = time.monotonic()
                if len(changed) == BATCH:
                    continue  # more are waiting
            elif time.monotonic() - beat > HEARTBEAT_S:
                yield ": still here\n\n"
                beat = time.monotonic()
            if len(sent) > 10 * BATCH:  # forget what is now far behind the cursor
                sent = {k: v for k, v in sent.items() if v > cursor - OVERLAP_S}
            await asyncio.sleep(POLL_S)

    async def _changed(self, since: float, root_id: str | None) -> list[RunRecord]:
        return await asyncio.to_thread(
            self.metadata.changed_runs, since=since, root_id=root_id, limit=BATCH
        )


def _run_id(value: str) -> str:
    if not RUN_ID.fullmatch(value):
        raise HTTPException(400, f"{value!r} is not a run id (32 lowercase hex digits).")
    return value


def _float(raw: str | None, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise HTTPException(400, f"since must be a number (seconds), not {raw!r}.") from None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "The request body must be a JSON object.")
    return body
