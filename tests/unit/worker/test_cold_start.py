"""The cold path of a Kubernetes step: a worker (``--job-from-env``, payloads through a
server) imports only what the step needs before the user's function runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sematic.core.jobs import InputRef, WorkerJob, WorkerResult
from sematic.storage.http._connection import _tls
from sematic.storage.serialization import serialize

ROOT = Path(__file__).resolve().parents[3]
# Libraries a step's worker does not need before its function runs: the server's and the
# resolver's (SQLAlchemy, pydantic, the kubernetes client, fsspec), a terminal display
# (rich), httpx's command line (click, pygments), pickling (only for a nested future or a
# failure), the settings (the job says everything).
HEAVY = {"sqlalchemy", "pydantic", "kubernetes", "fsspec", "rich", "click", "pygments",
         "cloudpickle", "numpy", "pandas"}  # fmt: skip
HEAVY_SEMATIC = {"sematic.resolvers.settings", "sematic.storage.sql", "sematic.resolvers.local"}


@pytest.fixture
def payload_server() -> Iterator[str]:
    """A stand-in for the server's payload API: GET answers the input, PUT takes anything."""
    payload = serialize(2, int).payload

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(payload)

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_step_worker_imports_nothing_heavy_before_the_function_runs(
    tmp_path: Path, payload_server: str
) -> None:
    value = serialize(2, int)
    job = WorkerJob(
        run_id="a" * 32,
        root_id="a" * 32,
        function_path="tests.pipelines.cold_start.modules_seen",
        inputs={"x": InputRef(value.artifact_id, value.type_description)},
        artifact_url="unused://",
        result_path=str(tmp_path / "result.json"),
        sys_path=[str(ROOT)],
        server_url=payload_server,
    )
    out = tmp_path / "modules.json"
    env = {**os.environ, "SEMATIC_WORKER_JOB": job.to_json(), "SEMATIC_TEST_MODULES_OUT": str(out)}
    env.pop("SEMATIC_API_KEY", None)
    subprocess.run(
        [sys.executable, "-m", "sematic.worker", "--job-from-env"], env=env, check=True, timeout=60
    )
    result = WorkerResult.from_json((tmp_path / "result.json").read_text())
    assert result.kind == "resolved", result
    modules = set(json.loads(out.read_text()))
    assert sorted({name.split(".")[0] for name in modules} & HEAVY) == []
    assert sorted(modules & HEAVY_SEMATIC) == []
    assert "httpx" in modules and "httpx._main" not in modules


def test_the_driver_pod_imports_no_terminal_display() -> None:
    script = (
        "import sys, sematic.worker.drive\n"
        "print(sorted(m for m in {'rich', 'click', 'pygments', 'httpx._main'} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_a_client_of_plain_http_servers_loads_no_certificates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    assert set(_tls(["http://a:80", "http://b:80"])) == {"verify"}
    assert _tls(["http://a:80", "https://b:443"]) == {}  # TLS: httpx's default verification
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy:3128")
    assert _tls(["http://a:80"]) == {}  # a proxy may speak TLS
