"""One pooled HTTP client to a Sematic server (or its replicas), with retries and failover.

A server URL may name several replicas, comma-separated (``http://a:8080,http://b:8080``):
requests go to one until it cannot be reached or answers 502-504 (it is restarting, or a
proxy in front of it is), then to the next. Requests that may be sent twice are retried
for up to ``RETRY_FOR_S``, long enough for a replica to restart, once a server has
answered (before that, ``FIRST_CONTACT_RETRIES`` times: a wrong URL fails fast).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sematic.core.errors import (
    ConfigurationError,
    InfrastructureError,
    SematicError,
    StoreError,
)
from sematic.storage.http._httpx import httpx

API_PREFIX = "/api/v1"
# Connecting fails fast (the server is down or the URL is wrong); answers may take a while
# (a large payload, a busy database).
TIMEOUT = httpx.Timeout(60.0, connect=5.0, pool=30.0)
RETRY_FOR_S = 20.0
# Until a server has answered once, a wrong URL or a server not started fails fast.
FIRST_CONTACT_RETRIES = 2
BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)
# A replica shutting down, or a proxy whose upstream is: the request did not take effect.
_UNAVAILABLE = frozenset({502, 503, 504})

# Nothing reached the server: any request may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

ErrorFactory = Callable[[str], SematicError]


def server_urls(url: str) -> list[str]:
    """The replicas a server URL names (comma-separated), without trailing slashes.

    Raises ConfigurationError naming the part that is not ``http(s)://HOST[:PORT]``.
    """
    urls = [part.strip().rstrip("/") for part in url.split(",")]
    for part in urls:
        parts = urlsplit(part)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"the Sematic server URL must look like http://HOST:PORT (several "
                f"comma-separated for replicas), got {part!r} in {url!r}; set "
                "SEMATIC_SERVER_URL or run `sematic settings set server_url URL`"
            )
    return urls


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
    """The client side of the API at ``url`` (``http(s)://host:port``, or several
    comma-separated: replicas of one server), shared by both stores.

    One ``httpx.Client`` (a connection pool, safe to share between threads), opened on
    first use and again after ``close``. A request that never reached a server, or was
    answered 503 (502 and 504 too when ``idempotent``), goes to the next replica and is
    retried; other transport failures (the request may have taken effect) only when
    ``idempotent``.
    """

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.urls = server_urls(url)
        self.url = ",".join(self.urls)
        self.has_api_key = bool(api_key)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._current = 0  # the replica answering lately
        self._answered = False  # some replica answered once: outages are then waited out

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
        deadline = time.monotonic() + RETRY_FOR_S
        attempt = 0
        tries = 0
        while True:
            current = self._current
            base = self.urls[current]
            failure: httpx.TransportError | None = None
            try:
                response = self._http().request(
                    method,
                    base + API_PREFIX + path,
                    params=params,
                    content=content,
                    json=json,
                    headers=request_headers,
                )
            except httpx.TransportError as exc:
                if not (isinstance(exc, _NOT_SENT) or idempotent):
                    raise self._unreachable(exc, doing, base) from exc
                failure = exc
            else:
                self._answered = True
                status = response.status_code
                if status not in _UNAVAILABLE or not (idempotent or status == 503):
                    break
            tries += 1
            if time.monotonic() >= deadline or (
                not self._answered and tries > FIRST_CONTACT_RETRIES
            ):
                if failure is not None:
                    raise self._unreachable(failure, doing, base) from failure
                break
            self._current = (current + 1) % len(self.urls)  # the next replica
            if self._current == 0 or len(self.urls) == 1:  # every replica tried: wait
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
        if response.is_success:
            return response
        raise self._refused(response, doing, errors or {}, base)

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=TIMEOUT, **_tls(self.urls))
                client = self._client
        return client

    def _unreachable(self, exc: httpx.TransportError, doing: str, url: str) -> InfrastructureError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return InfrastructureError(
                f"Cannot {doing}: the Sematic server at {self._where(url)} cannot be reached "
                f"({exc}). "
                "Start it with `sematic start`, or point SEMATIC_SERVER_URL (or `sematic "
                "settings set server_url URL`) at a running server."
            )
        return InfrastructureError(
            f"Cannot {doing}: the Sematic server at {self._where(url)} did not answer "
            f"({type(exc).__name__}: {exc})."
        )

    def _where(self, url: str) -> str:
        return url if len(self.urls) == 1 else f"{url} (nor any of {self.url})"

    def _refused(
        self, response: httpx.Response, doing: str, errors: Mapping[int, ErrorFactory], url: str
    ) -> SematicError:
        status = response.status_code
        detail = _detail(response)
        factory = errors.get(status)
        if factory is not None:
            return factory(detail)
        if status == 401:
            problem = "rejected the API key" if self.has_api_key else "needs an API key"
            return ConfigurationError(
                f"Cannot {doing}: the Sematic server at {url} {problem}. Set it with "
                "`sematic settings set api_key KEY` or the SEMATIC_API_KEY environment "
                "variable."
            )
        message = f"Cannot {doing}: the Sematic server at {url} answered {status}: {detail}"
        if status in (502, 503, 504):
            return InfrastructureError(message)
        return StoreError(message)


def _tls(urls: list[str]) -> dict[str, Any]:
    """How the client verifies TLS: as httpx does by default (the system's CA bundle, which
    takes some 35 ms to load) unless no request can use TLS (every replica is ``http://``
    and no proxy is configured); then a context that trusts no one, cheap to make: were it
    ever used, verifying would fail rather than pass."""
    from urllib.request import getproxies

    if any(not url.startswith("http://") for url in urls) or getproxies():
        return {}
    import ssl

    return {"verify": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)}
