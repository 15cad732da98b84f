"""The server's Prometheus metrics (``GET /api/v1/metrics``) and its access log.

What a scrape shows:

- ``sematic_http_request_duration_seconds`` (histogram): every HTTP request, from the
  first byte the server saw to the last it sent, by ``method``, ``route`` (the route's
  template, such as ``/api/v1/runs/{run_id}``; ``other`` for a path no route serves) and
  ``status`` (the response's code). Requests the guard refused count too.
- ``sematic_runs`` (gauge): runs recorded in the metadata store, by ``state`` (every
  state, zeros included), counted when scraped.
- ``sematic_active_pipelines`` (gauge): pipelines (root runs) not yet in a terminal state:
  the resolvers that should still be running.
- ``sematic_artifact_bytes_written_total`` (counter): bytes of artifact payloads this
  server process checked and stored (single uploads and batches; a payload uploaded again
  counts again). Refused uploads do not count.
- ``sematic_metadata_store_up`` (gauge): 1 when the runs could be counted at this scrape,
  0 when the metadata store failed (the run gauges are then absent).

Each app has a registry of its own (``ServerMetrics``), never the process-wide default
one. With an API key, the endpoint needs the key like every other (Prometheus sends it as
a bearer token). The same middleware (``Instrument``) writes one access-log record per
request to the ``sematic.server.access`` logger, at INFO: shown with ``--log-format json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sematic.core.engine import TERMINAL, State
from sematic.core.errors import SematicError
from sematic.core.ports import MetadataStore

ACCESS_LOGGER = "sematic.server.access"
OTHER = "other"  # the route (or method) label of requests no route (method) accounts for
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ACTIVE = tuple(state for state in State if state not in TERMINAL)

_access = logging.getLogger(ACCESS_LOGGER)
_log = logging.getLogger(__name__)


class ServerMetrics:
    """The metrics of one server app, in a registry of their own.

    Wire it into an app with ``route`` (the endpoint), ``middleware`` (the request
    histogram and the access log) and ``payload_stored`` (the hook ``writes`` calls).
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "sematic_http_request_duration_seconds",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.artifact_bytes = Counter(
            "sematic_artifact_bytes_written",
            "Bytes of artifact payloads checked and stored by this server process.",
            registry=self.registry,
        )
        self.registry.register(RunsCollector(metadata))

    def payload_stored(self, *, size: int, **_: Any) -> None:
        """The ``writes`` hook: a payload of ``size`` bytes was stored."""
        self.artifact_bytes.inc(size)

    def route(self, prefix: str) -> Route:
        """``GET {prefix}/metrics``: the Prometheus text format (OpenMetrics if asked)."""
        return Route(f"{prefix}/metrics", self.scrape, methods=["GET"])

    def middleware(self) -> Middleware:
        """The outermost middleware to give the app (before the guard)."""
        return Middleware(Instrument, metrics=self)

    def scrape(self, request: Request) -> Response:
        """Every metric, now (a sync handler: the run counts query the store)."""
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(self.registry), headers={"Content-Type": media_type})

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request in the histogram."""
        method = method if method in METHODS else OTHER
        self.requests.labels(method, route, str(status)).observe(seconds)


class RunsCollector(Collector):
    """The run gauges, counted in the metadata store at each scrape."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def collect(self) -> Iterable[Metric]:
        try:
            by_state = {state: self.metadata.count_runs(status=state.value) for state in State}
            active = sum(
                self.metadata.count_runs(status=state.value, root_only=True) for state in _ACTIVE
            )
        except SematicError as exc:
            _log.warning("Could not count runs for the metrics: %s", exc)
            yield GaugeMetricFamily(
                "sematic_metadata_store_up", "Whether the metadata store answered.", value=0
            )
            return
        yield GaugeMetricFamily(
            "sematic_metadata_store_up", "Whether the metadata store answered.", value=1
        )
        runs = GaugeMetricFamily("sematic_runs", "Runs recorded, by state.", labels=["state"])
        for state, count in by_state.items():
            runs.add_metric([state.value], count)
        yield runs
        yield GaugeMetricFamily(
            "sematic_active_pipelines",
            "Pipelines (root runs) not in a terminal state: resolvers that should be running.",
            value=active,
        )

    def describe(self) -> Iterable[Metric]:
        return ()  # nothing to check at registration: counted at each scrape


class Instrument:
    """ASGI middleware: times every HTTP request into the histogram and logs it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: the app raised before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            method = str(scope["method"])
            route = route_template(scope, getattr(scope.get("app"), "routes", ()))
            self.metrics.observe(method=method, route=route, status=status, seconds=seconds)
            _log_access(scope, status, seconds)


def route_template(scope: Scope, routes: Iterable[BaseRoute]) -> str:
    """The path template of the route serving this request (of the first whose path
    matches, if none takes its method), or ``other``: a label of bounded cardinality."""
    partial = None
    for route, match in _matches(scope, routes):
        if match is Match.FULL:
            return route
        partial = partial or route
    return partial or OTHER


def _matches(scope: Scope, routes: Iterable[BaseRoute]) -> Iterator[tuple[str, Match]]:
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if match is not Match.NONE and isinstance(path, str):
            yield path, match


def _log_access(scope: Scope, status: int, seconds: float) -> None:
    if not _access.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    method, path = scope["method"], scope["path"]
    _access.info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": f"{client[0]}:{client[1]}" if client else None,
        },
    )
