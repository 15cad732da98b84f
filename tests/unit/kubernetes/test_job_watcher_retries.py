"""JobWatcher when the connection to the Kubernetes API breaks: each failure is counted and
logged, the watch backs off, recovers when the API answers again, and after a bound raises
an InfrastructureError from ``next_outcome`` instead of retrying in silence forever.

The failure is real: the official client pointed at a closed port of 127.0.0.1 (connection
refused). Only the recovery test answers on that port afterwards, with ``_StandInApi``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from urllib3.exceptions import HTTPError

from kubernetes import client
from sematic.core.errors import InfrastructureError
from sematic.kubernetes.manifests import MANAGED_BY
from sematic.kubernetes.watcher import JobWatcher

LOGGER = "sematic.kubernetes.watcher"
HOST = "127.0.0.1"
JOB = "w-retries-1"


def _when(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _api(port: int) -> client.ApiClient:
    """The official client for an API server at 127.0.0.1:PORT; urllib3 does not retry."""
    configuration = client.Configuration()
    configuration.host = f"http://{HOST}:{port}"
    configuration.retries = 0
    return client.ApiClient(configuration)


@pytest.fixture
def port() -> int:
    """A port of 127.0.0.1 nothing listens on (the kernel's choice, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        chosen: int = sock.getsockname()[1]
    return chosen


@pytest.fixture
def api(port: int) -> Iterator[client.ApiClient]:
    api = _api(port)
    yield api
    api.close()


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_an_unreachable_api_raises_an_infrastructure_error_after_a_bound(
    api: client.ApiClient, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    watcher = JobWatcher(api, "default", max_failures=3, backoff=0.1, max_backoff=0.2)
    try:
        with pytest.raises(InfrastructureError, match="failed 3 times in a row") as raised:
            watcher.next_outcome(timeout=30)
    finally:
        watcher.close()

    message = str(raised.value)
    assert "namespace default" in message
    assert "Connection refused" in message
    assert "API server is reachable" in message  # says what to check
    assert isinstance(raised.value.__cause__, HTTPError)
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 2
    assert "(failure 1 of 3 in a row, watching again in 0.1 s)" in warnings[0]
    assert "(failure 2 of 3 in a row, watching again in 0.2 s)" in warnings[1]
    assert f"port={port}" in warnings[0]
    assert _messages(caplog, logging.ERROR) == [message]


def test_close_interrupts_the_pause_between_two_tries(
    api: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    watcher = JobWatcher(api, "default", backoff=60.0)
    _when(lambda: bool(_messages(caplog, logging.WARNING)), "the first failure")
    started = time.monotonic()
    watcher.close()
    assert time.monotonic() - started < 2
    assert watcher.next_outcome(timeout=0.1) is None  # no error: it was closed


class _StandInApi(BaseHTTPRequestHandler):
    """A test double of the Kubernetes API server, started on the closed port once the
    watcher has failed there: it accepts Jobs, lists no pods and answers each watch with
    one event, the pod of ``JOB`` succeeded, before it ends the stream."""

    def do_GET(self) -> None:  # the name http.server calls
        if "watch=" not in self.path:
            self._send({"kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": []})
            return
        pod = {
            "metadata": {
                "name": f"{JOB}-pod",
                "resourceVersion": "2",
                "labels": {**MANAGED_BY, "job-name": JOB},
            },
            "status": {"phase": "Succeeded"},
        }
        self._send({"type": "MODIFIED", "object": pod})
        time.sleep(0.2)  # the watch stays open a moment, then ends as at its timeout

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._send(json.loads(body), status=201)

    def _send(self, data: Any, status: int = 200) -> None:
        payload = json.dumps(data).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_watch_recovers_when_the_api_answers_again(
    api: client.ApiClient, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    watcher = JobWatcher(api, "default", max_failures=100, backoff=0.2, max_backoff=0.4)
    server: ThreadingHTTPServer | None = None
    try:
        _when(lambda: len(_messages(caplog, logging.WARNING)) >= 2, "two failures")
        server = ThreadingHTTPServer((HOST, port), _StandInApi)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        manifest = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": JOB},
            "spec": {"template": {"spec": {"containers": [{"name": "w", "image": "b"}]}}},
        }
        assert watcher.submit(manifest) == JOB
        outcome = watcher.next_outcome(timeout=20)
    finally:
        watcher.close()
        if server is not None:
            server.shutdown()
            server.server_close()

    assert outcome is not None
    assert (outcome.name, outcome.succeeded, outcome.pod) == (JOB, True, f"{JOB}-pod")
    warnings = _messages(caplog, logging.WARNING)
    recovered = [m for m in warnings if "again after" in m]
    assert len(recovered) == 1
    assert recovered[0].startswith("watching the pods of namespace default again after")
    assert _messages(caplog, logging.ERROR) == []
