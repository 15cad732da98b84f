"""Steering and watching pipelines over HTTP: cancel, rerun, and live updates (SSE).

- ``POST /runs/{id}/cancel``: records a request the pipeline's resolver acts on (202);
  409 when the pipeline already finished.
- ``POST /runs/{id}/rerun`` (JSON ``{"from_run_id": null | id}``): checks the metadata
  only (the runs exist, ``from_run_id`` is in the same pipeline, the pipeline can be
  imported again), then hands the rerun to the starter the server was given and answers
  at once with the new root id (202); the new root run appears a moment later. The server
  itself never imports the pipeline nor reads its inputs back: the starter runs it
  elsewhere (a process of the user's, a Job in the cluster). Without a starter, 409.
- ``GET /events?root_id=&since=``: server-sent events. Each ``runs`` event carries the runs
  changed since the last one (of one pipeline, or every pipeline's root run without
  ``root_id``) and a cursor; ``id:`` is the cursor, so a reconnecting EventSource resumes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sematic.core import wire
from sematic.core.errors import ConfigurationError, PipelineFinishedError, RunNotFoundError
from sematic.core.ports import MetadataStore
from sematic.core.records import RunRecord
from sematic.resolvers.cancel import request_cancel
from sematic.resolvers.rerun import check_rerun
from sematic.server import bodies
from sematic.server import params as checks
from sematic.server.params import RunId

POLL_S = 0.25  # how often the event stream looks for changes
HEARTBEAT_S = 15.0
# Runs written late with an earlier timestamp (another resolver's batch) are still caught:
# each poll looks this far behind the cursor and skips what it already sent.
OVERLAP_S = 5.0
BATCH = 500
MAX_BODY_BYTES = 64 * 1024  # a cancel's reason, a rerun's start

# (root run id, run to rerun from or None) -> the id the new root run will have.
RerunStarter = Callable[[str, str | None], str]


class Steering:
    def __init__(
        self,
        metadata: MetadataStore,
        authorize: Callable[[Request], None],
        start_rerun: RerunStarter | None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.metadata = metadata
        self.authorize = authorize
        self.start_rerun = start_rerun
        # Set when the server shuts down: event streams end (browsers reconnect, to
        # another replica) instead of holding the shutdown until its grace period ends.
        self.stopping = stopping or threading.Event()

    def routes(self, prefix: str) -> list[Route]:
        return [
            Route(f"{prefix}/runs/{{run_id}}/cancel", self.cancel, methods=["POST"]),
            Route(f"{prefix}/runs/{{run_id}}/rerun", self.rerun, methods=["POST"]),
            Route(f"{prefix}/events", self.events, methods=["GET"]),
        ]

    async def cancel(self, request: Request) -> Response:
        self.authorize(request)
        run_id = checks.run_id(request.path_params["run_id"])
        body = await _body(Cancel, request)
        reason = body.reason or "canceled from the web UI or API"
        try:
            root = await asyncio.to_thread(request_cancel, self.metadata, run_id, reason)
        except RunNotFoundError:
            raise HTTPException(404, f"No run with id {run_id!r}.") from None
        except PipelineFinishedError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"root_id": root.id, "status": "cancel requested"}, 202)

    async def rerun(self, request: Request) -> Response:
        self.authorize(request)
        run_id = checks.run_id(request.path_params["run_id"])
        start = (await _body(Rerun, request)).from_run_id
        missing = f"No run with id {run_id!r}" + (f" or {start!r}." if start else ".")
        try:
            root = await asyncio.to_thread(check_rerun, self.metadata, run_id, start)
        except RunNotFoundError:  # its message names the store: not for clients
            raise HTTPException(404, missing) from None
        except ConfigurationError as exc:
            raise HTTPException(409, str(exc)) from None
        if self.start_rerun is None:
            command = f"sematic rerun {run_id}" + (f" --from {start}" if start else "")
            raise HTTPException(
                409,
                "This server does not run pipelines: it never runs their code on its own "
                f"host. Rerun from the command line, where the pipeline's code is: `{command}`.",
            )
        try:
            new_root = await asyncio.to_thread(self.start_rerun, root.id, start)
        except RunNotFoundError:
            raise HTTPException(404, missing) from None
        except ConfigurationError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"root_id": new_root}, 202)

    async def events(self, request: Request) -> Response:
        params = request.query_params
        root_id = params.get("root_id") or None
        if root_id is not None:
            checks.run_id(root_id, "root_id")
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
        cursor_id: str | None = None  # the last run sent at the cursor's time
        sent: dict[str, float] = {}  # run id -> updated_at last sent
        beat = time.monotonic()
        yield "retry: 1000\n\n"
        while not self.stopping.is_set() and not await request.is_disconnected():
            changed = await self._changed(max(since, cursor - OVERLAP_S), None, root_id)
            fresh = [run for run in changed if sent.get(run.id) != run.updated_at]
            if not fresh and len(changed) == BATCH:  # the window is full of what was sent
                # The page after the last run sent: more than a batch may share its time.
                changed = await self._changed(cursor, cursor_id, root_id)
                fresh = [run for run in changed if sent.get(run.id) != run.updated_at]
            if fresh:
                for run in fresh:
                    sent[run.id] = run.updated_at
                last = max(fresh, key=lambda run: (run.updated_at, run.id))
                if (last.updated_at, last.id) > (cursor, cursor_id or ""):
                    cursor, cursor_id = last.updated_at, last.id
                data = bodies.dumps(
                    {"runs": [wire.run_json(run) for run in fresh], "cursor": cursor}
                )
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

    async def _changed(
        self, since: float, after_id: str | None, root_id: str | None
    ) -> list[RunRecord]:
        return await asyncio.to_thread(
            self.metadata.changed_runs,
            since=since,
            root_id=root_id,
            limit=BATCH,
            after_id=after_id,
        )


def _float(raw: str | None, default: float) -> float:
    return checks.number(raw, "since", default)


class Cancel(BaseModel):
    """The body of ``POST /runs/{run_id}/cancel``: why the pipeline is canceled."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)
    reason: str | None = None


class Rerun(BaseModel):
    """The body of ``POST /runs/{run_id}/rerun``: the run of the pipeline to rerun from
    (it and what depends on it run again); none to rerun the whole pipeline."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)
    from_run_id: RunId | None = None


async def _body(model: type[bodies.M], request: Request) -> bodies.M:
    """The body (empty: ``{}``) validated by ``model``; a 400 naming the bad field."""
    return bodies.parse_model(model, (await bodies.read(request, MAX_BODY_BYTES)).strip() or b"{}")
