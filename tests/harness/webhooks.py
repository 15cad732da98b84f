"""A webhook receiver for tests: a real HTTP server on 127.0.0.1, in a thread.

It records every JSON body posted to it, answers with the statuses it is told (then 200),
and, when ``hold`` is set, keeps each request waiting until ``release`` is set (or 30 s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long a held request waits for ``release`` at most (a test that never releases it).
HOLD_S = 30.0


class Receiver:
    def __init__(self) -> None:
        self.url = ""
        self.posts: list[dict[str, Any]] = []  # every body received, answered or not
        self.statuses: list[int] = []  # answers to give first, in order; then 200
        self.hold = False
        self.release = threading.Event()
        self.received = threading.Event()  # a first request arrived
        self.released_when_answered: list[bool] = []  # per held request
        self.lock = threading.Lock()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The posts once there are ``count`` of them (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} posts, got {len(self.posts)}: {self.posts}")

    def texts(self) -> list[str]:
        with self.lock:
            return [post["text"] for post in self.posts]

    def _handle(self, body: bytes) -> int:
        with self.lock:
            self.posts.append(json.loads(body))
            status = self.statuses.pop(0) if self.statuses else 200
        self.received.set()
        if self.hold:
            self.released_when_answered.append(self.release.wait(HOLD_S))
        return status


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = receiver._handle(body)
            try:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up (timed out) meanwhile
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(path: str = "/services/T000/B000/secret-token") -> Iterator[Receiver]:
    """A running ``Receiver`` whose ``url`` ends in ``path`` (Slack-like: a token in it)."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    server.block_on_close = False
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true in time")
        time.sleep(0.02)
