"""``python -m sematic.server``: serve the API until SIGTERM or SIGINT.

Prints ``sematic server listening on http://HOST:PORT`` once it accepts requests (with
``--port 0``, the port the system chose). Exits with status 0 after a signal, having
closed the metadata store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from sematic.core.errors import SematicError
from sematic.resolvers.settings import LocalSettings
from sematic.server.app import create_app
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.sql.store import SqlMetadataStore

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parser(settings: LocalSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sematic.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="TCP port; 0 picks a free one")
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--artifact-url", default=settings.artifact_url)
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the API key that writes and payload/log reads require",
    )
    return parser


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
        shown = f"[{host}]" if ":" in host else host
        print(f"sematic server listening on http://{shown}:{port}", flush=True)
    await task


def main(argv: Sequence[str] | None = None) -> int:
    settings = LocalSettings.from_environment()
    parser = _parser(settings)
    args = parser.parse_args(argv)
    api_key = _api_key(parser, args.api_key_env)
    if api_key is None and args.host not in _LOOPBACK:
        print(
            f"warning: serving on {args.host} without an API key: anyone who can reach it "
            "can write runs and read every payload and log (use --api-key-env)",
            file=sys.stderr,
            flush=True,
        )
    try:
        metadata = SqlMetadataStore(args.database_url)
    except SematicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(
            metadata=metadata,
            artifacts=FsspecArtifactStore(args.artifact_url),
            logs_dir=settings.logs,
            api_key=api_key,
            rerun_settings=LocalSettings(settings.home, args.database_url, args.artifact_url),
        )
        # Event streams never end by themselves: give them 2 s to close on shutdown.
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)

        def stop(_signum: int, _frame: FrameType | None) -> None:
            # Before uvicorn takes the signals over: stop at once. After it shut down, it
            # raises the signal again; exit normally (status 0, store closed) instead.
            server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        asyncio.run(_serve(server, args.host))
        return 0 if server.started else 1
    finally:
        metadata.close()


if __name__ == "__main__":
    sys.exit(main())
