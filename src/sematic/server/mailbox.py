"""The mailbox routes: ordered channels of small JSON messages, kept in the SQL database.

Warm worker pods and their driver exchange steps and results through them (both can
always reach the server). Under ``/api/v1/mailbox/CHANNEL``:

- ``POST`` a JSON object (at most ``MAX_MESSAGE_BYTES``, else 413): 201 ``{"id": n}``.
  Ids increase across all channels; a reader keeps the last one it saw as its cursor.
- ``GET ?after=N&limit=L&wait=S``: 200 ``{"messages": [{"id": n, "message": {...}}]}``,
  the channel's messages with an id above ``after`` (default 0), oldest first, at most
  ``limit`` (1..1000, default 100). With none and ``wait`` > 0 (seconds, at most
  ``MAX_WAIT_S``), the answer waits for one: a post to the channel through this process
  wakes it at once, and the database is read again every ``POLL_S`` so that a post
  through another replica is seen too. ``{"messages": []}`` when ``wait`` passes.
- ``DELETE``: 200 ``{"deleted": n}``: the channel's messages and those of every channel
  under ``CHANNEL/``.

A channel name is 1 to 200 characters: segments of letters, digits, ``.``, ``_`` and
``-``, each starting with a letter or digit, joined by ``/``. The guard asks for the API
key as everywhere under ``/api/v1``: a read key may GET, not POST or DELETE. A server
without a mailbox answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sematic.core.ports import Mailbox
from sematic.server import bodies
from sematic.server.bodies import JSONResponse
from sematic.server.params import integer, number

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_CHANNEL_LENGTH = 200
MAX_WAIT_S = 30.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
POLL_S = 0.25
CHANNEL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*"
CHANNEL = re.compile(CHANNEL_PATTERN)
NO_MAILBOX = "This server has no mailbox (it runs without a SQL database of its own)."


def routes(prefix: str, mailbox: Mailbox | None, stopping: threading.Event | None) -> list[Route]:
    handlers = _Mailbox(mailbox, stopping)
    path = f"{prefix}/mailbox/{{channel:path}}"
    return [
        Route(path, handlers.post, methods=["POST"]),
        Route(path, handlers.read, methods=["GET"]),
        Route(path, handlers.drop, methods=["DELETE"]),
    ]


def channel_of(value: str) -> str:
    """A channel name, checked (400 naming ``channel`` otherwise)."""
    if not 1 <= len(value) <= MAX_CHANNEL_LENGTH or not CHANNEL.fullmatch(value):
        raise HTTPException(
            400,
            f"channel: {value[:80]!r} is not a channel name (1 to {MAX_CHANNEL_LENGTH} "
            "characters: segments of letters, digits, '.', '_' and '-' starting with a "
            "letter or digit, joined by '/').",
        )
    return value


class _Bells:
    """One asyncio event per channel someone waits on, rung by a post to it."""

    def __init__(self) -> None:
        self._events: dict[str, tuple[asyncio.Event, int]] = {}

    def listen(self, channel: str) -> asyncio.Event:
        found = self._events.get(channel)
        event, count = found if found is not None else (asyncio.Event(), 0)
        self._events[channel] = (event, count + 1)
        return event

    def leave(self, channel: str, event: asyncio.Event) -> None:
        found = self._events.get(channel)
        if found is None or found[0] is not event:
            return  # rung since: the post dropped it
        if found[1] <= 1:
            del self._events[channel]
        else:
            self._events[channel] = (event, found[1] - 1)

    def ring(self, channel: str) -> None:
        found = self._events.pop(channel, None)
        if found is not None:
            found[0].set()  # its listeners read again; later ones get a new event


class _Mailbox:
    def __init__(self, mailbox: Mailbox | None, stopping: threading.Event | None) -> None:
        self.mailbox = mailbox
        self.stopping = stopping
        self.bells = _Bells()

    async def post(self, request: Request) -> Response:
        mailbox = self._mailbox()
        channel = channel_of(request.path_params["channel"])
        body = await bodies.read(request, MAX_MESSAGE_BYTES)
        if not bytes(body).strip():
            raise HTTPException(400, "body: a message (a JSON object) is required.")
        message = bodies.parse_json(body)
        if not isinstance(message, dict):
            raise HTTPException(400, "body: a message must be a JSON object.")
        new_id = await asyncio.to_thread(mailbox.post, channel, message)
        self.bells.ring(channel)
        return JSONResponse({"id": new_id}, status_code=201)

    async def read(self, request: Request) -> Response:
        mailbox = self._mailbox()
        channel = channel_of(request.path_params["channel"])
        params = request.query_params
        after = integer(params, "after", 0, 0)
        limit = integer(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        wait = number(params.get("wait"), "wait", 0.0)
        if not 0 <= wait <= MAX_WAIT_S:
            raise HTTPException(400, f"wait must be between 0 and {MAX_WAIT_S:g} seconds.")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            # Listen before reading: a post between the read and the wait still wakes us.
            bell = self.bells.listen(channel)
            try:
                found = await asyncio.to_thread(mailbox.read, channel, after, limit)
                left = deadline - loop.time()
                if found or left <= 0 or self._stopping() or await request.is_disconnected():
                    break  # (a client gone, or a server shutting down, waits no longer)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bell.wait(), min(POLL_S, left))
            finally:
                self.bells.leave(channel, bell)
        return JSONResponse({"messages": [_message(i, m) for i, m in found]})

    async def drop(self, request: Request) -> Response:
        mailbox = self._mailbox()
        channel = channel_of(request.path_params["channel"])
        deleted = await asyncio.to_thread(mailbox.drop, channel)
        return JSONResponse({"deleted": deleted})

    def _mailbox(self) -> Mailbox:
        if self.mailbox is None:
            raise HTTPException(404, NO_MAILBOX)
        return self.mailbox

    def _stopping(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()


def _message(message_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"id": message_id, "message": message}
