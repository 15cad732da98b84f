"""A warm worker pod: ``python -m sematic.worker --warm-from-env``.

The pod stays up while its pipeline has steps for it. It reads its steps from its channel
of the server's mailbox (``SEMATIC_WARM_POOL``: ``WarmPod``, JSON) and runs each in a fresh
process forked from this one, whose heavy imports (the worker's, and the user's modules
once a step named them) are done already: a step sees no other step's state. What each step
ended with goes to the driver's results channel as one message:

    {"kind": "result", "ticket", "pod", "node", "result": WorkerResult JSON or null,
     "cause": null | "OOMKilled" | "DeadlineExceeded" | "Killed" | "NoResult",
     "message", "exit_code", "started_at", "finished_at", "log": the step's output (its end)}

A step's timeout is kept here (its process is killed, as a Job's deadline would); a step
killed by the kernel for memory is reported ``OOMKilled`` (the container's cgroup counts
the kill): the pod and the other steps go on. The pod ends on ``{"kind": "stop"}``, or when
it heard nothing from its driver for ``orphan_seconds`` (a driver that died).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sematic.core import variables
from sematic.core.jobs import WarmPod, WorkerJob

LOG_TAIL_BYTES = 256 * 1024
READ_WAIT_S = 20.0
LIVE_LOG_S = 0.5  # a running step's new output reaches the server this often
_CHILD_POLL_S = 0.002
_OOM_COUNTERS = (
    Path("/sys/fs/cgroup/memory.events"),  # cgroup v2: "oom_kill N"
    Path("/sys/fs/cgroup/memory/memory.oom_control"),  # cgroup v1: "oom_kill N"
)


def serve_from_environment() -> int:
    text = os.environ.get(variables.WARM_POOL)
    if not text:
        print(f"--warm-from-env: {variables.WARM_POOL} is not set", file=sys.stderr)
        return 2
    from sematic.storage.http import HttpLogs
    from sematic.storage.http.mailbox import HttpMailbox

    pod = WarmPod.from_json(text)
    key = os.environ.get(variables.API_KEY) or None
    mailbox = HttpMailbox(pod.server_url, key)
    logs = HttpLogs(pod.server_url, key)
    try:
        return serve(pod, mailbox, logs.append)
    finally:
        mailbox.close()


# Appends a step's output to its run's log on the server: (run id, offset, bytes) -> the
# size the server holds after (``HttpLogs.append``).
Ship = Callable[[str, int, bytes], int]


def serve(pod: WarmPod, mailbox: Any, ship: Ship | None = None) -> int:
    """Run the steps that come to ``pod.channel`` until told to stop or orphaned."""
    import sematic.worker.run  # noqa: F401 - the heavy imports, done once for every step

    for entry in reversed(pod.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    name = os.environ.get(variables.POD_NAME, "")
    node = os.environ.get(variables.NODE_NAME, "")
    cursor = 0
    heard = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sematic-warm-") as folder:
        while True:
            wait = min(READ_WAIT_S, max(pod.orphan_seconds, 0.1))
            messages = mailbox.read(pod.channel, cursor, wait=wait)
            if not messages:
                if time.monotonic() - heard > pod.orphan_seconds:
                    print("warm pod: no word from the driver; ending", file=sys.stderr)
                    return 0
                continue
            for message_id, message in messages:
                cursor = message_id
                if message.get("kind") == "stop":
                    return 0
                if message.get("kind") == "job":
                    report = run_step(message, pod.main_path, Path(folder), ship)
                    mailbox.post(pod.results, {**report, "pod": name, "node": node})
                heard = time.monotonic()


def run_step(
    message: dict[str, Any], main_path: str | None, folder: Path, ship: Ship | None = None
) -> dict[str, Any]:
    """Run one step (``message["job"]``, a ``WorkerJob``) in a forked process; what it
    ended with (see the module's docstring). What it prints is shipped as it comes."""
    ticket = str(message["ticket"])
    job = WorkerJob.from_json(json.dumps(message["job"]))
    _preload(job.function_path, main_path)
    result_path = folder / f"{ticket}.json"
    log_path = folder / f"{ticket}.log"
    killed_before = _oom_kills()
    print(f"warm pod: step {job.function_path} (run {job.run_id})", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.time()
    pid = os.fork()
    if pid == 0:  # the step's own process
        _child(job, result_path, log_path, message.get("env") or {})
    deadline = None if job.timeout_mins is None else time.monotonic() + job.timeout_mins * 60
    live = _LiveLog(log_path, job.run_id, ship)
    status, timed_out = _wait(pid, deadline, live.ship)
    finished = time.time()
    log = _tail(log_path)
    sys.stderr.write(log)  # the pod's own log holds each step's too
    sys.stderr.flush()
    report: dict[str, Any] = {
        "kind": "result",
        "ticket": ticket,
        "started_at": started,
        "finished_at": finished,
        "log": log,
        "result": None,
        "cause": None,
        "message": "",
        "exit_code": _exit_code(status),
    }
    if timed_out:
        minutes = job.timeout_mins
        report.update(cause="DeadlineExceeded", message=f"ran longer than {minutes} min")
    elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        if _oom_kills() > killed_before:
            killed = "the step's process ran out of memory and was killed"
            report.update(cause="OOMKilled", message=killed)
        else:
            report.update(cause="Killed", message="the step's process was killed (SIGKILL)")
    elif result_path.exists():
        report["result"] = json.loads(result_path.read_text())
    else:
        code = report["exit_code"]
        exited = f"the step's process exited ({code}) with no result"
        report.update(cause="NoResult", message=exited)
    result_path.unlink(missing_ok=True)
    log_path.unlink(missing_ok=True)
    return report


def _child(job: WorkerJob, result_path: Path, log_path: Path, env: dict[str, str]) -> None:
    """In the forked process: the step's output to its log, run it, and leave (never
    returns, never runs the pod's clean-up)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        # Whatever wrapped them before (a harness capturing output), the step writes there.
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        os.environ.update(env)
        from sematic.worker.run import run_job

        code = run_job(replace(job, result_path=str(result_path)), in_pod=True)
    except BaseException:  # noqa: BLE001 - reported as the step's failure by its parent
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _LiveLog:
    """A running step's output, sent to its run's log on the server as it grows (the
    driver replaces it with the whole log once the step ended)."""

    def __init__(self, path: Path, run_id: str, ship: Ship | None) -> None:
        self._path = path
        self._run_id = run_id
        self._ship = ship
        self._sent = 0
        self._next = time.monotonic() + LIVE_LOG_S

    def ship(self) -> None:
        if self._ship is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + LIVE_LOG_S
        try:
            with open(self._path, "rb") as log:
                log.seek(self._sent)
                data = log.read(LOG_TAIL_BYTES)
            if data and self._ship(self._run_id, self._sent, data) != self._sent + len(data):
                self._ship = None  # the server holds another log (an earlier attempt's)
            self._sent += len(data)
        except Exception:  # noqa: BLE001 - the server away: the whole log is sent at the end
            self._ship = None


def _wait(pid: int, deadline: float | None, meanwhile: Callable[[], None]) -> tuple[int, bool]:
    """The process's wait status, and whether it was killed for overrunning ``deadline``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        meanwhile()
        time.sleep(_CHILD_POLL_S)


def _exit_code(status: int) -> int:
    """As a container reports it: a process killed by signal N exited 128 + N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _preload(function_path: str, main_path: str | None) -> None:
    """Import the step's module here once, so that each forked step finds it loaded; a
    module that fails to import is left to the step to report."""
    from sematic.core.loading import load_function

    with contextlib.suppress(Exception):  # the step reports it, with its traceback
        load_function(function_path, main_path)


def _oom_kills() -> int:
    """How many processes the kernel killed for memory in this container (0 if unknown)."""
    for path in _OOM_COUNTERS:
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - LOG_TAIL_BYTES))
            return log.read().decode(errors="replace")
    except OSError:
        return ""
