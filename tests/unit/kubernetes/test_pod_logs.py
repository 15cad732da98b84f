"""PodLogFollower against a stand-in for the Kubernetes API: a pod that waits, then prints;
the text reaches the run's log file and the sink, in order, once; trouble is a warning."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubernetes.client.exceptions import ApiException
from sematic.kubernetes.pod_logs import PodLogFollower


class _Stream:
    """A followed log: ``read1`` blocks until the test feeds a piece (None: the end)."""

    def __init__(self, pieces: queue.Queue[bytes | None]) -> None:
        self._pieces = pieces
        self.closed = False

    def read1(self, _amount: int) -> bytes:
        while not self.closed:
            try:
                piece = self._pieces.get(timeout=0.05)
            except queue.Empty:
                continue
            return piece or b""
        raise OSError("closed")

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


class _Core:
    """``read_namespaced_pod_log`` says the container waits ``waiting`` times, then
    streams what the test feeds; the pod then reads as ``phase``."""

    def __init__(self, waiting: int = 2) -> None:
        self.waiting = waiting
        self.pieces: queue.Queue[bytes | None] = queue.Queue()
        self.phase = "Running"
        self.opened = 0

    def read_namespaced_pod_log(self, name: str, namespace: str, **kwargs: Any) -> _Stream:
        assert kwargs == {"follow": True, "_preload_content": False}
        if self.waiting:
            self.waiting -= 1
            raise ApiException(status=400, reason="container is waiting to start")
        self.opened += 1
        return _Stream(self.pieces)

    def read_namespaced_pod_status(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(status=SimpleNamespace(phase=self.phase))


class _Sink:
    def __init__(self, holds: bytes = b"", fail: bool = False) -> None:
        self.log = bytearray(holds)
        self.fail = fail
        self.calls: list[tuple[int, bytes]] = []
        self.closed = False

    def append(self, run_id: str, offset: int, data: bytes) -> int:
        self.calls.append((offset, data))
        if self.fail:
            raise ConnectionError("server down")
        if offset == len(self.log):
            self.log += data
        return len(self.log)

    def close(self) -> None:
        self.closed = True


def _follower(tmp_path: Path, core: _Core, sink: _Sink | None) -> PodLogFollower:
    follower = PodLogFollower(
        object(), "default", lambda run_id: tmp_path / f"{run_id}.log", sink, interval=0.05
    )
    follower._core = core  # the stand-in API
    return follower


def _until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_waiting_pods_log_reaches_the_file_and_the_sink_in_order(tmp_path: Path) -> None:
    core, sink = _Core(waiting=2), _Sink()
    follower = _follower(tmp_path, core, sink)
    follower.start("r1", "pod-1")
    follower.start("r1", "pod-1")  # again: nothing more
    core.pieces.put(b"first\n")
    _until(lambda: bytes(sink.log) == b"first\n")
    assert (tmp_path / "r1.log").read_bytes() == b"first\n"
    core.pieces.put(b"sec")
    core.pieces.put(b"ond\n")
    _until(lambda: bytes(sink.log) == b"first\nsecond\n")
    assert (tmp_path / "r1.log").read_bytes() == b"first\nsecond\n"
    assert core.opened == 1
    follower.stop("r1")
    core.pieces.put(b"after the stop\n")
    time.sleep(0.2)
    assert (tmp_path / "r1.log").read_bytes() == b"first\nsecond\n"
    follower.close()
    assert sink.closed and follower.following() == []


def test_appends_go_after_what_the_sink_holds(tmp_path: Path) -> None:
    core, sink = _Core(waiting=0), _Sink(holds=b"an earlier attempt\n")
    follower = _follower(tmp_path, core, sink)
    follower.start("r2", "pod-2")
    core.pieces.put(b"this attempt\n")
    _until(lambda: bytes(sink.log) == b"an earlier attempt\nthis attempt\n")
    follower.close()


def test_a_broken_stream_is_opened_again_without_repeating(tmp_path: Path) -> None:
    core = _Core(waiting=0)
    follower = _follower(tmp_path, core, None)
    follower.start("r3", "pod-3")
    core.pieces.put(b"one\n")
    _until(lambda: (tmp_path / "r3.log").is_file())
    core.pieces.put(None)  # the stream ends while the pod runs: opened again, from the start
    _until(lambda: core.opened == 2)
    core.pieces.put(b"one\ntwo\n")
    _until(lambda: (tmp_path / "r3.log").read_bytes() == b"one\ntwo\n")
    core.phase = "Succeeded"
    core.pieces.put(None)  # the pod ended: the follower stops by itself
    time.sleep(0.3)
    assert core.opened == 2
    follower.close()


def test_a_failing_sink_is_a_warning_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    core, sink = _Core(waiting=0), _Sink(fail=True)
    follower = _follower(tmp_path, core, sink)
    with caplog.at_level(logging.WARNING, logger="sematic.kubernetes.pod_logs"):
        follower.start("r4", "pod-4")
        core.pieces.put(b"still written\n")
        _until(lambda: len(sink.calls) >= 3)
        follower.close()
    assert (tmp_path / "r4.log").read_bytes() == b"still written\n"
    warnings = [r for r in caplog.records if "cannot send the log of run r4" in r.message]
    assert len(warnings) == 1
    assert threading.active_count() < 50


class _SilentPodServer:
    """A real HTTP server streaming a pod log as the API server does (chunked), that
    prints one line and then stays silent, as a step that sleeps does."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.done = threading.Event()
        done = self.done

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"6\r\nhello\n\r\n")
                self.wfile.flush()
                done.wait(30)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def read_namespaced_pod_log(self, name: str, namespace: str, **kwargs: Any) -> Any:
        import urllib3

        url = f"http://127.0.0.1:{self.server.server_address[1]}/log"
        return urllib3.PoolManager().request("GET", url, preload_content=False)

    def read_namespaced_pod_status(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(status=SimpleNamespace(phase="Running"))

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def test_stopping_a_silent_pods_stream_does_not_wait_for_its_next_line(tmp_path: Path) -> None:
    """A cancel stops following a step that prints nothing for minutes: the stream's read is
    blocked on a real socket, and ``stop`` must not wait for it (closing the response
    would: it takes the lock the blocked read holds)."""
    pod = _SilentPodServer()
    follower = _follower(tmp_path, pod, None)  # type: ignore[arg-type]
    try:
        follower.start("r1", "pod-1")
        _until(lambda: (tmp_path / "r1.log").exists())
        stopped = threading.Event()
        threading.Thread(target=lambda: (follower.stop("r1"), stopped.set()), daemon=True).start()
        assert stopped.wait(10), "stop() waited for the silent pod's next line"
        streams = [t for t in threading.enumerate() if t.name == "sematic-pod-log-pod-1"]
        for thread in streams:
            thread.join(10)
        assert not any(t.is_alive() for t in streams), "the stream's thread is still reading"
        assert (tmp_path / "r1.log").read_bytes() == b"hello\n"
    finally:
        follower.close()
        pod.close()
