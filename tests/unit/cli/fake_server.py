"""A stand-in for ``python -m sematic.server`` to test `sematic start/stop` on their own.

It is NOT the real server: it only answers ``GET /api/v1/health``. ``FAKE_SERVER_MODE``:
``healthy`` (default), ``crash`` (exits at once), ``sick`` (answers 503 forever).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

MODE = os.environ.get("FAKE_SERVER_MODE", "healthy")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/api/v1/health" and MODE == "healthy"
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if ok else b"{}")

    def log_message(self, *_args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--artifact-url")
    parser.add_argument("--api-key-env")
    args = parser.parse_args()
    print(f"fake server starting in mode {MODE}: {vars(args)}", flush=True)
    for variable in ("SEMATIC_DATABASE_URL", "SEMATIC_ARTIFACT_URL"):
        print(f"fake server environment: {variable}={os.environ.get(variable)}", flush=True)
    if MODE == "crash":
        print("fake server: cannot start", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with HTTPServer((args.host, args.port), _Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
