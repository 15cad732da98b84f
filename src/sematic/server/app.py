"""The HTTP API over the metadata store, the artifact store and the run logs, and the web UI.

Every response is JSON except payloads (bytes) and logs (text); errors are
``{"error": "..."}``. Every request passes ``guard`` first: with an API key, everything
under ``/api/v1`` except ``health`` and ``openapi.json`` needs ``Authorization: Bearer
KEY``, reads and the event stream included (the web UI's static files do not: the UI asks
for the key). KEY is the server's own key (the bootstrap admin) or a per-user key kept
hashed in the database (``keys``; a read-only key gets a 403 on any change), and the runs
a keyed server writes record the key's user as ``submitted_by``. Without a key, only
requests addressed to this machine's own names and sent from its own pages (or from
programs) get through. Bodies must be JSON, except payload
uploads (``application/octet-stream``, or ``wire.PAYLOADS_TYPE`` for a batch). Records
travel as ``sematic.core.wire`` writes them, the same for every handler and the client.

The server parses JSON only: it serves stored bytes as they are, never deserializes (never
unpickles) a payload and never imports a pipeline; a rerun is handed to ``start_rerun``.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import sematic
from sematic.core import wire
from sematic.core.errors import (
    ArtifactCorruptedError,
    ArtifactMissingError,
    InfrastructureError,
    StoreError,
)
from sematic.core.files import private_folder, private_opener, write_private
from sematic.core.ports import ApiKeyStore, Mailbox, MetadataStore, StreamingArtifactStore
from sematic.core.records import ArtifactRecord
from sematic.server import bodies, guard, keys, openapi, writes
from sematic.server import graph as graph_routes
from sematic.server import mailbox as mailbox_routes
from sematic.server.bodies import JSONResponse
from sematic.server.listing import run_page
from sematic.server.metrics import ServerMetrics
from sematic.server.params import artifact_id as artifact_id_param
from sematic.server.params import integer, stored_run
from sematic.server.params import run_id as run_id_param
from sematic.server.steering import RerunStarter, Steering
from sematic.storage.serialization import verify

PREFIX = "/api/v1"
# A log appended to (a pod's, followed live) takes at most this much a request.
MAX_LOG_APPEND_BYTES = 1024 * 1024
LOG_SIZE_HEADER = "X-Log-Size"
_UI = Path(__file__).parent / "ui"


def _plotly_js(_: Request) -> Response:
    """plotly.js from the plotly package installed beside the server (the UI draws plotly
    figures with it); 404 without it: figures are then shown as JSON."""
    spec = importlib.util.find_spec("plotly")
    folder = Path(spec.origin).parent if spec and spec.origin else None
    bundle = folder / "package_data" / "plotly.min.js" if folder else None
    if bundle is None or not bundle.is_file():
        raise HTTPException(404, "plotly is not installed beside this server.")
    return FileResponse(bundle, media_type="text/javascript")


class _Api:
    """The handlers, bound to the stores they read."""

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: StreamingArtifactStore,
        logs_dir: Path,
        api_key: str | None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.logs_dir = logs_dir
        self.api_key = api_key

    def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": sematic.__version__})

    def openapi(self, _request: Request) -> Response:
        return JSONResponse(openapi.document(PREFIX))

    def list_runs(self, request: Request) -> Response:
        """One page of runs: see ``sematic.server.listing``."""
        return JSONResponse(run_page(self.metadata, request.query_params))

    def get_run(self, request: Request) -> Response:
        run = stored_run(self.metadata, request.path_params["run_id"])
        return JSONResponse(wire.run_detail_json(run, self.metadata.transitions_of(run.id)))

    def get_artifact(self, request: Request) -> Response:
        return JSONResponse(wire.artifact_json(self._artifact(request.path_params["artifact_id"])))

    def payload(self, request: Request) -> Response:
        self._authorize(request)
        artifact = self._artifact(request.path_params["artifact_id"])
        data = self.artifacts.get(artifact.id)
        verify(artifact.id, artifact.type_description, data)
        return Response(data, media_type="application/octet-stream")

    def logs(self, request: Request) -> Response:
        """A run's log; with ``?offset=N`` only what follows its first N bytes, and the
        log's whole size in ``X-Log-Size`` (followers poll with the size they have)."""
        self._authorize(request)
        run_id = run_id_param(request.path_params["run_id"])
        path = self.logs_dir / f"{run_id}.log"
        if "offset" not in request.query_params:
            if not path.is_file():
                raise HTTPException(404, f"No logs for run {run_id!r}.")
            return FileResponse(path, media_type="text/plain; charset=utf-8")
        offset = integer(request.query_params, "offset", 0, 0)
        found = _read_log(path, offset)
        if found is None:
            raise HTTPException(404, f"No logs for run {run_id!r}.")
        data, size = found
        return Response(
            data, media_type="text/plain; charset=utf-8", headers={LOG_SIZE_HEADER: str(size)}
        )

    async def put_logs(self, request: Request) -> Response:
        """A run's log, sent by the resolver when the run ended elsewhere (a pod, a driver
        in a cluster, another machine); replaces what was there. With ``?offset=N``, the
        body is appended instead, if the log holds exactly N bytes (else 409 with its size:
        a chunk sent twice is kept once), at most ``MAX_LOG_APPEND_BYTES`` a request."""
        self._authorize(request)
        run_id = run_id_param(request.path_params["run_id"])
        if "offset" in request.query_params:
            return await self._append_log(request, run_id)
        data = await bodies.read(request, wire.MAX_LOG_BYTES)
        temporary = self.logs_dir / f".{run_id}.{os.getpid()}.tmp"
        write_private(temporary, data)
        temporary.replace(self.logs_dir / f"{run_id}.log")
        return JSONResponse({"run_id": run_id, "size": len(data)})

    async def _append_log(self, request: Request, run_id: str) -> Response:
        offset = integer(request.query_params, "offset", 0, 0, wire.MAX_LOG_BYTES)
        data = bytes(await bodies.read(request, MAX_LOG_APPEND_BYTES))
        if offset + len(data) > wire.MAX_LOG_BYTES:
            raise HTTPException(
                413,
                f"The log of run {run_id} would pass {wire.MAX_LOG_BYTES:,} bytes; "
                "send the whole log (a PUT without offset) to replace it instead.",
            )
        private_folder(self.logs_dir)
        path = self.logs_dir / f"{run_id}.log"
        appended, size = await asyncio.to_thread(_append_log, path, offset, data)
        headers = {LOG_SIZE_HEADER: str(size)}
        if not appended:
            message = (
                f"offset {offset} is not the end of the log of run {run_id}: it holds "
                f"{size} bytes; append at offset {size}."
            )
            return JSONResponse({"error": message, "size": size}, 409, headers)
        return JSONResponse({"run_id": run_id, "size": size}, headers=headers)

    def _artifact(self, artifact_id: str) -> ArtifactRecord:
        artifact_id_param(artifact_id)
        found = self.metadata.get_artifacts([artifact_id])
        if not found:
            raise HTTPException(404, f"No artifact with id {artifact_id!r}.")
        return found[0]

    def _authorize(self, request: Request) -> None:
        """Again in the handlers that write or serve bytes, should a route escape the guard."""
        if self.api_key is None:
            return
        if guard.principal_of(request.scope) is None:  # the guard authenticated no one
            raise HTTPException(401, guard.KEY_NEEDED, headers={"WWW-Authenticate": "Bearer"})


