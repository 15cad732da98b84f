"""Following the logs of worker pods while they run, so that a run's log can be read (and
tailed) before its pod ends.

``PodLogFollower.start(run_id, pod_name)`` streams the pod's log (``follow=True``) in a
daemon thread: each new piece is appended to the run's local log file
(``log_path(run_id)``) and, with a ``LogSink`` (the Sematic server's logs, wired by the
resolver), appended there too about every ``interval`` seconds, in chunks of at most
``CHUNK_BYTES``. A pod still waiting to start is retried until it runs, ends, or the run is
stopped; a stream that breaks while the pod runs is opened again, skipping what was read.

What is streamed is a preview: when the Job ends, the whole log read from the pod is
written (and sent) as the run's log, as before. A follower that fails (the API server, the
sink) only logs a warning (logger ``sematic.kubernetes.pod_logs``): it never fails a run.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sematic.core.files import private_folder, private_opener
from sematic.core.ports import LogSink

FLUSH_S = 1.0
RETRY_S = 0.5
MAX_RETRY_S = 5.0
CHUNK_BYTES = 512 * 1024  # below the server's cap on one append
_READ_BYTES = 64 * 1024
_ENDED = ("Succeeded", "Failed")

_log = logging.getLogger(__name__)


class _Follow:
    """One run's pod being followed."""

    def __init__(self, run_id: str, pod: str) -> None:
        self.run_id = run_id
        self.pod = pod
        self.stopped = threading.Event()
        self.lock = threading.Lock()  # the file, ``pending`` and ``stopped`` writes
        self.pending = bytearray()  # read, not yet sent
        self.sent_at: int | None = None  # where the sink's log ends (None: not asked yet)
        self.seen = 0  # bytes read from the pod's log
        self.file: IO[bytes] | None = None
        self.response: Any = None
        self.warned = False


