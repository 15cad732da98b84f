"""The mailbox of a Sematic server, over its HTTP API (``/api/v1/mailbox/CHANNEL``).

Warm worker pods and their driver exchange steps and results through it. Imported by
workers at start-up: httpx, the standard library and ``sematic.core`` only; Python 3.10.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from sematic.core.errors import ConfigurationError, SematicError, StoreError
from sematic.storage.http._connection import ErrorFactory, HttpConnection

# The longest wait asked of the server in one request (it takes up to 30 s); a longer
# ``wait`` asks again. Well below the connection's read timeout (``TIMEOUT``, 60 s).
MAX_WAIT_PER_REQUEST_S = 25.0


class HttpMailbox:
    """The ``Mailbox`` of the server at ``server_url`` (replicas comma-separated)."""

    def __init__(self, server_url: str, api_key: str | None = None) -> None:
        self._http = HttpConnection(server_url, api_key)
        self.url = self._http.url

    def __enter__(self) -> HttpMailbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def post(self, channel: str, message: dict[str, Any]) -> int:
        """Add ``message`` (a JSON object, at most 1 MiB) to ``channel``; its id.

        Sent once: a post whose answer was lost is not sent again (it may have been
        stored), so it raises rather than posting twice.
        """
        if not isinstance(message, dict):
            raise ConfigurationError(
                f"A mailbox message is a JSON object (a dict), not {type(message).__name__}."
            )
        response = self._http.request(
            "POST",
            _path(channel),
            doing=f"post to the mailbox channel {channel!r}",
            idempotent=False,
            json=message,
            errors=self._errors(),
        )
        return int(response.json()["id"])

    def read(
        self, channel: str, after: int, limit: int = 100, wait: float = 0.0
    ) -> list[tuple[int, dict[str, Any]]]:
        """The messages of ``channel`` with an id above ``after``, oldest first, at most
        ``limit``. With none yet and ``wait`` > 0, waits up to ``wait`` seconds for one
        (long polls of at most ``MAX_WAIT_PER_REQUEST_S`` each); [] if none came."""
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            left = max(0.0, deadline - time.monotonic())
            asked = min(left, MAX_WAIT_PER_REQUEST_S)
            response = self._http.request(
                "GET",
                _path(channel),
                doing=f"read the mailbox channel {channel!r}",
                idempotent=True,
                params={"after": after, "limit": limit, "wait": f"{asked:.3f}"},
                errors=self._errors(),
            )
            messages = [(int(item["id"]), item["message"]) for item in response.json()["messages"]]
            if messages or deadline - time.monotonic() <= 0:
                return messages

    def drop(self, channel: str) -> int:
        """Delete the messages of ``channel`` and of every channel under ``channel/``; how
        many were deleted."""
        response = self._http.request(
            "DELETE",
            _path(channel),
            doing=f"drop the mailbox channel {channel!r}",
            idempotent=True,
            errors=self._errors(),
        )
        return int(response.json()["deleted"])

    def _errors(self) -> dict[int, ErrorFactory]:
        def refused(detail: str) -> SematicError:
            return ConfigurationError(f"The Sematic server at {self.url} refused: {detail}")

        def absent(detail: str) -> SematicError:
            return StoreError(
                f"The Sematic server at {self.url} has no mailbox: {detail} Upgrade the "
                "server to a version that serves /api/v1/mailbox."
            )

        return {400: refused, 403: refused, 404: absent, 413: refused}


def _path(channel: str) -> str:
    return "/mailbox/" + quote(channel, safe="/")


__all__ = ["HttpMailbox"]
