"""``python -m sematic.server``: serve the API until SIGTERM or SIGINT.

Prints ``sematic server listening on http://HOST:PORT`` once it accepts requests (with
``--port 0``, the port the system chose). Exits with status 0 after a signal, having
closed the metadata store.

Without an API key (``sematic start``), reruns asked through the API run as ``sematic
rerun`` processes of the user who started the server; with one (``sematic server``), the
server runs no pipeline code on its own host: with ``--kubeconfig`` it starts each rerun
as a driver Job in that cluster (``$SEMATIC_CLUSTER`` settings) on the pipeline's recorded
image, and without one it refuses them (409: rerun from the CLI).

With ``--kubeconfig`` the server also reaps, every 20 s, pipelines whose driver is gone for
good (restarts exhausted, Job deleted): their Jobs are deleted and their unfinished runs
marked FAILED; and it removes the Jobs of finished pipelines.

Logs go to stderr: with ``--log-format json``, one JSON object per line, a record for
every request included (``sematic.server.logs``). Prometheus metrics are served at
``/api/v1/metrics`` (``sematic.server.metrics``).

With a ``webhook_url`` in its settings (``$SEMATIC_WEBHOOK_URL``), the server posts the run
state changes written through it, by any client, to that webhook
(``sematic.storage.webhooks``); its messages link to the first ``server_url`` if set, else
to the address the server listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType

import uvicorn

from sematic.core import variables
from sematic.core.errors import SematicError
from sematic.core.ports import MetadataStore
from sematic.resolvers.rerun import BackgroundRerun
from sematic.resolvers.settings import LocalSettings, password_on_command_line
from sematic.server import logs
from sematic.server.app import create_app
from sematic.server.guard import LOOPBACK, local_hosts
from sematic.server.writes import DEFAULT_MAX_PAYLOAD_BYTES
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.packed import PackedArtifactStore
from sematic.storage.sql.store import SqlMetadataStore
from sematic.storage.webhooks import WebhookStore

# Seconds a request in flight gets to finish after SIGTERM.
GRACE_S = 20


def _parser(settings: LocalSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sematic.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="TCP port; 0 picks a free one")
    # Both default to the settings ($SEMATIC_DATABASE_URL...): a password given here shows
    # in the process list.
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--artifact-url", default=settings.artifact_url)
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the API key that every request but health needs: "
        "the bootstrap admin key, which creates per-user keys (`sematic keys`)",
    )
    parser.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        default=[],
        help="a host name this server is reached by, besides 127.0.0.1, localhost, [::1] "
        "and --host (repeatable); with an API key, only these names are then accepted too",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="the cluster CloudResolver pipelines run in (a kubeconfig file, or 'in-cluster' "
        "for a server in a pod): reruns become driver Jobs there and dead drivers are reaped",
    )
    parser.add_argument(
        "--max-payload-bytes",
        metavar="N",
        type=_byte_count,
        default=os.environ.get(variables.MAX_PAYLOAD_BYTES) or DEFAULT_MAX_PAYLOAD_BYTES,
        help="the largest artifact payload an upload may carry; larger ones are refused "
        f"(413) while they stream in (default ${variables.MAX_PAYLOAD_BYTES}, else "
        f"{DEFAULT_MAX_PAYLOAD_BYTES:,} = 2 GiB)",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="text (default): warnings and errors as uvicorn writes them; json: one JSON "
        "object per line on stderr, access records included (see sematic.server.logs)",
    )
    return parser


def _byte_count(raw: str | int) -> int:
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive number of bytes")
    return int(text)


def _api_key(parser: argparse.ArgumentParser, variable: str | None) -> str | None:
    if variable is None:
        return None
    key = os.environ.get(variable, "")
    if not key:
        parser.error(f"--api-key-env {variable}: that environment variable is not set or empty")
    return key


async def _serve(server: uvicorn.Server, host: str) -> None:
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"sematic server listening on {_own_url(host, port)}", flush=True)
    await task


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = LocalSettings.from_environment()
    except SematicError as exc:  # a bad setting (webhook_states...): say which, no traceback
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    parser = _parser(settings)
    args = parser.parse_args(argv)
    logs.configure(args.log_format)
    for option, url, default in (
        ("--database-url", args.database_url, settings.database_url),
        ("--artifact-url", args.artifact_url, settings.artifact_url),
    ):
        warning = None if url == default else password_on_command_line(option, url)
        if warning:
            logs.say(warning, log_format=args.log_format)
    api_key = _api_key(parser, args.api_key_env)
    if api_key is None and args.host not in LOOPBACK:
        logs.say(
            f"warning: serving on {args.host} without an API key: anyone who can reach it "
            "can write runs and read every payload and log (use --api-key-env); it answers "
            "only to the names given with --allowed-host",
            log_format=args.log_format,
        )
    try:
        database = SqlMetadataStore(args.database_url)
    except SematicError as exc:
        logs.say(f"error: {exc}", log_format=args.log_format)
        return 1
    metadata = _notifying(database, settings, args.host, args.port)
    # Keyless: the user's own server, where a rerun runs as a process of theirs. With a
    # key: a team's server, which runs no pipeline code on its own host.
    start_rerun: Callable[[str, str | None], str] | None = None
    reaper = None
    if args.kubeconfig:
        from sematic.resolvers.cluster_rerun import ClusterRerun
        from sematic.resolvers.reaper import Reaper
        from sematic.resolvers.settings import cluster_from_environment

        cluster = cluster_from_environment()
        reaper = Reaper.for_cluster(metadata, cluster, args.kubeconfig).start()
        if api_key is not None:
            start_rerun = ClusterRerun(
                metadata,
                cluster,
                server_url=cluster.server_url or _own_url(args.host, args.port),
                api_key=api_key,
                kubeconfig=args.kubeconfig,
            )
    if api_key is None:
        start_rerun = BackgroundRerun(
            LocalSettings(settings.home, args.database_url, args.artifact_url)
        )
    hosts = None
    if api_key is None or args.allowed_host:
        hosts = local_hosts(args.host, args.allowed_host)
    stopping = threading.Event()
    try:
        app = create_app(
            metadata=metadata,
            stopping=stopping,
            # Payloads up to the threshold are packed in the database, larger ones streamed.
            artifacts=PackedArtifactStore(
                FsspecArtifactStore(args.artifact_url),
                database.small_payloads(),
                settings.small_payload_bytes,
            ),
            logs_dir=settings.logs,
            api_key=api_key,
            start_rerun=start_rerun,
            allowed_hosts=hosts,
            max_payload_bytes=args.max_payload_bytes,
            # With a key, the keys kept in the database are accepted too (`sematic keys`).
            api_keys=None if api_key is None else database.api_keys(),
            # Warm worker pods and their driver exchange steps and results through it.
            mailbox=database.mailbox(),
            # Large pipelines' graphs are folded and paged from its index.
            run_graph=database.run_graph(),
        )
        # On SIGTERM, requests in flight (a write) get up to GRACE_S to finish, within
        # Kubernetes' default 30 s termination grace period; event streams end at once.
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            timeout_graceful_shutdown=GRACE_S,
            **logs.uvicorn_options(args.log_format),
        )
        server = _Server(config, stopping)

        def stop(_signum: int, _frame: FrameType | None) -> None:
            # Before uvicorn takes the signals over: stop at once. After it shut down, it
            # raises the signal again; exit normally (status 0, store closed) instead.
            server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        asyncio.run(_serve(server, args.host))
        return 0 if server.started else 1
    finally:
        if reaper is not None:
            reaper.stop()
        metadata.close()


def _notifying(
    database: MetadataStore, settings: LocalSettings, host: str, port: int
) -> MetadataStore:
    """``database``, posting the state changes written through it to the settings' webhook
    (if any): every client's, once. Messages link to the first ``server_url``, else to the
    address this server listens on (when it is known and not a wildcard)."""
    webhook = settings.webhook
    if webhook is None:
        return database
    link = settings.server_url.split(",")[0] if settings.server_url else None
    if link is None and port and host not in ("0.0.0.0", "::"):
        link = _own_url(host, port)
    return WebhookStore(database, replace(webhook, ui_url=link))


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when it starts shutting down."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping.set()
        await super().shutdown(sockets)


def _own_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


if __name__ == "__main__":
    sys.exit(main())
