"""Helpers of ``import_time.py``: a stand-in Sematic server (payloads only) and a step.

``python benchmarks/_worker_probe.py serve PAYLOAD_FILE`` answers ``GET`` with the payload
in ``PAYLOAD_FILE`` and accepts any ``PUT``, printing its port first. The step ``probe``
records, when it runs, which modules the worker had imported (``SEMATIC_PROBE_OUT``).
"""

from __future__ import annotations

import json
import os
import sys

import sematic


@sematic.func(inline=False)
def probe(x: int) -> int:
    """Write the modules imported so far (the worker's cold path) where asked; return x+1."""
    with open(os.environ["SEMATIC_PROBE_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
    return x + 1


def serve(payload_file: str) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path

    payload = Path(payload_file).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(payload)

        def do_PUT(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(b"{}")

        do_POST = do_PUT  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(sys.argv[2])