def _read_log(path: Path, offset: int) -> tuple[bytes, int] | None:
    """What the log holds after ``offset`` (at most its size cap), and its size; None
    without a log."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(min(offset, size))
            return file.read(wire.MAX_LOG_BYTES), size
    except (FileNotFoundError, IsADirectoryError):
        return None


def _append_log(path: Path, offset: int, data: bytes) -> tuple[bool, int]:
    """Append ``data`` if the log holds ``offset`` bytes (under a lock: replicas share the
    folder): whether it did, and the log's size afterwards."""
    with open(path, "ab", opener=private_opener) as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        if size != offset:
            return False, size
        file.write(data)
        file.flush()
        return True, size + len(data)


def _error(status: int) -> Callable[[Request, Exception], Response]:
    def handle(_request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=status)

    return handle


def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _internal_error(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "Internal server error; see the server's log."}, 500)


def create_app(
    *,
    metadata: MetadataStore,
    artifacts: StreamingArtifactStore,
    logs_dir: Path,
    api_key: str | None = None,
    max_payload_bytes: int = writes.DEFAULT_MAX_PAYLOAD_BYTES,
    start_rerun: RerunStarter | None = None,
    allowed_hosts: frozenset[str] | None = None,
    api_keys: ApiKeyStore | None = None,
    stopping: threading.Event | None = None,
    mailbox: Mailbox | None = None,
    run_graph: graph_routes.RunGraph | None = None,
) -> Starlette:
    """The API application. The caller owns (and closes) ``metadata``.

    ``max_payload_bytes``: the largest payload upload (413 beyond).
    ``start_rerun(root_id, from_run_id)`` starts a rerun away from this process and returns
    the new root run's id (None: reruns are refused with 409). ``allowed_hosts``: the host
    names requests may be addressed to (``guard.local_hosts``); by default the loopback
    names without a key, any name with one. ``api_keys``: the per-user keys accepted
    besides ``api_key`` (the bootstrap admin key), managed under ``/keys``; only with an
    ``api_key``. ``stopping``: set when the server shuts down (event streams and long
    polls then end). ``mailbox``: the channels served under ``/mailbox``
    (``sematic.server.mailbox``); None: those routes answer 404. ``run_graph``: the index
    a pipeline's graph is folded and paged with (``sematic.server.graph``); None: only the
    whole graph is served.
    """
    api_key = api_key or None
    api = _Api(metadata, artifacts, logs_dir, api_key)
    steering = Steering(metadata, api._authorize, start_rerun, stopping)
    metrics = ServerMetrics(metadata)  # GET /metrics; the middleware times every request
    if allowed_hosts is None and api_key is None:
        allowed_hosts = guard.LOOPBACK
    policy = guard.Policy(
        api_key=api_key,
        allowed_hosts=allowed_hosts,
        key_prefix=PREFIX + "/",
        public=frozenset({f"{PREFIX}/health", f"{PREFIX}/openapi.json"}),
        keys=None if api_keys is None else api_keys.authenticate,
        read_posts=frozenset({f"{PREFIX}/artifacts/lookup"}),
        body_types=(
            guard.BodyType("PUT", _path(r"artifacts/.+/payload"), _BYTES),
            guard.BodyType("PUT", _path(r"runs/.+/logs"), _BYTES),
            guard.BodyType("POST", _path("payloads"), frozenset({wire.PAYLOADS_TYPE})),
        ),
    )

    routes = [
        Route(f"{PREFIX}/health", api.health, methods=["GET"]),
        Route(f"{PREFIX}/openapi.json", api.openapi, methods=["GET"]),
        Route(f"{PREFIX}/runs", api.list_runs, methods=["GET"]),
        Route(f"{PREFIX}/runs/{{run_id}}", api.get_run, methods=["GET"]),
        *graph_routes.routes(PREFIX, metadata, run_graph),
        Route(f"{PREFIX}/runs/{{run_id}}/logs", api.logs, methods=["GET"]),
        Route(f"{PREFIX}/runs/{{run_id}}/logs", api.put_logs, methods=["PUT"]),
        Route(f"{PREFIX}/artifacts/{{artifact_id}}", api.get_artifact, methods=["GET"]),
        Route(f"{PREFIX}/artifacts/{{artifact_id}}/payload", api.payload, methods=["GET"]),
        *steering.routes(PREFIX),
        *keys.routes(PREFIX, api_keys if api_key is not None else None),
        *writes.routes(
            PREFIX,
            metadata=metadata,
            artifacts=artifacts,
            authorize=api._authorize,
            max_payload_bytes=max_payload_bytes,
            on_payload_stored=metrics.payload_stored,
        ),
        *mailbox_routes.routes(PREFIX, mailbox, stopping),
        metrics.route(PREFIX),
        # The web UI: static files (no build step), index.html at "/".
        Route("/", lambda _: FileResponse(_UI / "index.html"), methods=["GET"]),
        Route("/ui/vendor/plotly.min.js", _plotly_js, methods=["GET"]),
        Mount("/ui", app=StaticFiles(directory=_UI), name="ui"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Response]] = {
        HTTPException: _http_error,
        ArtifactMissingError: _error(404),
        ArtifactCorruptedError: _error(409),  # stored bytes fail verification: heal by rerunning
        InfrastructureError: _error(503),
        StoreError: _error(500),
        Exception: _internal_error,
    }
    return Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[metrics.middleware(), Middleware(guard.Guard, policy=policy)],
    )


_BYTES = frozenset({"application/octet-stream"})


def _path(pattern: str) -> re.Pattern[str]:
    return re.compile(f"{re.escape(PREFIX)}/{pattern}")
