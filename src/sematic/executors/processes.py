"""Worker processes on this machine: ``ProcessPool`` (start, wait for any, kill; knows nothing
of what they do) and ``ProcessWorkers``, the ``Workers`` that run ``python -m sematic.worker
JOB_FILE`` in it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sematic.core.engine import Execute
from sematic.core.files import private_folder, private_opener, write_private
from sematic.core.jobs import WorkerJob, WorkerResult
from sematic.core.ports import Exited, WorkerLoss

__all__ = ["Exited", "ProcessPool", "ProcessWorkers"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """In the child, before exec: be killed when the process that started us dies (Linux)."""

    def set_death_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # it died before the prctl
            os._exit(1)

    return set_death_signal


class ProcessPool:
    """Runs commands as subprocesses, each with its output going to its own log file.

    Every process is started in its own session, so ``kill`` stops it and its children,
    and ``close`` stops whatever is still running (by PID, never by name). On Linux a
    worker is also killed by the kernel if this process dies (SIGKILL included), so no
    orphan outlives a killed resolver.
    """

    def __init__(self, *, poll_interval: float = 0.005) -> None:
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._poll_interval = poll_interval

    def __len__(self) -> int:
        return len(self._running)

    def start(
        self, key: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        private_folder(log_path.parent)
        log = open(log_path, "ab", opener=private_opener)  # noqa: SIM115 - closed on exit
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        self._running[key] = process
        self._logs[key] = log

    def poll(self) -> Exited | None:
        """A process that has ended, if any, without waiting."""
        for key, process in self._running.items():
            code = process.poll()
            if code is not None:
                return self._reap(key, code)
        return None

    def wait_any(self, timeout: float | None = None) -> Exited | None:
        """Block until one running process ends (None if ``timeout`` seconds pass first)."""
        if not self._running:
            raise RuntimeError("wait_any() with no process running")
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self._poll_interval
        while True:
            exited = self.poll()
            if exited is not None:
                return exited
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def kill(self, key: str) -> None:
        process = self._running.get(key)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self._reap(key, process.returncode)

    def close(self) -> None:
        for key in list(self._running):
            self.kill(key)

    def _reap(self, key: str, code: int) -> Exited:
        del self._running[key]
        log = self._logs.pop(key)
        log.close()
        return Exited(key, code)


class ProcessWorkers:
    """Workers as ``python -m sematic.worker JOB_FILE`` processes on this machine, each with
    its output in ``log_path(run_id)``."""

    def __init__(self, log_path: Callable[[str], Path]) -> None:
        self._pool = ProcessPool()
        self._log_path = log_path

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None:
        job_path = Path(job.result_path).with_suffix(".job")
        write_private(job_path, job.to_json())
        argv = [sys.executable, "-m", "sematic.worker", str(job_path)]
        self._pool.start(job.run_id, argv, self._log_path(job.run_id), env)

    def wait_any(self, timeout: float) -> Exited | None:
        return self._pool.poll() if timeout <= 0 else self._pool.wait_any(timeout=timeout)

    def kill(self, key: str) -> None:
        self._pool.kill(key)

    def attempt(self, key: str) -> dict[str, Any] | None:
        return None  # a process on this machine: its run's start and end are its time

    def close(self) -> None:
        self._pool.close()

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        path = Path(job.result_path)
        if not path.exists():
            return WorkerLoss(
                f"exited with code {exited.returncode} without reporting a result; "
                f"its log is {self._log_path(job.run_id)}"
            )
        return WorkerResult.from_json(path.read_text())