class PodLogFollower:
    """The logs of the pods of runs, followed while they run (see the module docstring).

    ``api`` is a kubernetes ``ApiClient``; ``log_path(run_id)`` the run's local log file;
    ``sink`` (optional) receives the new text too; it is closed by ``close``.
    """

    def __init__(
        self,
        api: Any,
        namespace: str,
        log_path: Callable[[str], Path],
        sink: LogSink | None = None,
        *,
        interval: float = FLUSH_S,
    ) -> None:
        self._core: Any = client.CoreV1Api(api)
        self._namespace = namespace
        self._log_path = log_path
        self._sink = sink
        self._interval = interval
        self._follows: dict[str, _Follow] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sender: threading.Thread | None = None

    def start(self, run_id: str, pod_name: str) -> None:
        """Follow the pod ``pod_name`` of the run (again: nothing; another pod of the
        same run replaces the one followed)."""
        with self._lock:
            if self._closed.is_set():
                return
            current = self._follows.get(run_id)
            if current is not None and current.pod == pod_name:
                return
        if current is not None:
            self.stop(run_id)
        follow = _Follow(run_id, pod_name)
        with self._lock:
            self._follows[run_id] = follow
            if self._sink is not None and self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_loop, name="sematic-pod-logs-send", daemon=True
                )
                self._sender.start()
        threading.Thread(
            target=self._stream, args=(follow,), name=f"sematic-pod-log-{pod_name}", daemon=True
        ).start()

    def following(self) -> list[str]:
        with self._lock:
            return list(self._follows)

    def stop(self, run_id: str) -> None:
        """Stop following the run's pod: nothing more is written to its log file once this
        returns (its whole log is written next). Unsent text is dropped: the whole log
        replaces it."""
        with self._lock:
            follow = self._follows.pop(run_id, None)
        if follow is None:
            return
        with follow.lock:
            follow.stopped.set()
            if follow.file is not None:
                follow.file.close()
                follow.file = None
            follow.pending.clear()
        response = follow.response
        if response is not None:
            _interrupt(response)

    def close(self) -> None:
        for run_id in self.following():
            self.stop(run_id)
        self._closed.set()
        if self._sender is not None:
            self._sender.join(timeout=self._interval + 5)
        if self._sink is not None:
            with contextlib.suppress(Exception):
                self._sink.close()

    # -- the stream of one pod -----------------------------------------------------------

    def _stream(self, follow: _Follow) -> None:
        delay = RETRY_S
        while not follow.stopped.is_set():
            try:
                response = self._core.read_namespaced_pod_log(
                    follow.pod, self._namespace, follow=True, _preload_content=False
                )
            except ApiException as error:
                if error.status == 404:  # the pod is gone
                    return
                if error.status != 400:  # 400: the container is still waiting to start
                    self._warn(follow, f"cannot read the log of pod {follow.pod}: {error}")
                follow.stopped.wait(delay)
                delay = min(delay * 2, MAX_RETRY_S) if error.status != 400 else RETRY_S
                continue
            except Exception as error:  # noqa: BLE001 - the API server: retry
                self._warn(follow, f"cannot read the log of pod {follow.pod}: {error}")
                follow.stopped.wait(delay)
                delay = min(delay * 2, MAX_RETRY_S)
                continue
            delay = RETRY_S
            follow.response = response
            try:
                self._read(follow, response)
            except Exception as error:  # noqa: BLE001 - the stream broke (or was stopped)
                if not follow.stopped.is_set():
                    _log.debug("the log stream of pod %s broke: %s", follow.pod, error)
            finally:
                with contextlib.suppress(Exception):
                    response.release_conn()
            if follow.stopped.is_set() or self._ended(follow.pod):
                return
            follow.stopped.wait(RETRY_S)  # the stream broke while the pod runs: again

    def _read(self, follow: _Follow, response: Any) -> None:
        skip = follow.seen  # a stream opened again starts at the beginning of the log
        while not follow.stopped.is_set():
            data = response.read1(_READ_BYTES)
            if not data:
                return
            if skip:
                cut = min(skip, len(data))
                data, skip = data[cut:], skip - cut
                if not data:
                    continue
            self._received(follow, data)

    def _received(self, follow: _Follow, data: bytes) -> None:
        with follow.lock:
            if follow.stopped.is_set():
                return
            follow.seen += len(data)
            try:
                if follow.file is None:
                    path = self._log_path(follow.run_id)
                    private_folder(path.parent)
                    follow.file = open(path, "ab", opener=private_opener)  # noqa: SIM115
                follow.file.write(data)
                follow.file.flush()
            except OSError as error:
                self._warn(follow, f"cannot write the log of run {follow.run_id}: {error}")
            if self._sink is not None:
                follow.pending += data

    def _ended(self, pod: str) -> bool:
        try:
            status = self._core.read_namespaced_pod_status(pod, self._namespace).status
        except ApiException as error:
            return bool(error.status == 404)
        except Exception:  # noqa: BLE001 - cannot tell: try the stream again
            return False
        return bool(status is not None and status.phase in _ENDED)

    # -- sending to the sink -------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                follows = list(self._follows.values())
            for follow in follows:
                self._send(follow)

    def _send(self, follow: _Follow) -> None:
        """Append what the run's pod printed since the last time to the sink."""
        assert self._sink is not None
        with follow.lock:
            data = bytes(follow.pending[:CHUNK_BYTES])
        conflicts = 0
        while data and not follow.stopped.is_set():
            offset = follow.sent_at or 0
            try:
                size = self._sink.append(follow.run_id, offset, data)
            except Exception as error:  # noqa: BLE001 - the server: try again next time
                self._warn(follow, f"cannot send the log of run {follow.run_id}: {error}")
                return
            follow.sent_at = size
            if size != offset + len(data):  # the sink's log ends elsewhere: append there
                conflicts += 1  # (a former attempt's log, or a restarted driver's)
                if conflicts > 2:
                    return  # someone else appends too: next time
                continue
            with follow.lock:
                del follow.pending[: len(data)]
                data = bytes(follow.pending[:CHUNK_BYTES])

    def _warn(self, follow: _Follow, message: str) -> None:
        """Once per run: a follower's trouble is no failure of the run."""
        if not follow.warned:
            follow.warned = True
            _log.warning("%s (the whole log is read when the pod ends)", message)


def _interrupt(response: Any) -> None:
    """End the stream thread's read of ``response`` without waiting for it: closing the
    response here would wait for the read (a silent pod's may not return for minutes), so
    the socket is shut down (the read returns at once) and the response closed aside."""
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    threading.Thread(target=_close_quietly, args=(response,), daemon=True).start()


def _close_quietly(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.close()
