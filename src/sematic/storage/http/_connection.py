"""One pooled HTTP client to a Sematic server, with retries and the error tree's exceptions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from sematic.core.errors import (
    ConfigurationError,
    InfrastructureError,
    SematicError,
    StoreError,
)

API_PREFIX = "/api/v1"
# Connecting fails fast (the server is down or the URL is wrong); answers may take a while
# (a large payload, a busy database).
TIMEOUT = httpx.Timeout(60.0, connect=5.0, pool=30.0)
RETRIES = 2
BACKOFF_S = (0.2, 0.5)

# Nothing reached the server: any request may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

ErrorFactory = Callable[[str], SematicError]


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return error
    return str(data)[:300]


class HttpConnection:
    """The client side of the API at ``url`` (``http(s)://host:port``), shared by both stores.

    One ``httpx.Client`` (a connection pool, safe to share between threads), opened on
    first use and again after ``close``. Requests that never reached the server are retried
    ``RETRIES`` times; other transport failures only for idempotent requests.
    """

    def __init__(self, url: str, api_key: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"the Sematic server URL must look like http://HOST:PORT, got {url!r}; set "
                "SEMATIC_SERVER_URL or run `sematic settings set server_url URL`"
            )
        self.url = url.rstrip("/")
        self.has_api_key = bool(api_key)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpConnection({self.url!r})"

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        idempotent: bool,
        errors: Mapping[int, ErrorFactory] | None = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request to ``API_PREFIX + path``; a 2xx response or an exception.

        ``doing`` says what the request is for, in error messages ("write runs"). A status
        in ``errors`` raises what its factory makes of the server's message; otherwise
        401 raises ConfigurationError, 502-504 InfrastructureError, any other StoreError.
        """
        request_headers = {**self._headers, **(headers or {})}
        attempt = 0
        while True:
            try:
                response = self._http().request(
                    method,
                    API_PREFIX + path,
                    params=params,
                    content=content,
                    json=json,
                    headers=request_headers,
                )
                break
            except httpx.TransportError as exc:
                retry = isinstance(exc, _NOT_SENT) or idempotent
                if not retry or attempt >= RETRIES:
                    raise self._unreachable(exc, doing) from exc
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
        if response.is_success:
            return response
        raise self._refused(response, doing, errors or {})

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(base_url=self.url, timeout=TIMEOUT)
                client = self._client
        return client

    def _unreachable(self, exc: httpx.TransportError, doing: str) -> InfrastructureError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return InfrastructureError(
                f"Cannot {doing}: the Sematic server at {self.url} cannot be reached ({exc}). "
                "Start it with `sematic start`, or point SEMATIC_SERVER_URL (or `sematic "
                "settings set server_url URL`) at a running server."
            )
        return InfrastructureError(
            f"Cannot {doing}: the Sematic server at {self.url} did not answer "
            f"({type(exc).__name__}: {exc})."
        )

    def _refused(
        self, response: httpx.Response, doing: str, errors: Mapping[int, ErrorFactory]
    ) -> SematicError:
        status = response.status_code
        detail = _detail(response)
        factory = errors.get(status)
        if factory is not None:
            return factory(detail)
        if status == 401:
            problem = "rejected the API key" if self.has_api_key else "needs an API key"
            return ConfigurationError(
                f"Cannot {doing}: the Sematic server at {self.url} {problem}. Set it with "
                "`sematic settings set api_key KEY` or the SEMATIC_API_KEY environment "
                "variable."
            )
        message = f"Cannot {doing}: the Sematic server at {self.url} answered {status}: {detail}"
        if status in (502, 503, 504):
            return InfrastructureError(message)
        return StoreError(message)
